"""Many requests to an external service from one run, in flight together: what fix_srt,
translate_srt (LLM chunks) and a provider's transcription (audio pieces) share."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from prefect.futures import PrefectFuture

from mediaflows import cancel, endpoints
from mediaflows.errors import ChunkRefusedError, ConfigurationError
from mediaflows.settings import get_settings
from mediaflows.stages import Stage
from mediaflows.subtitles.chunks import ChunkFix
from tasks import prefect_adapter as adapter
from tasks.llm import LLM_TAG
from tasks.progress import RunProgress

K = TypeVar("K", bound=Hashable)
Requests = Sequence[tuple[K, Callable[[], PrefectFuture[Any]]]]


def submit_all(
    requests: Requests[K],
    tag: str,
    limit: int,
    progress: RunProgress,
    doing: str,
    unit: str,
    window: Callable[[], int] | None = None,
) -> dict[K, Any]:
    """Every request's value (its task's result, or the exception it failed with), by key.

    At most ``limit`` requests are in flight from this run (fewer while ``window()`` says so);
    the server's ``tag`` limit bounds all runs together, and runs in one process (a batch's
    children) share the slots here first: a request the server turns away waits out its
    Retry-After even when a slot comes free at once. A configuration error (a refused request
    or connection) stops sending: the requests not sent yet are left out. Progress reads
    ``<doing> n/total <unit>``.
    """
    queue = list(requests)
    running: dict[PrefectFuture[Any], K] = {}
    values: dict[K, Any] = {}
    slots = adapter.process_slots(tag, limit)
    total = len(queue)
    while queue or running:
        cancel.check()
        while queue and len(running) < min(limit, window() if window else limit):
            if not slots.acquire(blocking=not running):
                break  # all taken: take the next when one of ours (or anyone's) finishes
            key, submit = queue.pop(0)
            future = submit()
            adapter.on_done(future, slots.release)
            running[future] = key
        for future in adapter.wait_first(list(running)):
            key = running.pop(future)
            values[key] = value = future.result(raise_on_failure=False)
            if isinstance(value, ConfigurationError):
                queue.clear()  # the circuit breaker: nothing more is sent
        progress.stage(Stage.CALLING_PROVIDER, f"{doing} {len(values)}/{total} {unit}",
                       len(values) / max(total, 1))  # fmt: skip
    return values


def raise_first(failures: Sequence[BaseException]) -> None:
    """Raise the first configuration error among ``failures``, else the first of them (the run
    then fails with that error's class); nothing when there are none."""
    if failures:
        raise next((e for e in failures if isinstance(e, ConfigurationError)), failures[0])


def key_text(key: Hashable) -> str:
    """A request's key as text (``de/3`` for ``("de", 3)``): how a run records its chunks."""
    return "/".join(map(str, key)) if isinstance(key, tuple) else str(key)


def ask_all(
    requests: Requests[K],
    model: str,
    limit: int,
    progress: RunProgress,
    doing: str,
    known: Mapping[str, ChunkFix] | None = None,
) -> dict[K, ChunkFix]:
    """Every LLM chunk's answer (its fix, or its fallback when it got no valid answer), by key,
    within the ``llm`` limit and the endpoint's real parallelism
    (:class:`mediaflows.endpoints.Window`). A failed chunk does not stop the others (they finish
    and are cached), then its error is raised. ``known``: fallbacks this run got before (by
    :func:`key_text`; a run resumed after a review), not asked again (a fallback is not cached:
    a new run asks again)."""
    known = known or {}
    fixes: dict[K, ChunkFix] = {k: known[key_text(k)] for k, _ in requests if key_text(k) in known}
    requests = [(k, ask) for k, ask in requests if k not in fixes]
    window = endpoints.window(get_settings().llm, model, limit)
    values = submit_all(requests, LLM_TAG, limit, progress, doing, "chunks", lambda: window.size)
    failed: list[BaseException] = []
    for key, value in values.items():
        if isinstance(value, ChunkFix):
            fixes[key] = value
        elif isinstance(value, ChunkRefusedError):
            fixes[key] = value.fix
        else:
            failed.append(value)
    raise_first(failed)
    return fixes
