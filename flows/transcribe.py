"""The ``transcribe`` flow: a profile audio/video file → a transcript stored in the profile."""

from __future__ import annotations

import json
from pathlib import PurePath

from prefect import flow

from flows._steps import fetch_and_probe, run_workspace
from mediaflows import whisper
from mediaflows.ids import FileId, ProfileName
from mediaflows.models import StoredFile, TranscribeRequest, TranscribeResult
from mediaflows.outputs import output_id as planned_output_id
from mediaflows.settings import get_settings
from mediaflows.workspace import remove_workspace
from tasks._engine import local_slot, run_blocking
from tasks.progress import report_progress, start_progress
from tasks.store import (
    find_output,
    lookup_profile_file,
    read_text_output,
    store_text_output,
)
from tasks.subtitles import transcript_json
from tasks.whisper import GPU_TAG, transcribe_media


def _result(stored: StoredFile, text: str, cached: bool) -> TranscribeResult:
    file = stored.file
    return TranscribeResult(
        transcript_id=file.id,
        profile=file.profile,
        source_file_id=file.source_file_id or "",
        text=text,
        language=str(file.details.get("language", "")),
        duration=float(file.details.get("duration", 0.0)),
        segments=int(file.details.get("segments", 0)),
        media_url=stored.media_url,
        cached=cached,
    )


@flow(name="transcribe", log_prints=False, validate_parameters=True, persist_result=True)
async def transcribe(
    profile: ProfileName, file_id: FileId, request: TranscribeRequest | None = None
) -> TranscribeResult:
    """Transcribe a profile audio or video file and store the transcript (text, segments and
    words as JSON) in the profile. The same input, options and model are never run twice."""
    return await run_blocking(_transcribe, profile, file_id, request or TranscribeRequest())


def _transcribe(profile: str, file_id: str, request: TranscribeRequest) -> TranscribeResult:
    progress = start_progress("transcribe", f"{profile}/{file_id}")
    report_progress(progress, 1, "fetching")
    source = lookup_profile_file(profile, file_id)
    tool = whisper.tool_version(request)
    options = request.model_dump(mode="json")
    output_id = planned_output_id("transcribe", source, request)
    existing = find_output(profile, output_id)
    if existing is not None:
        text = json.loads(read_text_output(existing.file))["text"]
        report_progress(progress, 100, "done (already transcribed)", wait=True)
        return _result(existing, text, cached=True)

    workspace = run_workspace(output_id)
    try:
        local, info = fetch_and_probe(source, workspace, progress, probe_at=5)
        report_progress(progress, 8, "transcribing 0%")
        with local_slot(GPU_TAG, get_settings().gpu_limit):
            transcription = transcribe_media(
                local, source, request, progress, duration=info.content_duration or info.duration
            )
        report_progress(progress, 95, "storing")
        stored = store_text_output(
            profile,
            output_id,
            transcript_json(transcription),
            name=f"{PurePath(source.name).stem or source.id}.transcript.json",
            kind="transcript",
            source=source,
            operation="transcribe",
            options=options,
            tools={"whisper": tool},
            details={
                "language": transcription.language,
                "duration": transcription.duration,
                "segments": len(transcription.segments),
                "dropped_segments": transcription.dropped,
            },
        )
    finally:
        remove_workspace(workspace)
    report_progress(progress, 100, "done", wait=True)
    return _result(stored, transcription.text, cached=False)
