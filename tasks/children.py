"""Child flow runs of a deployment, on whichever workers of its pool are free: a bounded number
in flight, each waited for, a child whose worker died under it (Crashed) submitted again."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tasks import prefect_adapter as adapter

log = logging.getLogger(__name__)


def sibling_deployment(flow_name: str) -> str:
    """The deployment of ``flow_name`` beside the running one: ``docker`` keeps its pool
    (``transcribe_window/docker``); the process pool's are named after their flows."""
    from prefect.runtime import deployment, flow_run

    own = deployment.name
    same_pool = own and own != flow_run.flow_name and not str(own).startswith("batch_")
    return f"{flow_name}/{own}" if same_pool else f"{flow_name}/{flow_name}"


def under_deployment() -> bool:
    """Whether the running flow run came from a deployment (a worker runs it)."""
    from prefect.runtime import deployment

    return deployment.id is not None


def run_children(
    deployment_name: str,
    parameter_sets: Sequence[dict[str, Any]],
    in_flight: int,
    resubmits: int,
    on_result: Callable[[int, Any], None] | None = None,
    names: Sequence[str] | None = None,
) -> list[Any]:
    """Each parameter set as a child run of ``deployment_name`` (at most ``in_flight`` at once;
    named ``names[i]``, when given), their results in order; the first failure is raised.
    ``on_result(i, result)`` as each ends."""
    from prefect.deployments import arun_deployment
    from prefect.logging import get_run_logger

    logger = get_run_logger()

    def one(index: int) -> Any:
        attempt = 0
        while True:
            attempt += 1
            child = asyncio.run(arun_deployment(  # this thread's own loop: no async dispatch
                name=deployment_name, parameters=dict(parameter_sets[index]), as_subflow=True,
                flow_run_name=names[index] if names else None, poll_interval=1))  # fmt: skip
            state = child.state
            assert state is not None
            if not state.is_crashed() or attempt > resubmits:
                break
            logger.warning("child run %s Crashed (%s); submitting it again (%d of %d)",
                           child.id, state.message, attempt, resubmits)  # fmt: skip
        value = adapter.result_of(state)
        if isinstance(value, BaseException):
            raise value
        if on_result:
            on_result(index, value)
        return value

    with ThreadPoolExecutor(max(1, in_flight), thread_name_prefix="mediaflows-child") as pool:
        futures = [pool.submit(contextvars.copy_context().run, one, i)
                   for i in range(len(parameter_sets))]  # fmt: skip
        return [f.result() for f in futures]
