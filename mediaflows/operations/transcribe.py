"""``transcribe``: a profile audio/video file → a transcript (text, segments and words as JSON),
by the model in the worker or a configured speech endpoint (``provider``)."""

from __future__ import annotations

import json

from mediaflows.ids import output_file_id
from mediaflows.models import ProfileFile, TranscribeRequest, TranscribeResult, TranscriptDetails
from mediaflows.operations.spec import (
    LOCAL_OR_PROVIDER_WORK,
    OperationSpec,
    OutputIds,
    TextOutput,
    result_builder,
)
from mediaflows.settings import Settings
from mediaflows.speech import Transcription, tool_version
from mediaflows.speech.guard import GUARD_VERSION
from mediaflows.subtitles.formats import to_json

#: Part of the transcript's id: bump it when the same transcription makes another transcript
#: (v2: segments joined without a space between characters of scripts written without spaces).
TRANSCRIPT_VERSION = "transcript-v2"


def output_ids(source: ProfileFile, request: TranscribeRequest, settings: Settings) -> OutputIds:
    """The transcript's id: the input's content, the request and the model (or endpoint)."""
    tool = f"{tool_version(request, settings)}|{TRANSCRIPT_VERSION}|{GUARD_VERSION}"
    return OutputIds(
        main=output_file_id(source.sha256, "transcribe", request.model_dump(mode="json"), tool)
    )


def _transcript_text(stored_json: str) -> str:
    return str(json.loads(stored_json)["text"])


TRANSCRIBE: OperationSpec[TranscribeRequest, TranscribeResult, TranscriptDetails, OutputIds] = (
    OperationSpec(
        "transcribe", "audio/video → transcript", TranscribeRequest, TranscribeResult,
        TranscriptDetails, input_kinds=("video", "audio"), stages=LOCAL_OR_PROVIDER_WORK,
        output_ids=output_ids, content=_transcript_text,
        build_result=result_builder(TranscribeResult, "transcript_id", "text"),
    )
)  # fmt: skip


def transcript(
    source: ProfileFile,
    request: TranscribeRequest,
    ids: OutputIds,
    transcription: Transcription,
    settings: Settings,
) -> TextOutput:
    """The transcript as it is stored: ``<name>.transcript.json`` (text, language, segments and
    words), with what the model found."""
    details = TranscriptDetails(
        language=transcription.language,
        language_probability=transcription.language_probability,
        language_doubtful=transcription.language_doubtful,
        duration=transcription.duration,
        segments=len(transcription.segments),
        dropped_segments=transcription.dropped,
        asr=transcription.asr,
    )
    return TRANSCRIBE.text_output(
        source, ids.main, "transcript.json", "transcript", to_json(transcription),
        options=request.model_dump(mode="json"),
        tools={"whisper": tool_version(request, settings)}, details=details,
    )  # fmt: skip


def summary(transcription: Transcription) -> str:
    """The run's last word in the UI."""
    return f"{len(transcription.segments)} segments"
