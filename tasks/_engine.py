"""Prefect plumbing shared by the flows."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from prefect.context import SyncClientContext

from mediaflows.cancel import CancelScope

P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def shared_api_client() -> Iterator[None]:
    """Let every task of a flow run reuse one API client.

    Without it each sync task run builds its own client, and with it an SSL context (loading the
    CA bundle: ~60 ms a task on a small machine, more than most of our tasks take).
    """
    with SyncClientContext.get_or_create():
        yield


#: How long a cancelled body gets to stop and clean up (its tools are killed at once).
CANCEL_GRACE_S = 20.0


async def run_blocking(body: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a flow's blocking body (its tasks are plain blocking calls) in a worker thread that
    shares one API client among them.

    The flow run's context goes with it, so the tasks belong to the run; the event loop stays
    free, so the child flows of a batch overlap (one fetches while another holds the ``gpu``).

    If the run is cancelled or its process told to stop (Prefect raises in the event loop's
    thread; a thread cannot be interrupted), the body's ffmpeg is killed and its next check
    raises :class:`~mediaflows.cancel.RunCancelledError`, so its ``finally`` blocks remove its
    work files before the run ends.
    """
    scope = CancelScope()

    def in_thread() -> T:
        with scope, shared_api_client():
            return body(*args, **kwargs)

    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(None, contextvars.copy_context().run, in_thread)
    try:
        return await asyncio.shield(work)
    except BaseException:
        if not work.done():
            scope.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait({work}, timeout=CANCEL_GRACE_S)
                work.exception()  # it ended RunCancelledError: seen, not "never retrieved"
        raise


_local_slots: dict[str, threading.BoundedSemaphore] = {}
_local_slots_lock = threading.Lock()


@contextmanager
def local_slot(tag: str, limit: int) -> Iterator[None]:
    """Queue in this process for one of ``limit`` slots before a ``tag`` task asks the server.

    The server's tag limit holds across workers, but a task it turns away sleeps for the
    server's ``Retry-After`` (seconds) while the slot may come free at once. The runs of one
    process (a batch's children) hand the slot over here, without delay; only one per free slot
    goes on to the server.
    """
    with process_slots(tag, limit):
        yield


def process_slots(tag: str, limit: int) -> threading.BoundedSemaphore:
    """This process's queue for ``tag`` slots (see :func:`local_slot`)."""
    with _local_slots_lock:
        return _local_slots.setdefault(f"{tag}:{limit}", threading.BoundedSemaphore(limit))
