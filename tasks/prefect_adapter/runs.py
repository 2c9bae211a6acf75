"""Flow runs handled the way Prefect's own workers and engine handle them: created with an
idempotency key, claimed by one worker, recorded with where they run, and moved to a state
whatever their current one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun, State


def create_pending_run(
    flow: Flow[..., Any], flow_id: UUID, parameters: dict[str, Any], key: str | None
) -> FlowRun:
    """A PENDING flow run of ``flow`` with an idempotency key (the server returns the existing run
    for a key it has seen). ``client.create_flow_run`` takes no idempotency key, so the request is
    sent as the API defines it (``POST /flow_runs/``). CHECK: an ``idempotency_key`` parameter on
    ``PrefectClient.create_flow_run``; ``tests/deployments/test_client.py``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import FlowRunCreate
    from prefect.client.schemas.objects import FlowRun
    from prefect.states import Pending, to_state_create

    create = FlowRunCreate(
        flow_id=flow_id,
        flow_version=flow.version,
        parameters=parameters,
        state=to_state_create(Pending()),
        idempotency_key=key,
        tags=["mediaflows", "in-process"],
    )
    with get_client(sync_client=True) as client:
        response = client.request(
            "POST",
            "/flow_runs/",
            json=create.model_dump(mode="json", exclude_unset=True),
        )
    return FlowRun.model_validate(response.json())


def claim_run(client: SyncPrefectClient, flow_run_id: UUID) -> bool:
    """Claim a scheduled run for this worker with the ``Pending`` proposal Prefect's workers
    make: the server grants it to one worker only. False when another worker took it first (the
    server aborts the proposal) or it is no longer scheduled. ``propose_state_sync`` is the
    engine's own helper, not public API. CHECK: ``tests/deployments/test_warm_worker.py`` (two
    workers, every run once)."""
    from prefect.exceptions import Abort
    from prefect.states import Pending
    from prefect.utilities.engine import propose_state_sync

    try:
        state = propose_state_sync(client, Pending(), flow_run_id=flow_run_id)
    except Abort:
        return False
    return state.is_pending()


def record_where(client: SyncPrefectClient, flow_run_id: UUID, where: str) -> None:
    """Record where a run executes (``host:pid``) as Prefect's workers do, in the run's
    ``infrastructure_pid`` (shown in the UI; tests find the process that holds a run by it).
    CHECK: ``tests/reliability`` (the kill test reads it)."""
    client.update_flow_run(flow_run_id, infrastructure_pid=where)


def force_state(client: SyncPrefectClient, flow_run_id: UUID, state: State[Any]) -> None:
    """Set a run's state whatever its current one (``force=True``, past the server's
    orchestration rules): a warm worker marks the runs it stopped ``Cancelled`` and hands runs
    back (or resubmits a dead worker's ``Crashed`` ones) as ``Scheduled``, transitions the rules
    refuse otherwise. CHECK: ``tests/deployments/test_warm_worker.py`` (cancel, hand back,
    resubmit)."""
    client.set_flow_run_state(flow_run_id, state, force=True)


def wait_paused(
    model: type[Any], key: str, timeout: int, poll_s: float, stop: Callable[[], None]
) -> None:
    """Pause the current flow run with ``model`` as its resume form and block this thread until
    it is resumed (``FlowPauseTimeout`` after ``timeout`` s). Prefect's async version, run to
    its end here: from an async flow's worker thread the sync ``pause_flow_run`` dispatches its
    own inner calls (the form's schema saved) to coroutines nobody awaits (``async_dispatch``
    goes by the flow being async). Prefect's wait looks only for the run to be running again:
    ``stop`` is called every ``poll_s`` beside it and ends the wait by raising (the run was
    cancelled meanwhile). CHECK: tests/flows/test_review.py."""
    import asyncio

    from prefect.flow_runs import apause_flow_run

    async def waiting() -> None:
        # poll_interval is typed int; Prefect sleeps it with anyio, so a float works.
        pausing = apause_flow_run(wait_for_input=model, timeout=timeout, poll_interval=poll_s,
                                  key=key)  # type: ignore[call-overload]  # fmt: skip
        pause = asyncio.ensure_future(pausing)
        try:
            while not pause.done():
                await asyncio.wait({pause}, timeout=poll_s)
                if not pause.done():
                    await asyncio.to_thread(stop)
            pause.result()
        finally:
            pause.cancel()

    asyncio.run(waiting())


def suspend(model: type[Any], key: str, timeout: int | None) -> None:
    """Suspend the current flow run with ``model`` as its resume form: Prefect's ``Pause`` is
    raised, the run's process ends. Called again in the resumed run with the same key, it
    returns at once. Async, run here, as in :func:`wait_paused`. CHECK:
    tests/deployments/test_warm_worker.py (review)."""
    import asyncio

    from prefect.flow_runs import asuspend_flow_run

    asyncio.run(asuspend_flow_run(wait_for_input=model, timeout=timeout,
                                  key=key))  # fmt: skip
