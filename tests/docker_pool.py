"""The docker pool's deployments pointed at a store, for the docker tests and the docker bench
(no test session set-up imported: the bench runs its own server)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests import prefect_api

#: The image's runtime user (Dockerfile): what a mounted store must be writable by.
RUNTIME_UID = 10001


def give_to_containers(*paths: str) -> None:
    """One machine, the store mounted: the containers' user must write where the host wrote."""
    for path in paths:
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(name, RUNTIME_UID, 0)


def use_store(store_url: str, endpoint: str | None = None) -> dict[str, Any]:
    """Point every docker deployment at this store (per-deployment job variables, what an operator
    sets for one machine): local, mounted at its own path, or S3; results in the session's
    result storage, mounted; the bundled model, offline."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate

    results = os.environ["PREFECT_LOCAL_STORAGE_PATH"]
    Path(results).mkdir(parents=True, exist_ok=True)
    env = {"MEDIAFLOWS_STORE__URL": store_url, "PREFECT_LOCAL_STORAGE_PATH": results,
           "MEDIAFLOWS_WHISPER__MODEL": "tiny.en", "HF_HUB_OFFLINE": "1"}  # fmt: skip
    volumes = [f"{results}:{results}"]
    if endpoint:
        env |= {"MEDIAFLOWS_STORE__S3_ENDPOINT_URL": endpoint,
                **{k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                              "AWS_DEFAULT_REGION")}}  # fmt: skip
    else:
        volumes.append(f"{store_url}:{store_url}")
        give_to_containers(store_url)
    give_to_containers(results)
    with get_client(sync_client=True) as prefect:
        for full, deployment in prefect_api.deployments().items():
            if full.endswith("/docker"):
                variables = {**deployment.job_variables, "env": env, "volumes": volumes}
                prefect.update_deployment(deployment.id, DeploymentUpdate(job_variables=variables))
    return env
