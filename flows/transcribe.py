"""The ``transcribe`` flow: a profile audio/video file → a transcript stored in the profile."""

from __future__ import annotations

from flows._asr import transcribe_audio
from flows._operation import Job, Output, operation_flow
from mediaflows import whisper
from mediaflows.models import TranscribeRequest
from mediaflows.operations import TRANSCRIBE
from mediaflows.stages import Stage
from tasks.store import store_text_output
from tasks.subtitles import transcript_json


@operation_flow(TRANSCRIBE)
def transcribe(job: Job[TranscribeRequest]) -> Output:
    """Transcribe a profile audio or video file and store the transcript (text, segments and
    words as JSON) in the profile. The same input, options and model are never run twice; a
    file whose audio ends early (truncated) is refused, not transcribed in part. With a
    `provider`, a configured OpenAI-compatible endpoint does the recognition (pieces within the
    `asr` limit)."""
    local, info = job.fetch_and_probe()
    transcription = transcribe_audio(job, local, info, job.request)
    job.progress.stage(Stage.PROCESSING_RESULT, "storing")
    content = transcript_json(transcription)
    stored = store_text_output(
        job.profile,
        job.output_id,
        content,
        name=f"{job.stem}.transcript.json",
        kind="transcript",
        source=job.source,
        operation=TRANSCRIBE.name,
        options=job.request.model_dump(mode="json"),
        tools={"whisper": whisper.tool_version(job.request, job.settings)},
        details={
            "language": transcription.language,
            "language_probability": round(transcription.language_probability, 4),
            "duration": transcription.duration,
            "segments": len(transcription.segments),
            "dropped_segments": transcription.dropped,
            "asr": transcription.asr.model_dump(mode="json"),
        },
    )
    return Output(stored, content, f"{len(transcription.segments)} segments")
