"""Many LLM requests from one run, in flight together: what fix_srt and translate_srt share."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from prefect.futures import PrefectFuture

from mediaflows import cancel, endpoint
from mediaflows.errors import ChunkRefusedError, ConfigurationError
from mediaflows.llm import ChunkFix
from mediaflows.settings import get_settings
from mediaflows.stages import Stage
from tasks import runtime
from tasks.llm import LLM_TAG
from tasks.progress import RunProgress

K = TypeVar("K", bound=Hashable)


def ask_all(
    requests: Sequence[tuple[K, Callable[[], PrefectFuture[Any]]]],
    model: str,
    limit: int,
    progress: RunProgress,
    doing: str,
) -> dict[K, ChunkFix]:
    """Every request's answer (a chunk's fix, or its fallback when it got no valid answer), by
    key. At most ``limit`` requests are in flight from this run, fewer when the endpoint serves
    fewer at once (:class:`mediaflows.endpoint.Window`); the server's ``llm`` limit bounds all
    runs together. ``submit`` starts one request's task. A failed request does not stop the
    others (they finish and are cached, then its error is raised), except a configuration error
    (a refused request or connection): then nothing more is sent. Progress reads
    ``<doing> n/total chunks``.
    """
    queue = list(requests)
    running: dict[PrefectFuture[Any], K] = {}
    fixes: dict[K, ChunkFix] = {}
    failed: list[BaseException] = []
    window = endpoint.window(get_settings().llm, model, limit)
    # Runs in one process (a batch's children) share the slots here first: a chunk the server
    # turns away waits out its Retry-After even when a slot comes free at once.
    slots = runtime.process_slots(LLM_TAG, limit)
    total = len(queue)
    while queue or running:
        cancel.check()
        while queue and len(running) < min(limit, window.size):
            if not slots.acquire(blocking=not running):
                break  # all taken: take the next when one of ours (or anyone's) finishes
            key, submit = queue.pop(0)
            future = submit()
            runtime.on_done(future, slots.release)
            running[future] = key
        for future in runtime.wait_first(list(running)):
            key = running.pop(future)
            value = future.result(raise_on_failure=False)
            if isinstance(value, ChunkFix):
                fixes[key] = value
            elif isinstance(value, ChunkRefusedError):
                fixes[key] = value.fix
            else:
                failed.append(value)
                if isinstance(value, ConfigurationError):
                    queue.clear()  # the circuit breaker: nothing more is sent
        finished = len(fixes) + len(failed)
        progress.stage(Stage.CALLING_PROVIDER, f"{doing} {finished}/{total} chunks",
                       finished / max(total, 1))  # fmt: skip
    if failed:
        first = next((e for e in failed if isinstance(e, ConfigurationError)), failed[0])
        raise first  # the run fails with the request's error class
    return fixes
