"""Idempotent set-up on the Prefect server: the concurrency limits every worker obeys."""

from __future__ import annotations

from mediaflows.settings import Settings, get_settings


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
