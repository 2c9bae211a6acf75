"""The operations mediaflows runs, each declared once: an :class:`OperationSpec`.

Everything that lists or dispatches operations reads :data:`OPERATIONS`: the CLI (its ``run`` and
``batch`` commands and their options), the Python API (``submit``/``wait``), the batch flows (one
``batch_<name>`` flow and deployment per operation), the sweep, ``mediaflows setup`` (which flows
the crash automation watches) and ``prefect.yaml`` (generated: ``python -m deployments.generate``).

Adding an operation is one spec here, one flow module ``flows/<name>.py`` whose flow is named
``<name>`` (see ``flows/_operation.py``), and its tasks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from mediaflows import llm, translation, whisper
from mediaflows.errors import InputError
from mediaflows.ids import output_file_id
from mediaflows.models import (
    ConvertDetails,
    ConvertRequest,
    ConvertResult,
    FileKind,
    FixSrtRequest,
    GenerateSrtRequest,
    OperationResult,
    ProfileFile,
    SrtDetails,
    SrtResult,
    StoredFile,
    TranscribeRequest,
    TranscribeResult,
    TranscriptDetails,
    TranslateSrtDetails,
    TranslateSrtRequest,
    TranslateSrtResult,
    Translation,
    TranslationRef,
)
from mediaflows.settings import Settings, get_settings
from mediaflows.stages import Stage
from mediaflows.tools import ffmpeg_version

RequestT = TypeVar("RequestT", bound=BaseModel)
ResultT = TypeVar("ResultT", bound=OperationResult)
DetailsT = TypeVar("DetailsT", bound=BaseModel)


@dataclass(frozen=True)
class OperationSpec(Generic[RequestT, ResultT, DetailsT]):
    """One operation: what it takes, what it makes, and how its output is found again.

    Attributes:
        name: The flow's, the deployment's and the Python API's name (``generate_srt``).
        summary: One line for the CLI's help and the docs.
        request: The request model (the flow's ``request`` parameter).
        result: The result model (the flow's return value).
        details: The typed ``details`` of the main output's metadata.
        input_kinds: The kinds of imported file it takes (batches and the sweep pick these).
        stages: The stages a run goes through, in order (``succeeded``/``failed`` implied).
        output_id: The deterministic id of the main output for a source and a request: the
            output exists once a file with this id is in the profile (how a run, a re-run and
            the sweep know the work is done).
        build_result: The result from the stored main output, its details and its content.
        content: How the result's ``content`` is read from the stored main output's text
            (None: the result has no content, nothing is read).
        cli_flags: Request fields whose CLI option is not ``--field-name`` (field → flag).
    """

    name: str
    summary: str
    request: type[RequestT]
    result: type[ResultT]
    details: type[DetailsT]
    input_kinds: tuple[FileKind, ...]
    stages: tuple[Stage, ...]
    output_id: Callable[[ProfileFile, RequestT, Settings], str]
    build_result: Callable[[StoredFile, DetailsT, str | None, bool], ResultT]
    content: Callable[[str], str] | None = None
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

    def parse_request(self, options: BaseModel | Mapping[str, Any] | None) -> RequestT:
        """The request from a model or its fields (validated: bad options fail here)."""
        if isinstance(options, self.request):
            return options
        if isinstance(options, BaseModel):
            options = options.model_dump(mode="json")
        return self.request.model_validate(dict(options or {}))

    def result_from(self, stored: StoredFile, content: str | None, cached: bool) -> ResultT:
        """The result for a stored main output (``content``: its text, when the result has
        content)."""
        details = self.details.model_validate(stored.file.details)
        value = self.content(content) if self.content is not None and content is not None else None
        return self.build_result(stored, details, value, cached)


# ---- output ids ------------------------------------------------------------------------------


def _convert_id(source: ProfileFile, request: ConvertRequest, settings: Settings) -> str:
    tool = ffmpeg_version(settings.media.ffmpeg_binary)
    return output_file_id(source.sha256, "convert", request.model_dump(mode="json"), tool)


def _transcribe_id(source: ProfileFile, request: TranscribeRequest, settings: Settings) -> str:
    tool = whisper.tool_version(request, settings)
    return output_file_id(source.sha256, "transcribe", request.model_dump(mode="json"), tool)


def generate_srt_ids(
    source: ProfileFile, request: GenerateSrtRequest, settings: Settings | None = None
) -> tuple[str, str, str]:
    """The ids of generate_srt's SRT, WebVTT and JSON outputs for this source and request (the
    same whatever languages the request also translates into)."""
    tool = whisper.tool_version(request.transcribe_request(), settings)
    options = request.subtitle_options()
    srt, vtt, json_ = (
        output_file_id(source.sha256, "generate_srt", options, tool, variant)
        for variant in ("srt", "vtt", "json")
    )
    return srt, vtt, json_


def generate_srt_translation_ids(
    source: ProfileFile, request: GenerateSrtRequest, settings: Settings | None = None
) -> tuple[str, str]:
    """The ids of generate_srt's manifest (the SRT and its translations) and of the English SRT
    Whisper's own translate task makes (``translation="whisper"``)."""
    settings = settings or get_settings()
    tool = whisper.tool_version(request.transcribe_request(), settings)
    options: dict[str, Any] = request.model_dump(mode="json")
    if request.translation == "llm":
        options["llm"] = llm_options(request.translation_model, settings)
    manifest = output_file_id(source.sha256, "generate_srt", options, tool, "manifest")
    english = output_file_id(source.sha256, "generate_srt", request.subtitle_options(), tool,
                             "whisper-en")  # fmt: skip
    return manifest, english


def llm_options(selector: str | None, settings: Settings | None = None) -> dict[str, Any]:
    """The model a request picks, resolved, and every setting that changes the LLM's answer (the
    endpoint, its output mode, the chunking, the sampling, the acceptance threshold): they enter
    the output ids of the operations an LLM does. The API key never does."""
    settings = settings or get_settings()
    endpoint = settings.llm.model_dump(
        mode="json",
        include={"base_url", "response_format", "chunk_cues", "context_cues", "temperature",
                 "min_similarity", "chunk_attempts"},
    )  # fmt: skip
    return {"model": llm.resolve_model(selector, settings.llm), "endpoint": endpoint}


def fix_srt_options(request: FixSrtRequest, settings: Settings | None = None) -> dict[str, Any]:
    """fix_srt's options as they enter its output id: the request and :func:`llm_options`."""
    return {**request.model_dump(mode="json"), **llm_options(request.model, settings)}


def _fix_srt_id(source: ProfileFile, request: FixSrtRequest, settings: Settings) -> str:
    options = fix_srt_options(request, settings)
    tool = f"{options['model']}|{llm.PROMPT_VERSION}"
    return output_file_id(source.sha256, "fix_srt", options, tool)


def translate_srt_ids(
    source: ProfileFile, request: TranslateSrtRequest, settings: Settings | None = None
) -> tuple[str, dict[str, str]]:
    """The ids of translate_srt's manifest and of each language's SRT. A language's SRT id does
    not depend on the other targets: a run with one more language finds the others stored."""
    llm_part = llm_options(request.model, settings)
    tool = f"{llm_part['model']}|{translation.PROMPT_VERSION}"
    manifest = output_file_id(
        source.sha256, "translate_srt", {**request.model_dump(mode="json"), **llm_part}, tool,
        "manifest",
    )  # fmt: skip
    per_language = {
        language: output_file_id(
            source.sha256,
            "translate_srt",
            {**request.for_language(language), **llm_part},
            tool,
            language,
        )
        for language in request.target_languages
    }
    return manifest, per_language


def _translate_srt_id(source: ProfileFile, request: TranslateSrtRequest, settings: Settings) -> str:
    return translate_srt_ids(source, request, settings)[0]


# ---- results ---------------------------------------------------------------------------------


def result_builder(
    result: type[ResultT], id_field: str, content_field: str | None = None
) -> Callable[[StoredFile, Any, str | None, bool], ResultT]:
    """How an operation's result is built from its stored main output: the file's id under
    ``id_field``, the content under ``content_field``, and from the stored details every field
    the result model has (``language``, ``qa`` …)."""

    def build(stored: StoredFile, details: Any, content: str | None, cached: bool) -> ResultT:
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
        return result.model_validate({k: v for k, v in data.items() if k in result.model_fields})

    return build


def _media_urls(profile: str, file_ids: list[str]) -> dict[str, str]:
    """Fresh URLs of other stored files (the translations a manifest lists)."""
    from mediaflows.store import ProfileStore

    store = ProfileStore.from_settings()
    return {i: store.media_url(store.get(profile, i)) for i in file_ids}


def translations_of(
    profile: str, refs: tuple[TranslationRef, ...], texts: Mapping[str, str]
) -> tuple[Translation, ...]:
    """The translations a manifest lists, with their text and fresh URLs."""
    urls = _media_urls(profile, [r.file_id for r in refs])
    return tuple(
        Translation(**r.model_dump(), media_url=urls[r.file_id], content=texts.get(r.language, ""))
        for r in refs
    )


def manifest_text(translations: Mapping[str, str], srt: str | None = None) -> str:
    """A manifest's content: each translation's SRT by language (and the source SRT)."""
    return json.dumps({"srt": srt, "translations": dict(translations)}, ensure_ascii=False)


def _translate_result(
    stored: StoredFile, details: TranslateSrtDetails, content: str | None, cached: bool
) -> TranslateSrtResult:
    texts = json.loads(content)["translations"] if content else {}
    return TranslateSrtResult(
        profile=stored.file.profile,
        source_file_id=stored.file.source_file_id or "",
        media_url=stored.media_url,
        cached=cached,
        file_id=stored.file.id,
        source_language=details.source_language,
        translations=translations_of(stored.file.profile, details.translations, texts),
    )


def _srt_result(
    stored: StoredFile, details: SrtDetails, content: str | None, cached: bool
) -> SrtResult:
    """An SRT result; from generate_srt's manifest when the request had target languages (the
    result is then the source SRT's, with the translations)."""
    plain = result_builder(SrtResult, "file_id", "content")
    if details.srt_file_id is None:
        return plain(stored, details, content, cached)
    data: dict[str, Any] = json.loads(content) if content else {"srt": "", "translations": {}}
    profile = stored.file.profile
    result = plain(stored, details.model_copy(update={"translations": ()}), data["srt"], cached)
    return result.model_copy(
        update={
            "file_id": details.srt_file_id,
            "media_url": _media_urls(profile, [details.srt_file_id])[details.srt_file_id],
            "manifest_id": stored.file.id,
            "translations": translations_of(profile, details.translations, data["translations"]),
        }
    )


def _transcript_text(stored_json: str) -> str:
    return str(json.loads(stored_json)["text"])


def _as_is(text: str) -> str:
    return text


#: The stages of an operation whose work runs here (ffmpeg, the local model) …
LOCAL_WORK = (Stage.UPLOAD_RECEIVED, Stage.PREPARING, Stage.PROCESSING, Stage.PROCESSING_RESULT)
#: … and of one whose work an external service does (an LLM endpoint).
PROVIDER_WORK = (
    Stage.UPLOAD_RECEIVED,
    Stage.PREPARING,
    Stage.CALLING_PROVIDER,
    Stage.PROCESSING_RESULT,
)

# ---- the registry ----------------------------------------------------------------------------

CONVERT: OperationSpec[ConvertRequest, ConvertResult, ConvertDetails] = OperationSpec(
    name="convert",
    summary="video → web-ready MP4",
    request=ConvertRequest,
    result=ConvertResult,
    details=ConvertDetails,
    input_kinds=("video",),
    stages=LOCAL_WORK,
    output_id=_convert_id,
    build_result=result_builder(ConvertResult, "file_id"),
)

TRANSCRIBE: OperationSpec[TranscribeRequest, TranscribeResult, TranscriptDetails] = OperationSpec(
    name="transcribe",
    summary="audio/video → transcript",
    request=TranscribeRequest,
    result=TranscribeResult,
    details=TranscriptDetails,
    input_kinds=("video", "audio"),
    stages=LOCAL_WORK,
    output_id=_transcribe_id,
    build_result=result_builder(TranscribeResult, "transcript_id", "text"),
    content=_transcript_text,
)


def _generate_srt_id(source: ProfileFile, request: GenerateSrtRequest, settings: Settings) -> str:
    if request.target_languages:  # the manifest, stored last: the SRT and every translation
        return generate_srt_translation_ids(source, request, settings)[0]
    return generate_srt_ids(source, request, settings)[0]


GENERATE_SRT: OperationSpec[GenerateSrtRequest, SrtResult, SrtDetails] = OperationSpec(
    name="generate_srt",
    summary="audio/video → subtitles (SRT, VTT, JSON)",
    request=GenerateSrtRequest,
    result=SrtResult,
    details=SrtDetails,
    input_kinds=("video", "audio"),
    stages=LOCAL_WORK,
    output_id=_generate_srt_id,
    build_result=_srt_result,
    content=_as_is,
    cli_flags={"target_languages": "--to"},
)

FIX_SRT: OperationSpec[FixSrtRequest, SrtResult, SrtDetails] = OperationSpec(
    name="fix_srt",
    summary="SRT → the same cues with their text repaired by an LLM",
    request=FixSrtRequest,
    result=SrtResult,
    details=SrtDetails,
    input_kinds=("subtitle",),
    stages=PROVIDER_WORK,
    output_id=_fix_srt_id,
    build_result=result_builder(SrtResult, "file_id", "content"),
    content=_as_is,
)

TRANSLATE_SRT: OperationSpec[TranslateSrtRequest, TranslateSrtResult, TranslateSrtDetails] = (
    OperationSpec(
        name="translate_srt",
        summary="SRT → one SRT per target language, the same cues and times, by an LLM",
        request=TranslateSrtRequest,
        result=TranslateSrtResult,
        details=TranslateSrtDetails,
        input_kinds=("subtitle",),
        stages=PROVIDER_WORK,
        output_id=_translate_srt_id,
        build_result=_translate_result,
        content=_as_is,
        cli_flags={"target_languages": "--to"},
    )
)

#: Every operation, by name, in the order the CLI and the docs list them.
OPERATIONS: dict[str, OperationSpec[Any, Any, Any]] = {
    spec.name: spec for spec in (CONVERT, TRANSCRIBE, GENERATE_SRT, FIX_SRT, TRANSLATE_SRT)
}


if TYPE_CHECKING:
    OperationName = str
else:
    #: An operation's name as a parameter type: the UI's run forms offer the choices.
    OperationName = Literal[tuple(OPERATIONS)]


def get_operation(name: str) -> OperationSpec[Any, Any, Any]:
    """The operation called ``name`` (``generate_srt``, or the CLI's ``generate-srt``);
    :class:`InputError` naming the choices for any other name."""
    spec = OPERATIONS.get(name.replace("-", "_"))
    if spec is None:
        raise InputError(f"unknown operation {name!r}; one of: {', '.join(OPERATIONS)}")
    return spec


def output_id(
    operation: str, source: ProfileFile, request: BaseModel, settings: Settings | None = None
) -> str:
    """The id under which ``operation`` stores its main output for ``source`` and ``request``."""
    spec = get_operation(operation)
    return spec.output_id(source, spec.parse_request(request), settings or get_settings())
