"""Prefect plumbing shared by the flows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.context import SyncClientContext


@contextmanager
def shared_api_client() -> Iterator[None]:
    """Let every task of a flow run reuse one API client.

    Without it each sync task run builds its own client, and with it an SSL context (loading the
    CA bundle: ~60 ms a task on a small machine, more than most of our tasks take).
    """
    with SyncClientContext.get_or_create():
        yield
