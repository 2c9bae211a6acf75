"""The skeleton every operation flow shares, so that a flow module holds only its own steps.

``@operation_flow(spec)`` turns a body ``(job) -> Output`` into the operation's Prefect flow
``(profile, file_id, request=None) -> <spec.result>``: typed parameters (the UI's run form shows
the request model's fields), the progress artifact from ``queued`` to ``succeeded``/``failed``
(only the stages the spec declares), the lookup of the input and of every output id, the answer
from the store when the output exists already (no work), a scratch workspace removed at the
end, and the result built by the spec from the stored file.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from prefect import Flow, flow
from prefect.exceptions import Pause
from prefect.runtime import flow_run
from pydantic import BaseModel

from mediaflows.ids import FileId, ProfileName
from mediaflows.media import MediaInfo
from mediaflows.models import OperationResult, ProfileFile, StoredFile
from mediaflows.operations.spec import FileOutput, OperationSpec, OutputIds, TextOutput
from mediaflows.settings import Settings, get_settings
from mediaflows.stages import Stage
from mediaflows.store import remove_workspace, workspace_path
from tasks import prefect_adapter as adapter
from tasks.media import probe_media
from tasks.progress import RunProgress
from tasks.store import (
    fetch_profile_file,
    local_profile_file,
    lookup_input,
    read_text_output,
    store_output,
    store_text_output,
)

RequestT = TypeVar("RequestT", bound=BaseModel)
ResultT = TypeVar("ResultT", bound=OperationResult)
IdsT = TypeVar("IdsT", bound=OutputIds)


@dataclass(frozen=True)
class Job(Generic[RequestT, IdsT]):
    """One run of an operation, as its body sees it: the input, the request, every output id
    (computed once, by the spec), the settings, the progress, a scratch directory."""

    profile: str
    source: ProfileFile
    request: RequestT
    ids: IdsT
    settings: Settings
    progress: RunProgress
    workspace: Path

    @property
    def title(self) -> str:
        """``profile/name``: how artifacts name the input."""
        return f"{self.profile}/{self.source.name}"

    def fetch(self) -> Path:
        """A local copy of the input (the file itself in a local store)."""
        local = local_profile_file(self.source)
        if local is not None:
            return local
        self.progress.stage(Stage.UPLOAD_RECEIVED, "fetching")
        return fetch_profile_file(self.source, self.workspace)

    def fetch_and_probe(self) -> tuple[Path, MediaInfo]:
        """A local copy of the input, and what ffprobe finds in it (unsafe or bad media are
        refused here, before any work)."""
        local = self.fetch()
        self.progress.stage(Stage.PREPARING, "probing")
        return local, probe_media(local, self.source)

    def store(self, output: TextOutput | FileOutput) -> StoredFile:
        """Store one output the procedure made (a task run each)."""
        if isinstance(output, TextOutput):
            return store_text_output(self.profile, self.source, output)
        return store_output(self.profile, self.source, output)


@dataclass(frozen=True)
class Output:
    """What a body made: its stored main output, the text the result carries (if any), one line
    for the progress artifact, and fresh URLs of the other stored files the result names."""

    stored: StoredFile
    content: str | None
    summary: str
    urls: Mapping[str, str] = field(default_factory=dict)


def _run(
    spec: OperationSpec[Any, Any, Any, Any],
    body: Callable[[Job[Any, Any]], Output],
    profile: str,
    file_id: str,
    request: BaseModel,
) -> OperationResult:
    settings = get_settings()
    progress = RunProgress.start(f"{spec.name} {profile}/{file_id}", spec.stages)
    try:
        progress.stage(Stage.UPLOAD_RECEIVED, "looking up")
        source, ids, existing, urls = lookup_input(profile, file_id, spec.name, request)
        if existing is not None:
            content = read_text_output(existing.file) if spec.content is not None else None
            progress.succeeded("already done (stored output)")
            result: OperationResult = spec.result_from(existing, content, True, urls)
            return result
        workspace = workspace_path(str(flow_run.get_id() or ids.main), settings)
        job = Job(profile, source, request, ids, settings, progress, workspace)
        try:
            output = body(job)
        finally:
            remove_workspace(workspace)
    except Pause:  # suspended for a reviewer: it comes back, resumed (tasks.review)
        raise
    except BaseException as exc:
        progress.failed(f"{type(exc).__name__}: {exc}")
        raise
    progress.succeeded(output.summary)
    result = spec.result_from(output.stored, output.content, False, output.urls)
    return result


#: An operation's flow: async, called with (profile, file_id, request), returning its result.
OperationFlow = Flow[..., Coroutine[Any, Any, ResultT]]


def operation_flow(
    spec: OperationSpec[RequestT, ResultT, Any, IdsT],
) -> Callable[[Callable[[Job[RequestT, IdsT]], Output]], OperationFlow[ResultT]]:
    """The Prefect flow of ``spec``, made from its body (whose docstring becomes the flow's).

    The flow is ``async`` for Prefect's engine (an async run ends without the sync engine's ~1 s
    heartbeat-thread join, and a batch's in-process children overlap); the body's tasks are plain
    blocking calls, run one after another in a worker thread (:func:`adapter.run_blocking`).
    """

    def decorate(body: Callable[[Job[RequestT, IdsT]], Output]) -> OperationFlow[ResultT]:
        async def run(
            profile: ProfileName, file_id: FileId, request: BaseModel | None = None
        ) -> Any:
            parsed = spec.parse_request(request)
            return await adapter.run_blocking(_run, spec, body, profile, file_id, parsed)

        adapter.retype(run, spec.name, body.__doc__, spec.result, request=spec.request | None)
        run.__module__ = body.__module__
        made: OperationFlow[ResultT] = flow(
            name=spec.name, log_prints=False, validate_parameters=True, persist_result=True
        )(run)
        return made

    return decorate
