"""mediaflows setup: the concurrency limits, read back from the Prefect server."""

from __future__ import annotations

import pytest

from deployments.setup import ensure_concurrency_limits
from mediaflows.settings import get_settings


def test_gpu_llm_and_asr_limits_are_created_idempotently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.client.orchestration import get_client

    monkeypatch.setenv("MEDIAFLOWS_ORCHESTRATION__LLM_LIMIT", "7")
    monkeypatch.setenv("MEDIAFLOWS_ORCHESTRATION__ASR_LIMIT", "3")
    get_settings.cache_clear()
    try:
        assert ensure_concurrency_limits(get_settings()) == {"gpu": 1, "llm": 7, "asr": 3}
        assert ensure_concurrency_limits(get_settings())["llm"] == 7  # again: no error
        with get_client(sync_client=True) as client:
            assert client.read_concurrency_limit_by_tag("llm").concurrency_limit == 7
            assert client.read_concurrency_limit_by_tag("gpu").concurrency_limit == 1
            assert client.read_concurrency_limit_by_tag("asr").concurrency_limit == 3
    finally:
        monkeypatch.delenv("MEDIAFLOWS_ORCHESTRATION__LLM_LIMIT")
        monkeypatch.delenv("MEDIAFLOWS_ORCHESTRATION__ASR_LIMIT")
        get_settings.cache_clear()
        ensure_concurrency_limits(get_settings())  # back to the default for other tests
        with get_client(sync_client=True) as client:
            assert client.read_concurrency_limit_by_tag("llm").concurrency_limit == 4


def test_work_pools_are_created_once_and_left_alone_after() -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate

    from deployments.setup import DOCKER_POOL, PROCESS_POOL, ensure_work_pools

    assert ensure_work_pools() == {PROCESS_POOL: "process", DOCKER_POOL: "docker"}
    with get_client(sync_client=True) as client:
        client.update_work_pool(PROCESS_POOL, WorkPoolUpdate(concurrency_limit=3))
    assert ensure_work_pools()[PROCESS_POOL] == "process"  # again: no error
    with get_client(sync_client=True) as client:
        process = client.read_work_pool(PROCESS_POOL)
        docker = client.read_work_pool(DOCKER_POOL)
        client.update_work_pool(PROCESS_POOL, WorkPoolUpdate(concurrency_limit=None))
    assert process.type == "process" and process.concurrency_limit == 3  # an operator's edit
    assert docker.type == "docker"
    assert "image" in docker.base_job_template["variables"]["properties"]


@pytest.mark.parametrize("gpus", ["", "all", "0,1"])
def test_the_docker_pool_template_carries_the_gpu_settings(gpus: str) -> None:
    """The docker pool's job template as `mediaflows setup` makes it, rendered the way the docker
    worker renders it for a run (no GPU needed): `--gpus` as docker-py's device request, the CUDA
    base, the model on CUDA; without GPUs, none of them."""
    import asyncio

    from docker.types import HostConfig  # type: ignore[import-not-found,import-untyped,unused-ignore]
    from prefect_docker.worker import DockerWorkerJobConfiguration  # type: ignore[import-untyped]

    from deployments.setup import CUDA_BASE_IMAGE, DOCKER_IMAGE, docker_pool_template
    from mediaflows.settings import Settings

    settings = Settings(orchestration={"docker_gpus": gpus})  # type: ignore[arg-type]
    template = docker_pool_template(settings)
    job = asyncio.run(DockerWorkerJobConfiguration.from_template_and_values(template, {}))
    assert (job.image, job.network_mode, job.image_pull_policy) == (DOCKER_IMAGE, "host", "Never")
    kwargs = job.container_create_kwargs or {}
    host = HostConfig(version="1.41", device_requests=kwargs.get("device_requests"))
    if not gpus:
        assert "DeviceRequests" not in host and "MEDIAFLOWS_WHISPER__DEVICE" not in job.env
        return
    (device,) = host["DeviceRequests"]
    assert device["Driver"] == "nvidia" and device["Capabilities"] == [["gpu"]]
    if gpus == "all":
        assert device["Count"] == -1
    else:
        assert device["DeviceIDs"] == ["0", "1"] and device["Count"] == 0
    assert job.env["MEDIAFLOWS_WHISPER__DEVICE"] == "cuda"
    assert job.labels["io.mediaflows.base-image"] == CUDA_BASE_IMAGE
    # A run's own job variables still win over the pool's defaults.
    job = asyncio.run(
        DockerWorkerJobConfiguration.from_template_and_values(
            template, {"env": {"MEDIAFLOWS_WHISPER__DEVICE": "cpu"}}
        )
    )
    assert job.env["MEDIAFLOWS_WHISPER__DEVICE"] == "cpu"


def test_a_gpus_setting_docker_cannot_read_is_refused() -> None:
    from pydantic import ValidationError

    from mediaflows.settings import Settings

    with pytest.raises(ValidationError):
        Settings(orchestration={"docker_gpus": "gpu0"})  # type: ignore[arg-type]
