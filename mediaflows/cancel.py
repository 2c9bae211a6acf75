"""Stopping a run's blocking work from outside: the external tools it started are killed and
its next check raises, so its ``finally`` blocks remove what it wrote.

A :class:`CancelScope` is entered by whoever runs the work (``with scope:`` in the thread that
does it); the code that starts ffmpeg calls :func:`track`, the long loops call :func:`check`;
another thread calls :meth:`CancelScope.cancel`. Outside a scope, these do nothing.
"""

from __future__ import annotations

import contextvars
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from mediaflows.errors import RunCancelledError

log = logging.getLogger(__name__)

__all__ = ["CancelScope", "RunCancelledError", "check", "on_cancel", "sleep", "track"]

_current: contextvars.ContextVar[CancelScope | None] = contextvars.ContextVar(
    "mediaflows_cancel_scope", default=None
)


class CancelScope:
    """One run's work: the processes it started, and whether it was cancelled."""

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[Any]] = set()
        self._callbacks: set[Callable[[], None]] = set()
        self._token: contextvars.Token[CancelScope | None] | None = None
        self._unlink: Callable[[], None] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Mark the work cancelled and kill the tools it is running (safe from any thread)."""
        self._cancelled.set()
        with self._lock:
            procs = list(self._procs)
            callbacks = list(self._callbacks)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a nested scope that fails to stop must not keep the others going
                log.exception("stopping part of a cancelled run failed")

    def __enter__(self) -> CancelScope:
        # A scope entered inside another (a warm worker's, around a run's own) is cancelled
        # with it.
        parent = _current.get()
        self._unlink = parent.on_cancel(self.cancel) if parent is not None else None
        self._token = _current.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
        if self._unlink is not None:
            self._unlink()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when the scope is cancelled (at once if it is already); returns
        the undo."""
        with self._lock:
            self._callbacks.add(callback)
        if self.cancelled:
            callback()
        return lambda: self._discard_callback(callback)

    def _discard_callback(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.discard(callback)

    def _add(self, proc: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._procs.add(proc)
        if self.cancelled:  # cancelled while it was being started
            proc.kill()

    def _discard(self, proc: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._procs.discard(proc)


def check() -> None:
    """Raise :class:`RunCancelledError` if the current run was cancelled."""
    scope = _current.get()
    if scope is not None and scope.cancelled:
        raise RunCancelledError("cancelled")


def track(proc: subprocess.Popen[Any]) -> Callable[[], None]:
    """Tie a started tool to the current run (cancelling the run kills it); call what this
    returns once the tool has ended."""
    scope = _current.get()
    if scope is None:
        return lambda: None
    scope._add(proc)
    return lambda: scope._discard(proc)


def sleep(seconds: float) -> None:
    """``time.sleep`` that ends early, raising :class:`RunCancelledError`, when the current run
    is cancelled."""
    scope = _current.get()
    if scope is None:
        time.sleep(seconds)
    elif scope._cancelled.wait(seconds):
        raise RunCancelledError("cancelled")


def on_cancel(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` (from the cancelling thread) if the current run is cancelled; returns
    the undo (call it once the work it would stop is over)."""
    scope = _current.get()
    if scope is None:
        return lambda: None
    return scope.on_cancel(callback)
