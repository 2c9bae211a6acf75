"""The Python API: start mediaflows runs, follow them, read their typed results.

```python
from deployments import submit, status, wait

run_id = submit("generate_srt", "alice", "FILE_ID", {"vtt": True}, idempotency_key="talk-42")
print(status(run_id))  # RunStatus(state='RUNNING', stage=Stage.PROCESSING, progress=49.6 …)
srt = wait(run_id, timeout=600)  # SrtResult
```

A single file id runs the operation's flow; a list of ids runs its ``batch_*`` flow
(result: :class:`BatchResult`).

**Which server.** The first call points Prefect at the server, as the CLI does: the one
``PREFECT_API_URL`` names, else the embedded one (started if it is not running). Nothing needs to
be called first.

**Where it runs.** ``via="auto"`` (the default) starts a run of the operation's deployment
(``prefect.yaml``; ``generate_srt/generate_srt`` …) when that deployment exists and a worker of
its pool is online: any worker then picks it up. Otherwise the flow runs in this process, in a
background thread (``MEDIAFLOWS_ORCHESTRATION__IN_PROCESS_RUNS`` at a time, the others wait
``PENDING``; the interpreter finishes them before it exits), recorded on the same server.

**Idempotency.** With an ``idempotency_key``, the server keeps one flow run per (flow, key):
``submit`` with the same key returns that run's id, never starts a second run, even after the
run failed (submit with a new key to try again). In-process, the run is created on the server
with the key before it starts, and only the ``submit`` that created it (the run still
``PENDING`` and unseen in this process) executes it; two processes submitting the same key at
the same instant in-process could both see it ``PENDING``, a window deployments do not have.

**Results across processes.** The flows persist their (small, pydantic) results under
``PREFECT_LOCAL_STORAGE_PATH``; ``wait`` reads them from there, so the worker and the caller must
share that storage (one machine, or a shared/S3 result store: see docs/deployments.md).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from deployments.server import configure_prefect_env
from mediaflows.errors import MediaflowsError, RunFailedError
from mediaflows.ids import check_file_id, check_profile
from mediaflows.models import BatchResult, OperationResult
from mediaflows.settings import get_settings
from mediaflows.stages import Stage, parse
from tasks import prefect_adapter as adapter

if TYPE_CHECKING:
    from mediaflows.operations import OperationName, OperationSpec

__all__ = ["RunFailedError", "RunStatus", "connect", "status", "submit", "wait"]

Via = Literal["auto", "deployment", "in-process"]
Result = OperationResult | BatchResult


class RunStatus(BaseModel):
    """Where a run is: its Prefect state, and the stage and percent its progress artifact shows."""

    model_config = ConfigDict(frozen=True)

    run_id: UUID
    flow: str
    state: str = Field(description="The Prefect state type: PENDING, RUNNING, COMPLETED, …")
    state_name: str
    stage: Stage = Field(description="The run's stage (succeeded/failed once it has ended).")
    detail: str | None = Field(default=None, description='e.g. "transcribing 42%", "12 cues"')
    progress: float | None = Field(default=None, description="Percent, 0 to 100.")
    message: str | None = None
    finished: bool


_connected: str | None = None
_connect_lock = threading.Lock()


def connect() -> str:
    """Point this process's Prefect client at mediaflows' server once, as the CLI does: the one
    ``PREFECT_API_URL`` names, else the embedded server (started if it is not running); its API
    URL. Every call of this API does it first."""
    global _connected
    with _connect_lock:
        if _connected is None:
            _connected = configure_prefect_env(get_settings())
        return _connected


def _flow_name(spec: OperationSpec[Any, Any, Any, Any], file_ids: str | Sequence[str]) -> str:
    return spec.name if isinstance(file_ids, str) else spec.batch_name


def _parameters(
    spec: OperationSpec[Any, Any, Any, Any],
    profile: str,
    file_ids: str | Sequence[str],
    options: BaseModel | dict[str, Any] | None,
) -> dict[str, Any]:
    request = spec.parse_request(options)  # bad options fail here, before any run
    params: dict[str, Any] = {
        "profile": check_profile(profile),
        "request": request.model_dump(mode="json"),
    }
    if isinstance(file_ids, str):
        params["file_id"] = check_file_id(file_ids)
    else:
        params["file_ids"] = [check_file_id(i) for i in file_ids]
    return params


#: (flow name → (when checked, answer)): a burst of submits asks the server once a few seconds.
_online_seen: dict[str, tuple[float, bool]] = {}
ONLINE_CHECK_TTL_S = 5.0


def _online_deployment(flow_name: str) -> bool:
    """True when ``flow/flow`` is deployed and a worker of its pool is online (the answer is
    kept for ``ONLINE_CHECK_TTL_S``)."""
    seen = _online_seen.get(flow_name)
    if seen is not None and time.monotonic() - seen[0] < ONLINE_CHECK_TTL_S:
        return seen[1]
    online = _ask_online_deployment(flow_name)
    _online_seen[flow_name] = (time.monotonic(), online)
    return online


def _ask_online_deployment(flow_name: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import WorkerStatus
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(f"{flow_name}/{flow_name}")
        except ObjectNotFound:
            return False
        if not deployment.work_pool_name:
            return False
        try:
            workers = client.read_workers_for_work_pool(deployment.work_pool_name)
        except ObjectNotFound:
            return False
    return any(w.status == WorkerStatus.ONLINE for w in workers)


def _load_flow(spec: OperationSpec[Any, Any, Any, Any], batch: bool) -> Any:
    from flows.catalog import flow_by_name

    return flow_by_name(spec.batch_name if batch else spec.name)


#: In-process runs started by this process (so a second submit of the key never re-runs one).
_started: set[UUID] = set()
_started_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_flow_ids: dict[str, UUID] = {}


def _runner() -> ThreadPoolExecutor:
    """The threads that execute in-process runs: ``in_process_runs`` at a time, the others wait
    their turn ``PENDING`` (a burst of submits never floods the server). Its threads are not
    daemons: the interpreter finishes every submitted run before it exits."""
    global _executor
    with _started_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=get_settings().orchestration.in_process_runs,
                thread_name_prefix="mediaflows-run",
            )
        return _executor


def _submit_in_process(flow: Any, params: dict[str, Any], key: str | None) -> UUID:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    flow_id = _flow_ids.get(flow.name)
    if flow_id is None:  # an upsert by name: once per process is enough
        with get_client(sync_client=True) as client:
            flow_id = _flow_ids[flow.name] = client.create_flow(flow)
    flow_run = adapter.create_pending_run(flow, flow_id, params, key)
    with _started_lock:
        state = flow_run.state.type if flow_run.state else None
        if flow_run.id in _started or state != StateType.PENDING:
            return flow_run.id  # the key's run exists: started before, never a second time
        _started.add(flow_run.id)
    _runner().submit(adapter.execute_run, flow, flow_run, params)
    return flow_run.id


def submit(
    operation: OperationName,
    profile: str,
    file_ids: str | Sequence[str],
    options: BaseModel | dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    *,
    via: Via = "auto",
) -> UUID:
    """Start ``operation`` on one file (a ``str`` id) or a batch (a list of ids); the run's id.

    Args:
        operation: An operation of :data:`mediaflows.operations.OPERATIONS` (``convert``,
            ``transcribe``, ``generate_srt``, ``fix_srt``, ``translate_srt``).
        profile: The profile holding the files.
        file_ids: One file id, or a list of them (then the ``batch_<operation>`` flow runs).
        options: The operation's request (``GenerateSrtRequest`` …, or its fields as a dict).
        idempotency_key: The same key always returns the same run; never a second one.
        via: ``auto`` (deployment when a worker is online, else in-process), ``deployment``
            or ``in-process``.
    """
    # The registry imports every domain (numpy, ffmpeg-python …): only when the API is used,
    # so that `import deployments` (the embedded server's own process too) stays light.
    from mediaflows.operations import get_operation

    spec = get_operation(operation)
    flow_name = _flow_name(spec, file_ids)
    params = _parameters(spec, profile, file_ids, options)
    connect()
    if via == "in-process" or (via == "auto" and not _online_deployment(flow_name)):
        return _submit_in_process(
            _load_flow(spec, batch=not isinstance(file_ids, str)), params, idempotency_key
        )
    from prefect.deployments import run_deployment

    flow_run = run_deployment(
        name=f"{flow_name}/{flow_name}",
        parameters=params,
        idempotency_key=idempotency_key,
        timeout=0,
        as_subflow=False,
    )
    assert not asyncio.iscoroutine(flow_run)  # sync_compatible: a FlowRun when called sync
    run_id: UUID = flow_run.id
    return run_id


def _progress_artifact(run_id: UUID) -> tuple[Stage, str, float | None]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterType,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]),
                type=ArtifactFilterType(any_=["progress"]),
            ),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    if not found:
        return Stage.QUEUED, "", None
    stage, detail = parse(found[0].description)
    data = found[0].data
    return stage, detail, float(data) if isinstance(data, int | float) else None


_ENDED_FAILED = ("FAILED", "CRASHED", "CANCELLED", "CANCELLING")


def status(run_id: UUID | str) -> RunStatus:
    """The run's Prefect state, and the stage and percent of its progress artifact."""
    connect()
    from prefect.client.orchestration import get_client

    run_id = UUID(str(run_id))
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(run_id)
        flow = client.read_flow(flow_run.flow_id)
    stage, detail, progress = _progress_artifact(run_id)
    state = flow_run.state
    state_type = state.type.value if state else "PENDING"
    # The server's state wins over the artifact: a run killed with its worker never wrote one.
    if state_type == "COMPLETED":
        stage = Stage.SUCCEEDED
    elif state_type in _ENDED_FAILED:
        stage = Stage.FAILED
    elif state_type == "PAUSED" and stage == Stage.AWAITING_REVIEW:
        pass  # waiting for a person: neither failed nor done (deployments.review)
    elif state_type in ("SCHEDULED", "PENDING", "PAUSED"):
        stage = Stage.QUEUED
    return RunStatus(
        run_id=run_id,
        flow=flow.name,
        state=state_type,
        state_name=(state.name or state_type) if state else "Pending",
        stage=stage,
        detail=detail or None,
        progress=progress,
        message=state.message if state else None,
        finished=bool(state and state.is_final()),
    )


def _result_model(flow_name: str) -> type[BaseModel] | None:
    from mediaflows.operations import OPERATIONS

    for spec in OPERATIONS.values():
        if flow_name == spec.name:
            return spec.result
        if flow_name == spec.batch_name:
            return BatchResult
    return None


#: ``wait`` reads a run's state at most this far apart.
MAX_POLL_S = 2.0


def wait(run_id: UUID | str, timeout: float = 3600, poll_s: float = 0.1) -> Result:
    """Wait until the run ends; its typed result (``SrtResult``, ``BatchResult`` …). The run's
    state is read (one small request) every ``poll_s`` at first, then every tenth of the time
    waited so far, at most :data:`MAX_POLL_S`: a short run is seen ending within ``poll_s``, and
    an hour-long wait costs the server ~2,000 reads, not 36,000.

    Raises:
        TimeoutError: the run did not end within ``timeout`` seconds (it goes on).
        RunFailedError: it ended Failed, Crashed or Cancelled.
    """
    connect()
    from prefect.client.orchestration import get_client

    run_id = UUID(str(run_id))
    started = time.monotonic()
    deadline = started + timeout
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(run_id)
            if flow_run.state is not None and flow_run.state.is_final():
                break
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"run {run_id} still {flow_run.state_name} after {timeout} s")
            time.sleep(min(max(poll_s, (now - started) / 10), MAX_POLL_S, deadline - now + 0.01))
        flow = client.read_flow(flow_run.flow_id)
    state = flow_run.state
    assert state is not None
    try:
        value = adapter.result_of(state)  # reads the persisted result
    except Exception as exc:
        if state.is_completed():
            raise MediaflowsError(f"cannot read the result of run {run_id}: {exc}") from exc
        value = None  # a failed run's exception that does not load here: its message tells
    if not state.is_completed():
        raise RunFailedError(run_id, state.name or state.type.value, state.message or "", value)
    model = _result_model(flow.name)
    if model is None or not isinstance(value, model):
        raise MediaflowsError(f"run {run_id} of {flow.name!r} returned {type(value).__name__}")
    assert isinstance(value, OperationResult | BatchResult)
    return value
