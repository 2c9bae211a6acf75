"""Retry policy shared by every task: transient faults only, with backoff and jitter."""

from __future__ import annotations

from typing import Any

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun

from mediaflows.errors import is_transient

#: Seconds between attempts: quick first retry, then room for a service to come back.
RETRY_DELAYS = [2, 10, 30]
RETRY_JITTER = 0.3


def retry_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry only what :func:`mediaflows.errors.is_transient`
    calls transient, so a corrupt file or a bad id fails at once instead of retrying."""
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            state.result(raise_on_failure=True)
        except BaseException as raised:  # the failure we are asked about
            exc = raised
    return exc is not None and is_transient(exc)


RETRYING: dict[str, Any] = {
    "retries": len(RETRY_DELAYS),
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_jitter_factor": RETRY_JITTER,
    "retry_condition_fn": retry_transient,
}
"""Task keyword arguments for the transient-only retry policy."""
