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
