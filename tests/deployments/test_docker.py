"""The docker work pool: prefect-docker.yaml builds the worker image (Dockerfile) and applies the
docker deployments; a `mediaflows worker --pool mediaflows-docker` runs a convert flow in a
container (host network) and the typed result is read back here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments import client
from deployments.setup import DOCKER_POOL
from deployments.worker import REPO_ROOT
from mediaflows.models import ConvertResult
from mediaflows.store import ProfileStore
from tests import prefect_api
from tests.deployments.test_worker import worker_store  # noqa: F401 - a fixture
from tests.flows.test_batch import distinct_clips

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BIN = Path(sys.executable).parent


def _engine_ok() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def docker_deployed(worker_store: ProfileStore) -> dict[str, str]:  # noqa: F811
    if not _engine_ok():
        pytest.skip("no Docker engine answers here")
    env = {**os.environ}
    setup = subprocess.run(
        [str(BIN / "mediaflows"), "setup"], env=env, cwd=REPO_ROOT, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert setup.returncode == 0 and DOCKER_POOL in setup.stdout, setup.stderr
    deploy = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file",
         "prefect-docker.yaml"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    assert prefect_api.deployments()["convert/docker"].work_pool_name == DOCKER_POOL
    return env


@pytest.fixture(scope="module")
def docker_worker(
    docker_deployed: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    cwd = tmp_path_factory.mktemp("docker-worker")
    env = {**docker_deployed, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    name = f"test-docker-{uuid.uuid4().hex[:6]}"
    args = [str(BIN / "mediaflows"), "worker", "--pool", DOCKER_POOL, "--name", name]
    with prefect_api.running_worker(args, DOCKER_POOL, name, env, cwd):
        yield


def test_convert_runs_in_a_container_and_its_result_is_read_here(
    docker_worker: None,
    worker_store: ProfileStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    from prefect.deployments import run_deployment

    source = worker_store.import_file("hana", distinct_clips(tmp_path, 1)[0])
    store_dir = worker_store.url
    results = os.environ["PREFECT_LOCAL_STORAGE_PATH"]
    Path(results).mkdir(parents=True, exist_ok=True)
    # One machine: the store and the result storage are the host's directories, mounted at the
    # same paths (several machines: S3 for both, see docs/deployments.md).
    run = run_deployment(
        name="convert/docker",
        parameters={"profile": "hana", "file_id": source.id, "request": {"crf": 27}},
        job_variables={
            "volumes": [f"{store_dir}:{store_dir}", f"{results}:{results}"],
            "env": {"MEDIAFLOWS_STORE__URL": store_dir, "PREFECT_LOCAL_STORAGE_PATH": results},
        },
        timeout=0,
    )
    result = client.wait(run.id, timeout=300)
    assert isinstance(result, ConvertResult)
    assert result.source_file_id == source.id and not result.cached
    stored = worker_store.get("hana", result.file_id)
    assert stored.tools["ffmpeg"].startswith("ffmpeg ")  # the container's ffmpeg
    flow_run = prefect_api.flow_run(run.id)
    assert flow_run.work_pool_name == DOCKER_POOL and flow_run.infrastructure_pid
