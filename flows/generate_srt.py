"""The ``generate_srt`` flow: a profile audio/video file → readable subtitles (SRT, and on
request WebVTT and JSON) stored in the profile, with a QA report."""

from __future__ import annotations

from typing import Any

from flows._operation import Job, Output, operation_flow
from mediaflows import whisper
from mediaflows.models import FileKind, GenerateSrtRequest, StoredFile
from mediaflows.operations import GENERATE_SRT, generate_srt_ids
from mediaflows.stages import Stage
from tasks import runtime
from tasks.progress import publish_qa_report
from tasks.store import store_text_output
from tasks.subtitles import build_subtitles
from tasks.whisper import GPU_TAG, transcribe_media


@operation_flow(GENERATE_SRT)
def generate_srt(job: Job[GenerateSrtRequest]) -> Output:
    """Transcribe a profile audio or video file and store subtitles built from the words: at most
    42 characters a line, 2 lines a cue, 20 characters a second, 0.83–7 s a cue (by default).

    The transcription is cached by content, options and model, so other cue rules or formats for
    the same file do not run the model again; the same request returns the stored SRT. A file
    whose audio ends early (truncated) is refused, not subtitled in part."""
    request = job.request
    transcribe_request = request.transcribe_request()
    local, info = job.fetch_and_probe()
    job.progress.stage(Stage.PROCESSING, "transcribing 0%")
    with runtime.local_slot(GPU_TAG, job.settings.orchestration.gpu_limit):
        transcription = transcribe_media(
            local, job.source, transcribe_request, job.progress, expected_s=info.audio_duration
        )
    job.progress.stage(Stage.PROCESSING_RESULT, "building cues")
    subs = build_subtitles(transcription, request.rules, request.vtt, request.json_output)
    job.progress.stage(Stage.PROCESSING_RESULT, "storing", 0.5)
    srt_id, vtt_id, json_id = generate_srt_ids(job.source, request, job.settings)
    tool = whisper.tool_version(transcribe_request, job.settings)

    def store(
        file_id: str, text: str, suffix: str, kind: FileKind, details: dict[str, Any] | None = None
    ) -> StoredFile:
        return store_text_output(
            job.profile,
            file_id,
            text,
            name=f"{job.stem}.{suffix}",
            kind=kind,
            source=job.source,
            operation=GENERATE_SRT.name,
            options=request.model_dump(mode="json"),
            tools={"whisper": tool},
            details=details,
        )

    # Extra formats first, the SRT last: its presence means the whole output is complete.
    if subs.vtt is not None:
        store(vtt_id, subs.vtt, "vtt", "subtitle")
    if subs.json_text is not None:
        store(json_id, subs.json_text, "json", "transcript")
    srt = store(
        srt_id,
        subs.srt,
        "srt",
        "subtitle",
        {
            "language": transcription.language,
            "language_probability": round(transcription.language_probability, 4),
            "duration": transcription.duration,
            "qa": subs.qa.model_dump(mode="json"),
            "vtt_file_id": vtt_id if subs.vtt is not None else None,
            "json_file_id": json_id if subs.json_text is not None else None,
            "dropped_segments": transcription.dropped,
        },
    )
    publish_qa_report(subs.qa, f"{job.profile}/{job.source.name}")
    return Output(srt, subs.srt, f"{subs.qa.cues} cues")
