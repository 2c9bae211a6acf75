"""Concurrency: a process's own queue for a tag's slots, leases of the server's slots, and the
futures of submitted tasks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.futures import PrefectFuture

_local_slots: dict[str, threading.BoundedSemaphore] = {}
_local_slots_lock = threading.Lock()


def process_slots(tag: str, limit: int) -> threading.BoundedSemaphore:
    """This process's queue for ``limit`` slots of ``tag``, taken before a ``tag`` task asks the
    server. The server's tag limit holds across workers, but a task it turns away sleeps for the
    server's ``Retry-After`` while the slot may come free at once: the runs of one process queue
    here, and only one per free slot goes on to the server. (The model's ``gpu`` slots are kept
    by the process instead: :mod:`tasks.slots`.)"""
    with _local_slots_lock:
        return _local_slots.setdefault(f"{tag}:{limit}", threading.BoundedSemaphore(limit))


def on_done(future: PrefectFuture[Any], callback: Callable[[], None]) -> None:
    """Call ``callback`` when a submitted task's future is done. Prefect's futures have no public
    done-callback; ``PrefectConcurrentFuture`` wraps a ``concurrent.futures.Future`` that has.
    CHECK: ``PrefectFuture.add_done_callback`` in a newer Prefect."""
    inner = future.wrapped_future  # type: ignore[attr-defined]
    inner.add_done_callback(lambda _: callback())


def wait_first(futures: list[PrefectFuture[Any]]) -> list[PrefectFuture[Any]]:
    """Block until at least one of ``futures`` is done; those that are. (``prefect.futures.wait``
    waits for all, or a timeout.) CHECK: as :func:`on_done`."""
    from concurrent.futures import FIRST_COMPLETED
    from concurrent.futures import wait as wait_any

    inner = {f.wrapped_future: f for f in futures}  # type: ignore[attr-defined]
    done, _ = wait_any(list(inner), return_when=FIRST_COMPLETED)
    return [inner[d] for d in done]


# ---- leases of the server's slots (tasks/slots.py) ------------------------------------------
# The client's lease calls answer with the raw HTTP response (the lease id in its JSON, a 423
# when every slot is taken): read here only. CHECK: typed return values of
# ``increment_concurrency_slots_with_lease`` in a newer Prefect; tests/tasks/test_slots.py.


def take_slot(
    client: SyncPrefectClient, limit_name: str, lease_s: float
) -> tuple[bool, UUID | None, float]:
    """Ask the server for one slot of the global limit ``limit_name`` (``tag:gpu``) with a lease:
    (granted, the lease or None when the server has no such limit, seconds to wait if not)."""
    import httpx

    try:
        response = client.increment_concurrency_slots_with_lease(
            names=[limit_name], slots=1, mode="concurrency", lease_duration=lease_s
        )
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code != 423:  # Locked: every slot is taken
            raise
        return False, None, float(exc.response.headers.get("Retry-After", 1.0))
    data = response.json()
    if not data.get("limits"):
        return True, None, 0.0
    return True, UUID(data["lease_id"]), 0.0


def renew_slot(client: SyncPrefectClient, lease: UUID, lease_s: float) -> bool:
    """Renew a lease; False when the server no longer has it (it expired: the slot is gone).
    Other failures (the server away) raise."""
    import httpx

    try:
        client.renew_concurrency_lease(lease, lease_duration=lease_s)
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code in (404, 410):
            return False
        raise
    return True


def release_slot(client: SyncPrefectClient, lease: UUID) -> None:
    """Give a lease's slot back."""
    client.release_concurrency_slots_with_lease(lease)


def server_errors() -> tuple[type[BaseException], ...]:
    """What a call to the Prefect server raises when the server is away, failing, or refusing:
    an HTTP error (``PrefectHTTPStatusError`` is an ``httpx.HTTPStatusError``; a refused or reset
    connection is an ``httpx.TransportError``) or ``ObjectNotFound`` (a 404, Prefect's own
    class). Use as ``except server_errors() as exc``."""
    import httpx
    from prefect.exceptions import ObjectNotFound

    return (httpx.HTTPError, ObjectNotFound)


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says the server could not be reached or failed (not a refusal)."""
    import httpx

    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500
