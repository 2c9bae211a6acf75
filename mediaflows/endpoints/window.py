"""How many requests one endpoint gets at once, fitted to its real parallelism, and how long a
request may wait in its queue."""

from __future__ import annotations

import math
import threading

from mediaflows.settings import EndpointSettings


class Window:
    """How many requests one endpoint gets at once, fitted to its real parallelism.

    A server that queues (llama.cpp with one slot, Ollama with ``OLLAMA_NUM_PARALLEL=1``) answers
    n requests in flight in about n times the time of one: their time in its queue counts against
    the client's timeout, and too many in flight time out while the server still computes them.
    Each answer tells how many requests the server served at once while it waited
    (``in flight × fastest latency ÷ this latency``, per unit of work: input characters, audio
    seconds); the window follows that estimate plus one (to notice more capacity), within
    ``1..limit``, starting at ``limit``. A timeout halves it.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # The first requests go out at the full limit: on a queueing server the queue-aware
        # timeouts (below) keep them alive, and the first answers shrink the window.
        self.size = limit
        self.in_flight = 0
        self._fastest: float | None = None  # seconds per unit of work, alone on the server
        self._latency: float | None = None  # recent seconds per request (moving average)
        self._lock = threading.Lock()

    def started(self) -> int:
        with self._lock:
            self.in_flight += 1
            return self.in_flight

    def finished(self, in_flight: int, seconds: float, work: float, ok: bool) -> None:
        with self._lock:
            self.in_flight -= 1
            if not ok:
                self.size = max(1, self.size // 2)
                return
            self._latency = (
                seconds if self._latency is None else 0.7 * self._latency + 0.3 * seconds
            )
            per_unit = seconds / max(work, 1)
            if self._fastest is None or per_unit < self._fastest:
                self._fastest = per_unit
            served = in_flight * self._fastest / per_unit  # requests the server ran at once
            self.size = max(1, min(self.limit, math.floor(served + 0.5) + 1))

    def timeout(self, base: float, in_flight: int) -> float:
        """The timeout of a request sent with ``in_flight`` in flight: ``base`` for its own
        answer, plus a recent request's time for each one a queueing server may serve first
        (time in the queue is no sign of a dead server). Before any answer, every request of
        the first burst (the window's size) may be served first: requests sent at once reach
        the server in any order (seen on a loaded machine: the one sent first waited behind the
        two sent after it, timed out, and was sent again)."""
        with self._lock:
            if self._latency is None:
                return base + max(max(in_flight, self.size) - 1, 0) * base
            return base + max(in_flight - 1, 0) * self._latency


_windows: dict[tuple[str, str], Window] = {}
_windows_lock = threading.Lock()


def window(settings: EndpointSettings, model: str, limit: int) -> Window:
    """The request window of this endpoint and model in this process."""
    with _windows_lock:
        key = (settings.base_url, model)
        found = _windows.get(key)
        if found is None or found.limit != limit:
            found = _windows[key] = Window(limit)
        return found


def forget_windows() -> None:
    """Forget every endpoint's window (what was learnt of its parallelism)."""
    with _windows_lock:
        _windows.clear()
