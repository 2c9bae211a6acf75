"""Reading back what the Prefect server recorded (task runs arrive as events: poll)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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
    run_id: UUID | None,
    expect: int = 1,
    failed: int = 0,
    timeout: float = 20.0,
    named: str = "",
    named_count: int = 1,
) -> list[TaskRun]:
    """The flow run's task runs, once at least ``expect`` are recorded in a final state (and
    ``failed`` of them Failed, and ``named_count`` whose names start with ``named`` among them):
    task run states reach the server as events, a little later and not always in order. ``expect=0``
    waits the whole ``timeout`` (so that a late task run is seen) and returns what is there.
    The test fails when the expectation is not met in time."""
    assert run_id is not None
    deadline = time.monotonic() + timeout
    runs: list[TaskRun] = []
    if expect == 0:
        time.sleep(timeout)
        with get_client(sync_client=True) as client:
            return client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
            )
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
            )
        final = [r for r in runs if r.state is not None and r.state.is_final()]
        n_failed = sum(1 for r in final if r.state is not None and r.state.is_failed())
        has_named = not named or sum(r.name.startswith(named) for r in final) >= named_count
        if len(final) >= expect and len(final) == len(runs) and n_failed >= failed and has_named:
            return runs
        time.sleep(0.3)
    states = [(r.name, r.state.type.value if r.state else None) for r in runs]
    raise AssertionError(
        f"task_runs({run_id}): expected {expect} final ({failed} failed, named {named!r}) "
        f"within {timeout} s; recorded: {states}"
    )


def flow_runs_named(flow_name: str, file_id: str | None = None) -> list[FlowRun]:
    """The runs of the flow ``flow_name`` (on ``file_id``, when given)."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))
    return [r for r in runs if file_id is None or r.parameters.get("file_id") == file_id]


def artifacts(run_id: UUID | None) -> list[Any]:
    assert run_id is not None
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )


def everything_about(run_ids: list[UUID], tasks: int = 1) -> str:
    """All the server returns about these flow runs (the run with its parameters, its logs, its
    artifacts and its task runs), as one text to search."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    seen: list[str] = []
    with get_client(sync_client=True) as client:
        for run_id in run_ids:
            seen.append(client.read_flow_run(run_id).model_dump_json())
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
            )
            seen += [log.model_dump_json() for log in logs]
            seen += [a.model_dump_json() for a in artifacts(run_id)]
            seen += [t.model_dump_json() for t in task_runs(run_id, expect=tasks)]
    return "\n".join(seen)


class ClientBackoffs(logging.Handler):
    """``with ClientBackoffs() as b:`` collects the Prefect client's back-offs on a retryable
    status (503: "database is locked") while the block runs. Retries after a dropped keep-alive
    connection (httpx.ReadError, seen rarely) are counted apart in ``dropped``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []
        self.dropped: list[str] = []
        self._logger = logging.getLogger("prefect.client")
        self._level = self._logger.level

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "retryable status code" in message:
            self.messages.append(message)
        elif "retryable exception" in message:
            self.dropped.append(message)

    def __enter__(self) -> ClientBackoffs:
        self._logger.addHandler(self)
        self._logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)


def flow_runs_with_key(idempotency_key: str) -> list[FlowRun]:
    """Every flow run the server holds for this idempotency key."""
    from prefect.client.schemas.filters import FlowRunFilterIdempotencyKey

    key_filter = FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=[idempotency_key]))
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=key_filter, limit=200)
    return [r for r in runs if r.idempotency_key == idempotency_key]


def flow_run_states(run_ids: list[str]) -> dict[str, int]:
    """{state type: how many} of these flow runs."""
    counts: dict[str, int] = {}
    ids = [UUID(i) for i in run_ids]
    with get_client(sync_client=True) as client:
        for start in range(0, len(ids), 200):
            page = FlowRunFilter(id=FlowRunFilterId(any_=ids[start : start + 200]))
            for run in client.read_flow_runs(flow_run_filter=page, limit=200):
                kind = run.state_type.value if run.state_type else "NONE"
                counts[kind] = counts.get(kind, 0) + 1
    return counts


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


@contextmanager
def running_worker(
    args: list[str], pool: str, name: str, env: dict[str, str], cwd: Path
) -> Iterator[None]:
    """A worker subprocess (``args``, logging to ``cwd/worker.log``) that is online on ``pool``
    under ``name`` for the duration of the block, then stopped."""
    with (cwd / "worker.log").open("w") as log:
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while not worker_online(pool, name):
                assert proc.poll() is None, (cwd / "worker.log").read_text()[-3000:]
                assert time.monotonic() < deadline, f"worker {name} did not come online"
                time.sleep(0.5)
            yield
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
