"""Child flow runs of a deployment, on whichever workers of its pool are free: a bounded number
in flight, each waited for, a child whose worker died under it (Crashed) submitted again, and
every child in flight cancelled with the run that started them."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from uuid import UUID

from mediaflows import cancel
from tasks import prefect_adapter as adapter

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

log = logging.getLogger(__name__)

#: How often a waiting parent reads its children's states.
POLL_S = 1.0


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


class _Children:
    """The child runs of one call, and stopping those in flight."""

    def __init__(self, deployment_name: str, client: SyncPrefectClient) -> None:
        self.deployment_name = deployment_name
        self.in_flight: set[UUID] = set()
        self.lock = threading.Lock()
        self.client = client

    def start(self, parameters: dict[str, Any], name: str | None) -> UUID:
        from prefect.deployments import arun_deployment

        cancel.check()
        child = asyncio.run(arun_deployment(  # this thread's own loop; created, not waited for
            name=self.deployment_name, parameters=parameters, as_subflow=True,
            flow_run_name=name, timeout=0))  # fmt: skip
        with self.lock:
            self.in_flight.add(child.id)
        return child.id

    def wait(self, run_id: UUID) -> Any:
        """The child's final state (its run read every :data:`POLL_S`). A child left waiting
        (the parent cancelled) stays in flight, for :meth:`stop` to cancel."""
        while True:
            state = self.client.read_flow_run(run_id).state
            if state is not None and state.is_final():
                with self.lock:
                    self.in_flight.discard(run_id)
                return state
            cancel.sleep(POLL_S)

    def stop(self) -> None:
        """Cancel the children in flight (the parent was cancelled, or failed): one that no
        worker took yet at once, a running one through its worker (``Cancelling``)."""
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelled, Cancelling

        with self.lock:
            runs, self.in_flight = list(self.in_flight), set()
        with get_client(sync_client=True) as client:  # from any thread, after the parent's
            for run_id in runs:
                try:
                    state = client.read_flow_run(run_id).state
                    if state is None or state.is_final():
                        continue
                    how = Cancelling if state.is_running() else Cancelled
                    adapter.force_state(client, run_id, how(message="its parent was cancelled"))
                except adapter.server_errors() as exc:
                    log.warning("could not cancel child run %s: %s", run_id, exc)


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
    ``on_result(i, result)`` as each ends. Cancelling the calling run cancels the children in
    flight and starts no more."""
    from prefect.client.orchestration import get_client
    from prefect.logging import get_run_logger

    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        return _run_all(_Children(deployment_name, client), parameter_sets, in_flight, resubmits,
                        on_result, names, logger)  # fmt: skip


def _run_all(
    children: _Children,
    parameter_sets: Sequence[dict[str, Any]],
    in_flight: int,
    resubmits: int,
    on_result: Callable[[int, Any], None] | None,
    names: Sequence[str] | None,
    logger: Any,
) -> list[Any]:

    def one(index: int) -> Any:
        attempt = 0
        while True:
            attempt += 1
            run_id = children.start(dict(parameter_sets[index]), names[index] if names else None)
            state = children.wait(run_id)
            if not state.is_crashed() or attempt > resubmits:
                break
            logger.warning("child run %s Crashed (%s); submitting it again (%d of %d)",
                           run_id, state.message, attempt, resubmits)  # fmt: skip
        value = adapter.result_of(state)
        if isinstance(value, BaseException):
            raise value
        if on_result:
            on_result(index, value)
        return value

    undo = cancel.on_cancel(children.stop)
    try:
        with ThreadPoolExecutor(max(1, in_flight), thread_name_prefix="mediaflows-child") as pool:
            futures = [pool.submit(contextvars.copy_context().run, one, i)
                       for i in range(len(parameter_sets))]  # fmt: skip
            try:
                return [f.result() for f in futures]
            except BaseException:
                for future in futures:
                    future.cancel()  # those not started yet
                children.stop()  # and those in flight: the run fails anyway
                raise
    except BaseException:
        children.stop()  # what a thread started while the others ended
        raise
    finally:
        undo()
