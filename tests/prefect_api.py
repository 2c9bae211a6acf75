"""Reading back what the Prefect server recorded (task runs arrive as events: poll)."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import FlowRun, TaskRun


def flow_run(run_id: UUID) -> FlowRun:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def task_runs(
    run_id: UUID, expect: int = 1, failed: int = 0, timeout: float = 20.0
) -> list[TaskRun]:
    """The flow run's task runs, once at least ``expect`` are recorded in a final state (and
    ``failed`` of them Failed): task run states reach the server as events, a little later."""
    deadline = time.monotonic() + timeout
    runs: list[TaskRun] = []
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
            )
        final = [r for r in runs if r.state is not None and r.state.is_final()]
        n_failed = sum(1 for r in final if r.state is not None and r.state.is_failed())
        if len(final) >= expect and len(final) == len(runs) and n_failed >= failed:
            return runs
        time.sleep(0.3)
    return runs


def artifacts(run_id: UUID) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )


def flow_runs_with_key(idempotency_key: str) -> list[FlowRun]:
    """Every flow run the server holds for this idempotency key."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200)
    return [r for r in runs if r.idempotency_key == idempotency_key]


def deployments() -> dict[str, Any]:
    """Every deployment, by "flow/deployment" name."""
    with get_client(sync_client=True) as client:
        found = client.read_deployments(limit=200)
        flows = {f.id: f.name for f in client.read_flows(limit=200)}
    return {f"{flows[d.flow_id]}/{d.name}": d for d in found}


def work_pool(name: str) -> Any:
    with get_client(sync_client=True) as client:
        return client.read_work_pool(name)


def worker_online(pool: str, name: str) -> bool:
    from prefect.client.schemas.objects import WorkerStatus
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            workers = client.read_workers_for_work_pool(pool)
        except ObjectNotFound:
            return False
    return any(w.name == name and w.status == WorkerStatus.ONLINE for w in workers)
