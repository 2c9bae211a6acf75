"""Cancel work running in another thread, as a run's cancellation would, and time its stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from mediaflows.cancel import CancelScope


def cancel_after(
    work: Callable[[], Any], delay_s: float, until: Callable[[], bool] | None = None
) -> tuple[BaseException | None, float]:
    """Run ``work`` in a thread inside a :class:`CancelScope`, cancel the scope after
    ``delay_s`` (and once ``until()`` is true, if given: waited for up to 30 s), and return
    (what ``work`` raised, or None; seconds from the cancel until the thread ended). The thread
    is given 5 s to end."""
    scope = CancelScope()
    outcome: list[BaseException | None] = []

    def run() -> None:
        with scope:
            try:
                work()
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(delay_s)
    deadline = time.monotonic() + 30
    while until is not None and not until() and time.monotonic() < deadline:
        time.sleep(0.05)
    cancelled_at = time.monotonic()
    scope.cancel()
    thread.join(5)
    assert not thread.is_alive(), "the work did not stop within 5 s of its cancellation"
    return outcome[0], time.monotonic() - cancelled_at
