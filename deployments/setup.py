"""Idempotent set-up on the Prefect server: the concurrency limits every worker obeys and the work
pools the deployments in ``prefect.yaml`` run on."""

from __future__ import annotations

import contextlib
import importlib.util
from typing import Any

from mediaflows.settings import Settings, get_settings

#: The default pool: a worker on any machine with this repository runs flows as subprocesses.
PROCESS_POOL = "mediaflows-process"
#: Flows in containers of the worker image (Dockerfile), through prefect-docker.
DOCKER_POOL = "mediaflows-docker"


def ensure_concurrency_limits(settings: Settings | None = None) -> dict[str, int]:
    """Create or update the ``gpu`` tag limit (model runs at once, across all workers) and the
    ``llm`` tag limit (LLM requests at once).

    Safe to run any number of times: the server upserts by tag.
    """
    from prefect.client.orchestration import get_client

    settings = settings or get_settings()
    limits = {"gpu": settings.gpu_limit, "llm": settings.llm_limit}
    with get_client(sync_client=True) as client:
        for tag, value in limits.items():
            client.create_concurrency_limit(tag=tag, concurrency_limit=value)
    return limits


def docker_available() -> bool:
    """True when prefect-docker (the docker worker type) is installed here."""
    return importlib.util.find_spec("prefect_docker") is not None


def _default_template(pool_type: str) -> dict[str, Any]:
    from prefect.workers.base import BaseWorker

    worker = BaseWorker.get_worker_class_from_type(pool_type)
    if worker is None:  # pragma: no cover - guarded by docker_available()
        raise RuntimeError(f"no worker type {pool_type!r} installed")
    template: dict[str, Any] = worker.get_default_base_job_template()
    return template


def ensure_work_pools() -> dict[str, str]:
    """Create the work pools that are missing: ``mediaflows-process`` always,
    ``mediaflows-docker`` when prefect-docker is installed. Existing pools are left as they are
    (an operator may have tuned their job templates in the UI). Returns {pool name: type}."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    wanted = {PROCESS_POOL: "process"}
    if docker_available():
        wanted[DOCKER_POOL] = "docker"
    with get_client(sync_client=True) as client:
        for name, pool_type in wanted.items():
            try:
                client.read_work_pool(name)
                continue
            except ObjectNotFound:
                pass
            # Another set-up may create it in the meantime: that is the same outcome.
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_work_pool(
                    WorkPoolCreate(
                        name=name,
                        type=pool_type,
                        description=f"mediaflows flows ({pool_type} worker)",
                        base_job_template=_default_template(pool_type),
                    )
                )
    return wanted


def ensure_setup(settings: Settings | None = None) -> dict[str, Any]:
    """Everything the deployments need on the server, created or updated idempotently."""
    settings = settings or get_settings()
    return {
        "concurrency_limits": ensure_concurrency_limits(settings),
        "work_pools": ensure_work_pools(),
    }
