"""What each operation takes and the deterministic id of what it makes: shared by the flows
(find the output before any work) and the sweep (which inputs still lack their output)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel

from mediaflows import llm, media, whisper
from mediaflows.ids import output_file_id
from mediaflows.models import (
    ConvertRequest,
    FileKind,
    FixSrtRequest,
    GenerateSrtRequest,
    ProfileFile,
    TranscribeRequest,
)
from mediaflows.settings import Settings, get_settings

Operation = Literal["convert", "transcribe", "generate_srt", "fix_srt"]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)

#: The kinds of imported file each operation takes.
INPUT_KINDS: dict[Operation, tuple[FileKind, ...]] = {
    "convert": ("video",),
    "transcribe": ("video", "audio"),
    "generate_srt": ("video", "audio"),
    "fix_srt": ("subtitle",),
}

#: The request model of each operation (the flows' ``request`` parameter).
REQUEST_MODELS: dict[Operation, type[BaseModel]] = {
    "convert": ConvertRequest,
    "transcribe": TranscribeRequest,
    "generate_srt": GenerateSrtRequest,
    "fix_srt": FixSrtRequest,
}


def fix_srt_options(request: FixSrtRequest, settings: Settings | None = None) -> dict[str, object]:
    """fix_srt's options as they enter its output id: the request with the model resolved."""
    settings = settings or get_settings()
    return {
        **request.model_dump(mode="json"),
        "model": llm.resolve_model(request.model, settings.llm),
    }


def generate_srt_ids(
    source: ProfileFile, request: GenerateSrtRequest, settings: Settings | None = None
) -> tuple[str, str, str]:
    """The ids of generate_srt's SRT, WebVTT and JSON outputs for this source and request."""
    tool = whisper.tool_version(request.transcribe_request(), settings)
    options = request.model_dump(mode="json")
    srt, vtt, json_ = (
        output_file_id(source.sha256, "generate_srt", options, tool, variant)
        for variant in ("srt", "vtt", "json")
    )
    return srt, vtt, json_


def output_id(
    operation: Operation,
    source: ProfileFile,
    request: BaseModel,
    settings: Settings | None = None,
) -> str:
    """The id under which ``operation`` stores its (main) output for ``source`` and ``request``.

    The output exists once a file with this id is in the profile: that is how a run, a re-run
    and the sweep know that the work is done.
    """
    settings = settings or get_settings()
    if operation == "convert":
        assert isinstance(request, ConvertRequest)
        return media.convert_output_id(source.sha256, request, settings)
    if operation == "transcribe":
        assert isinstance(request, TranscribeRequest)
        tool = whisper.tool_version(request, settings)
        return output_file_id(source.sha256, "transcribe", request.model_dump(mode="json"), tool)
    if operation == "generate_srt":
        assert isinstance(request, GenerateSrtRequest)
        return generate_srt_ids(source, request, settings)[0]
    assert isinstance(request, FixSrtRequest)
    options = fix_srt_options(request, settings)
    return output_file_id(
        source.sha256, "fix_srt", options, f"{options['model']}|{llm.PROMPT_VERSION}"
    )
