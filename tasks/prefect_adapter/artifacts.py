"""Artifacts from a flow's body thread and from background threads."""

from __future__ import annotations

import atexit
import logging
import threading
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.context import SettingsContext

log = logging.getLogger(__name__)

# The artifact functions return a coroutine when called from an async context (a flow's body runs
# in a thread that inherits it); `_sync=True` forces the blocking call. CHECK: drop it and run
# tests/flows/test_convert.py (the progress artifact).


def create_progress_artifact(progress: float, description: str) -> UUID:
    from prefect.artifacts import create_progress_artifact as create

    artifact_id: UUID = create(progress=progress, description=description, _sync=True)  # type: ignore[call-arg,assignment]
    return artifact_id


def create_table_artifact(
    table: list[dict[str, Any]], description: str, key: str | None = None
) -> None:
    from prefect.artifacts import create_table_artifact as create

    create(table=table, key=key, description=description, _sync=True)  # type: ignore[call-arg]


def create_markdown_artifact(markdown: str, description: str, key: str | None = None) -> None:
    from prefect.artifacts import create_markdown_artifact as create

    create(markdown=markdown, key=key, description=description, _sync=True)  # type: ignore[call-arg]


def create_image_artifact(image_url: str, description: str, key: str | None = None) -> None:
    from prefect.artifacts import create_image_artifact as create

    create(image_url=image_url, key=key, description=description, _sync=True)  # type: ignore[call-arg]


_clients: dict[str, SyncPrefectClient] = {}
_clients_lock = threading.Lock()


def current_settings() -> SettingsContext:
    """The caller's Prefect settings, for work handed to another thread (which would otherwise
    see the process's defaults, not the run's API URL)."""
    from prefect.context import SettingsContext

    settings = SettingsContext.get()
    assert settings is not None
    return settings


def process_client(settings: SettingsContext) -> SyncPrefectClient:
    """This process's client for the API URL of ``settings``, usable from any thread, kept for
    the process (closed at exit): the run's own clients close when their task ends, and a new
    client costs an SSL context."""
    from prefect.client.orchestration import get_client
    from prefect.context import SettingsContext

    url = str(settings.settings.api.url)
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            with SettingsContext(profile=settings.profile, settings=settings.settings):
                client = get_client(sync_client=True)
            client.__enter__()
            _clients[url] = client
    return client


def update_artifact(
    settings: SettingsContext, artifact_id: UUID, data: Any, description: str
) -> None:
    """Update an artifact from any thread (through :func:`process_client`). There is no public
    ``update_artifact`` for a progress artifact's description. CHECK:
    ``prefect.artifacts.update_progress_artifact`` taking a description, callable from a
    thread."""
    from prefect.client.schemas.actions import ArtifactUpdate

    process_client(settings).update_artifact(
        artifact_id=artifact_id, artifact=ArtifactUpdate(data=data, description=description)
    )


@atexit.register
def _close_clients() -> None:
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        try:
            client.__exit__(None, None, None)
        except Exception as exc:  # the process is ending: a client that fails to close is moot
            log.debug("closing a Prefect client at exit: %s", exc)
