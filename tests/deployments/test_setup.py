"""mediaflows setup: the concurrency limits, read back from the Prefect server."""

from __future__ import annotations

import pytest

from deployments.setup import ensure_concurrency_limits
from mediaflows.settings import get_settings


def test_gpu_and_llm_limits_are_created_idempotently(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.client.orchestration import get_client

    monkeypatch.setenv("MEDIAFLOWS_LLM_LIMIT", "7")
    get_settings.cache_clear()
    try:
        assert ensure_concurrency_limits(get_settings()) == {"gpu": 1, "llm": 7}
        assert ensure_concurrency_limits(get_settings())["llm"] == 7  # again: no error
        with get_client(sync_client=True) as client:
            assert client.read_concurrency_limit_by_tag("llm").concurrency_limit == 7
            assert client.read_concurrency_limit_by_tag("gpu").concurrency_limit == 1
    finally:
        monkeypatch.delenv("MEDIAFLOWS_LLM_LIMIT")
        get_settings.cache_clear()
        ensure_concurrency_limits(get_settings())  # back to the default for other tests
        with get_client(sync_client=True) as client:
            assert client.read_concurrency_limit_by_tag("llm").concurrency_limit == 4
