"""The Python API: start mediaflows runs, follow them, read their typed results.

```python
from deployments.client import submit, status, wait

run_id = submit("generate_srt", "alice", "FILE_ID", {"vtt": True}, idempotency_key="talk-42")
print(status(run_id))  # RunStatus(state='RUNNING', phase='processing', progress=42.0 …)
srt = wait(run_id, timeout=600)  # SrtResult
```

A single file id runs the operation's flow; a list of ids runs its ``batch_*`` flow
(result: :class:`BatchResult`).

**Where it runs.** ``via="auto"`` (the default) starts a run of the operation's deployment
(``prefect.yaml``; ``generate_srt/generate_srt`` …) when that deployment exists and a worker of
its pool is online: any worker then picks it up. Otherwise the flow runs in this process, in a
background thread (``MEDIAFLOWS_IN_PROCESS_RUNS`` at a time, the others wait ``PENDING``; the
interpreter finishes them before it exits), recorded on the same server.

**Idempotency.** With an ``idempotency_key``, the server keeps one flow run per (flow, key):
``submit`` with the same key returns that run's id, never starts a second run, even after the
run failed (submit with a new key to try again). In-process, the run is created on the server
with the key before it starts, and only the ``submit`` that created it (the run still
``PENDING`` and unseen in this process) executes it; two processes submitting the same key at
the same instant in-process could both see it ``PENDING``, a window deployments do not have.

**Results across processes.** The flows persist their (small, pydantic) results under
``PREFECT_LOCAL_STORAGE_PATH``; ``wait`` reads them from there, so the worker and the caller must
share that storage (one machine, or a shared/S3 result store: see "Scale-out" in the README).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from mediaflows.errors import InputError, MediaflowsError
from mediaflows.ids import check_file_id, check_profile
from mediaflows.models import BatchResult, ConvertResult, SrtResult, TranscribeResult
from mediaflows.outputs import OPERATIONS, REQUEST_MODELS, Operation
from mediaflows.settings import get_settings

Via = Literal["auto", "deployment", "in-process"]
Phase = Literal["queued", "preparing", "processing", "storing", "done", "failed"]
Result = ConvertResult | TranscribeResult | SrtResult | BatchResult

RESULT_MODELS: dict[str, type[BaseModel]] = {
    "convert": ConvertResult,
    "transcribe": TranscribeResult,
    "generate_srt": SrtResult,
    "fix_srt": SrtResult,
    **{f"batch_{op}": BatchResult for op in OPERATIONS},
}

#: Progress stages (the progress artifact's description) by the phase they belong to.
_PREPARING = ("fetching", "probing", "reading", "preparing", "importing", "scanning")
_STORING = ("storing", "building cues")


class RunStatus(BaseModel):
    """Where a run is: its Prefect state, and the stage and percent its progress artifact shows."""

    model_config = ConfigDict(frozen=True)

    run_id: UUID
    flow: str
    state: str  # the Prefect state type: SCHEDULED, PENDING, RUNNING, COMPLETED, FAILED, …
    state_name: str
    phase: Phase
    stage: str | None = None  # e.g. "transcribing 42%", "done (12 cues)"
    progress: float | None = None  # percent, 0 to 100
    message: str | None = None
    finished: bool


class RunFailedError(MediaflowsError):
    """The run ended in a state other than Completed (its result, if any, is attached)."""

    def __init__(self, run_id: UUID, state: str, message: str, result: Any = None) -> None:
        super().__init__(f"run {run_id} ended {state}: {message}")
        self.run_id = run_id
        self.state = state
        self.result = result


def _flow_name(operation: str, file_ids: str | Sequence[str]) -> str:
    if operation not in OPERATIONS:
        raise InputError(f"unknown operation {operation!r}; one of: {', '.join(OPERATIONS)}")
    return operation if isinstance(file_ids, str) else f"batch_{operation}"


def _parameters(
    operation: Operation,
    profile: str,
    file_ids: str | Sequence[str],
    options: BaseModel | dict[str, Any] | None,
) -> dict[str, Any]:
    model = REQUEST_MODELS[operation]
    if isinstance(options, BaseModel):
        options = options.model_dump(mode="json")
    request = model.model_validate(options or {})  # bad options fail here, before any run
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


def _load_flow(flow_name: str) -> Any:
    from flows import batch, convert, fix_srt, generate_srt, transcribe

    flows = {
        "convert": convert.convert,
        "transcribe": transcribe.transcribe,
        "generate_srt": generate_srt.generate_srt,
        "fix_srt": fix_srt.fix_srt,
        **{f"batch_{op}": getattr(batch, f"batch_{op}") for op in OPERATIONS},
    }
    return flows[flow_name]


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
                max_workers=get_settings().in_process_runs, thread_name_prefix="mediaflows-run"
            )
        return _executor


def _submit_in_process(flow_name: str, params: dict[str, Any], key: str | None) -> UUID:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import FlowRunCreate
    from prefect.client.schemas.objects import FlowRun, StateType
    from prefect.flow_engine import run_flow
    from prefect.states import Pending, to_state_create

    flow = _load_flow(flow_name)
    with get_client(sync_client=True) as client:
        flow_id = _flow_ids.get(flow_name)
        if flow_id is None:  # an upsert by name: once per process is enough
            flow_id = _flow_ids[flow_name] = client.create_flow(flow)
        create = FlowRunCreate(
            flow_id=flow_id,
            flow_version=flow.version,
            parameters=params,
            state=to_state_create(Pending()),
            idempotency_key=key,
            tags=["mediaflows", "in-process"],
        )
        response = client.request(
            "POST", "/flow_runs/", json=create.model_dump(mode="json", exclude_unset=True)
        )
        flow_run = FlowRun.model_validate(response.json())
    with _started_lock:
        state = flow_run.state.type if flow_run.state else None
        if flow_run.id in _started or state != StateType.PENDING:
            return flow_run.id  # the key's run exists: started before, never a second time
        _started.add(flow_run.id)

    def execute() -> None:
        outcome = run_flow(flow, flow_run=flow_run, parameters=params, return_type="state")
        if asyncio.iscoroutine(outcome):
            asyncio.run(outcome)

    _runner().submit(execute)
    return flow_run.id


def submit(
    operation: Operation,
    profile: str,
    file_ids: str | Sequence[str],
    options: BaseModel | dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    *,
    via: Via = "auto",
) -> UUID:
    """Start ``operation`` on one file (a ``str`` id) or a batch (a list of ids); the run's id.

    Args:
        operation: ``convert``, ``transcribe``, ``generate_srt`` or ``fix_srt``.
        profile: The profile holding the files.
        file_ids: One file id, or a list of them (then the ``batch_<operation>`` flow runs).
        options: The operation's request (``GenerateSrtRequest`` …, or its fields as a dict).
        idempotency_key: The same key always returns the same run; never a second one.
        via: ``auto`` (deployment when a worker is online, else in-process), ``deployment``
            or ``in-process``.
    """
    flow_name = _flow_name(operation, file_ids)
    params = _parameters(operation, profile, file_ids, options)
    if via == "in-process" or (via == "auto" and not _online_deployment(flow_name)):
        return _submit_in_process(flow_name, params, idempotency_key)
    from prefect.deployments import run_deployment

    flow_run = run_deployment(
        name=f"{flow_name}/{flow_name}",
        parameters=params,
        idempotency_key=idempotency_key,
        timeout=0,
        as_subflow=False,
    )
    return flow_run.id  # type: ignore[union-attr,no-any-return]


def _phase(state: str, stage: str | None) -> Phase:
    if state in ("COMPLETED",):
        return "done"
    if state in ("FAILED", "CRASHED", "CANCELLED", "CANCELLING"):
        return "failed"
    if state in ("SCHEDULED", "PENDING", "PAUSED") or not stage or stage.endswith("queued"):
        return "queued"
    if stage.startswith("done"):
        return "done"
    if stage.startswith(_STORING):
        return "storing"
    if stage.startswith(_PREPARING):
        return "preparing"
    return "processing"


def _progress_artifact(run_id: UUID) -> tuple[str | None, float | None]:
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
        return None, None
    artifact = found[0]
    description = artifact.description or ""
    # "generate_srt alice/abc: queued" at first; then the stage alone ("transcribing 42%").
    stage = description.rsplit(": ", 1)[-1] if ": " in description else description
    data = artifact.data
    return stage or None, float(data) if isinstance(data, int | float) else None


def status(run_id: UUID | str) -> RunStatus:
    """The run's Prefect state, and the stage and percent of its progress artifact."""
    from prefect.client.orchestration import get_client

    run_id = UUID(str(run_id))
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(run_id)
        flow = client.read_flow(flow_run.flow_id)
    stage, progress = _progress_artifact(run_id)
    state = flow_run.state
    state_type = state.type.value if state else "PENDING"
    return RunStatus(
        run_id=run_id,
        flow=flow.name,
        state=state_type,
        state_name=state.name if state else "Pending",
        phase=_phase(state_type, stage),
        stage=stage,
        progress=progress,
        message=state.message if state else None,
        finished=bool(state and state.is_final()),
    )


def wait(run_id: UUID | str, timeout: float = 3600, poll_s: float = 0.5) -> Result:
    """Wait until the run ends; its typed result (``SrtResult``, ``BatchResult`` …).

    Raises:
        TimeoutError: the run did not end within ``timeout`` seconds (it goes on).
        RunFailedError: it ended Failed, Crashed or Cancelled.
    """
    from prefect.client.orchestration import get_client

    run_id = UUID(str(run_id))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(run_id)
            if flow_run.state is not None and flow_run.state.is_final():
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {flow_run.state_name} after {timeout} s")
            time.sleep(poll_s)
        flow = client.read_flow(flow_run.flow_id)
    state = flow_run.state
    try:
        value = state.result(raise_on_failure=False)  # reads the persisted result
        if asyncio.iscoroutine(value):
            value = asyncio.run(value)
    except Exception as exc:
        if state.is_completed():
            raise MediaflowsError(f"cannot read the result of run {run_id}: {exc}") from exc
        value = None  # a failed run's exception that does not load here: its message tells
    if not state.is_completed():
        raise RunFailedError(run_id, state.name or state.type.value, state.message or "", value)
    model = RESULT_MODELS.get(flow.name)
    if model is None or not isinstance(value, model):
        raise MediaflowsError(f"run {run_id} of {flow.name!r} returned {type(value).__name__}")
    return value  # type: ignore[return-value]
