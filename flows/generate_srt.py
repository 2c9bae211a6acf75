"""The ``generate_srt`` flow: a profile audio/video file → readable subtitles (SRT, and on
request WebVTT and JSON) stored in the profile, with a QA report."""

from __future__ import annotations

from pathlib import PurePath

from prefect import flow

from flows._steps import fetch_and_probe, run_workspace, srt_result
from mediaflows import whisper
from mediaflows.ids import FileId, ProfileName
from mediaflows.models import GenerateSrtRequest, SrtResult
from mediaflows.outputs import generate_srt_ids
from mediaflows.settings import get_settings
from mediaflows.workspace import remove_workspace
from tasks._engine import local_slot, run_blocking
from tasks.progress import publish_qa_report, report_progress, start_progress
from tasks.store import (
    find_output,
    lookup_profile_file,
    read_text_output,
    store_text_output,
)
from tasks.subtitles import build_subtitles
from tasks.whisper import GPU_TAG, transcribe_media


@flow(name="generate_srt", log_prints=False, validate_parameters=True, persist_result=True)
async def generate_srt(
    profile: ProfileName, file_id: FileId, request: GenerateSrtRequest | None = None
) -> SrtResult:
    """Transcribe a profile audio or video file and store subtitles built from the words: at most
    42 characters a line, 2 lines a cue, 20 characters a second, 0.83–7 s a cue (by default).

    The transcription is cached by content, options and model, so other cue rules or formats for
    the same file do not run the model again; the same request returns the stored SRT."""
    return await run_blocking(_generate_srt, profile, file_id, request or GenerateSrtRequest())


def _generate_srt(profile: str, file_id: str, request: GenerateSrtRequest) -> SrtResult:
    progress = start_progress("generate_srt", f"{profile}/{file_id}")
    report_progress(progress, 1, "fetching")
    source = lookup_profile_file(profile, file_id)
    transcribe_request = request.transcribe_request()
    tool = whisper.tool_version(transcribe_request)
    options = request.model_dump(mode="json")
    srt_id, vtt_id, json_id = generate_srt_ids(source, request)
    existing = find_output(profile, srt_id)
    if existing is not None:
        report_progress(progress, 100, "done (already generated)", wait=True)
        return srt_result(existing, read_text_output(existing.file), cached=True)

    workspace = run_workspace(srt_id)
    try:
        local, info = fetch_and_probe(source, workspace, progress, probe_at=5)
        report_progress(progress, 8, "transcribing 0%")
        with local_slot(GPU_TAG, get_settings().gpu_limit):
            transcription = transcribe_media(
                local,
                source,
                transcribe_request,
                progress,
                duration=info.content_duration or info.duration,
            )
        report_progress(progress, 90, "building cues")
        subs = build_subtitles(transcription, request.rules, request.vtt, request.json_output)
        report_progress(progress, 95, "storing")
        stem = PurePath(source.name).stem or source.id
        common = {
            "source": source,
            "operation": "generate_srt",
            "options": options,
            "tools": {"whisper": tool},
        }
        # Extra formats first, the SRT last: its presence means the whole output is complete.
        if subs.vtt is not None:
            store_text_output(profile, vtt_id, subs.vtt, name=f"{stem}.vtt", kind="subtitle",
                              **common)  # fmt: skip
        if subs.json_text is not None:
            store_text_output(profile, json_id, subs.json_text, name=f"{stem}.json",
                              kind="transcript", **common)  # fmt: skip
        srt = store_text_output(
            profile,
            srt_id,
            subs.srt,
            name=f"{stem}.srt",
            kind="subtitle",
            details={
                "language": transcription.language,
                "duration": transcription.duration,
                "qa": subs.qa.model_dump(mode="json"),
                "vtt_file_id": vtt_id if subs.vtt is not None else None,
                "json_file_id": json_id if subs.json_text is not None else None,
                "dropped_segments": transcription.dropped,
            },
            **common,
        )
    finally:
        remove_workspace(workspace)
    publish_qa_report(subs.qa, f"{profile}/{source.name}")
    report_progress(progress, 100, f"done ({subs.qa.cues} cues)", wait=True)
    return srt_result(srt, subs.srt, cached=False)
