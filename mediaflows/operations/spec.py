"""What an operation is, declared: :class:`OperationSpec`, and the records its procedure hands
the flow (:class:`OutputIds`, :class:`TextOutput`, :class:`FileOutput`). This module imports only
the contract (models, settings, stages); each operation's module fills a spec in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from mediaflows.models import FileKind, OperationResult, ProfileFile, StoredFile
from mediaflows.settings import Settings
from mediaflows.stages import Stage


class OutputIds(BaseModel):
    """Every output id of one run, computed once from the input, the request and the tools
    (``ids.output_file_id``): ``main`` is the output whose presence means the run is done; an
    operation that stores more adds its own fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    main: str


@dataclass(frozen=True)
class Made:
    """What every stored output says of itself: its id and name, the operation that made it
    with which options and tool versions, and its typed details."""

    file_id: str
    name: str
    operation: str
    options: dict[str, Any]
    tools: dict[str, str]
    details: BaseModel | None


@dataclass(frozen=True)
class TextOutput(Made):
    """A text file an operation stores (subtitles, a transcript, a manifest)."""

    kind: FileKind
    text: str


@dataclass(frozen=True)
class FileOutput(Made):
    """A file an operation made in its workspace (an MP4), moved into the store."""

    path: Path


RequestT = TypeVar("RequestT", bound=BaseModel)
ResultT = TypeVar("ResultT", bound=OperationResult)
DetailsT = TypeVar("DetailsT", bound=BaseModel)
IdsT = TypeVar("IdsT", bound=OutputIds)

#: How a result is built: the stored main output, its typed details, the text the result
#: carries (if any), whether it was stored before this run, and fresh URLs of the other stored
#: files the result names, by file id.
BuildResult = Callable[[StoredFile, DetailsT, "str | None", bool, Mapping[str, str]], ResultT]


def stem_of(source: ProfileFile) -> str:
    """The input's name without its extension: outputs are named after it."""
    return PurePath(source.name).stem or source.id


def no_links(details: BaseModel) -> tuple[str, ...]:
    """A result that names no other stored file."""
    return ()


#: The stages of an operation whose work runs here (ffmpeg, the local model) …
LOCAL_WORK = (Stage.UPLOAD_RECEIVED, Stage.PREPARING, Stage.PROCESSING, Stage.PROCESSING_RESULT)
#: … of one whose work an external service does (an LLM endpoint) …
PROVIDER_WORK = (
    Stage.UPLOAD_RECEIVED,
    Stage.PREPARING,
    Stage.CALLING_PROVIDER,
    Stage.AWAITING_REVIEW,
    Stage.PROCESSING_RESULT,
)
#: … and of one that does it either way (speech: the local model or an endpoint, by request).
LOCAL_OR_PROVIDER_WORK = (
    Stage.UPLOAD_RECEIVED,
    Stage.PREPARING,
    Stage.PROCESSING,
    Stage.CALLING_PROVIDER,
    Stage.AWAITING_REVIEW,
    Stage.PROCESSING_RESULT,
)


@dataclass(frozen=True)
class OperationSpec(Generic[RequestT, ResultT, DetailsT, IdsT]):
    """One operation: what it takes, what it makes, and how its output is found again.

    Attributes:
        name: The flow's, the deployment's and the Python API's name (``generate_srt``).
        summary: One line for the CLI's help and the docs.
        request: The request model (the flow's ``request`` parameter).
        result: The result model (the flow's return value).
        details: The typed ``details`` of the main output's metadata.
        input_kinds: The kinds of imported file it takes (batches and the sweep pick these).
        stages: The stages a run reports, in order (``queued``, ``succeeded`` and ``failed``
            implied): its progress refuses any other, and the docs list them.
        output_ids: Every output id of a run for a source and a request, computed once (the
            flow's ``Job`` carries them). The main output exists once a file with
            ``.main`` is in the profile: how a run, a re-run and the sweep know the work is done.
        build_result: The result from the stored main output (see :data:`BuildResult`).
        content: How the result's ``content`` is read from the stored main output's text
            (None: the result has no content, nothing is read).
        linked: The ids of the other stored files a result names, from the main output's
            details (fresh URLs of them are looked up for the result; none by default).
        cli_flags: Request fields whose CLI option is not ``--field-name`` (field → flag).
    """

    name: str
    summary: str
    request: type[RequestT]
    result: type[ResultT]
    details: type[DetailsT]
    input_kinds: tuple[FileKind, ...]
    stages: tuple[Stage, ...]
    output_ids: Callable[[ProfileFile, RequestT, Settings], IdsT]
    build_result: BuildResult[DetailsT, ResultT]
    content: Callable[[str], str] | None = None
    linked: Callable[[DetailsT], tuple[str, ...]] = no_links
    cli_flags: Mapping[str, str] = field(default_factory=dict)

    @property
    def cli_name(self) -> str:
        """The CLI's name for it (``generate-srt``)."""
        return self.name.replace("_", "-")

    @property
    def batch_name(self) -> str:
        """Its batch flow's (and deployment's) name."""
        return f"batch_{self.name}"

    @property
    def entrypoint(self) -> str:
        """Where its flow is (``flows/<name>.py:<name>``), as prefect.yaml names it."""
        return f"flows/{self.name}.py:{self.name}"

    def text_output(
        self,
        source: ProfileFile,
        file_id: str,
        suffix: str,
        kind: FileKind,
        text: str,
        *,
        options: dict[str, Any],
        tools: dict[str, str],
        details: BaseModel | None = None,
    ) -> TextOutput:
        """A text file this operation stores, named after its input: ``<stem>.<suffix>``."""
        name = f"{stem_of(source)}.{suffix}"
        return TextOutput(file_id, name, self.name, options, tools, details, kind, text)

    def parse_request(self, options: BaseModel | Mapping[str, Any] | None) -> RequestT:
        """The request from a model or its fields (validated: bad options fail here)."""
        if isinstance(options, self.request):
            return options
        if isinstance(options, BaseModel):
            options = options.model_dump(mode="json")
        return self.request.model_validate(dict(options or {}))

    def output_id(self, source: ProfileFile, request: BaseModel, settings: Settings) -> str:
        """The id of the main output for ``source`` and ``request``."""
        return self.output_ids(source, self.parse_request(request), settings).main

    def links(self, stored: ProfileFile) -> tuple[str, ...]:
        """The ids of the other stored files the result of this stored main output names."""
        return self.linked(self.details.model_validate(stored.details))

    def result_from(
        self,
        stored: StoredFile,
        content: str | None,
        cached: bool,
        urls: Mapping[str, str] | None = None,
    ) -> ResultT:
        """The result for a stored main output (``content``: its text, when the result has
        content; ``urls``: fresh URLs of the files :meth:`links` names, by id)."""
        details = self.details.model_validate(stored.file.details)
        value = self.content(content) if self.content is not None and content is not None else None
        return self.build_result(stored, details, value, cached, urls or {})


def result_builder(
    result: type[ResultT], id_field: str, content_field: str | None = None
) -> BuildResult[Any, ResultT]:
    """How an operation's result is built from its stored main output: the file's id under
    ``id_field``, the content under ``content_field``, and from the stored details every field
    the result model has (``language``, ``qa`` …)."""

    def build(
        stored: StoredFile,
        details: Any,
        content: str | None,
        cached: bool,
        urls: Mapping[str, str],
    ) -> ResultT:
        file = stored.file
        data = {
            **details.model_dump(),
            "size": file.size,
            id_field: file.id,
            "media_url": stored.media_url,
            "profile": file.profile,
            "source_file_id": file.source_file_id or "",
            "cached": cached,
        }
        if content_field is not None:
            data[content_field] = content or ""
        if "urls" in result.model_fields and isinstance(data.get("files"), dict):
            data["urls"] = {f: urls[i] for f, i in data["files"].items() if i in urls}
        return result.model_validate({k: v for k, v in data.items() if k in result.model_fields})

    return build


def as_is(text: str) -> str:
    """A result whose content is the stored text itself."""
    return text
