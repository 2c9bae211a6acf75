"""The ``transcribe`` flow: a profile audio/video file → a transcript stored in the profile."""

from __future__ import annotations

from flows._operation import Job, Output, operation_flow
from flows._speech import transcribe_audio
from mediaflows.models import TranscribeRequest
from mediaflows.operations import transcribe as procedure
from mediaflows.operations.spec import OutputIds
from mediaflows.operations.transcribe import TRANSCRIBE
from mediaflows.stages import Stage


@operation_flow(TRANSCRIBE)
def transcribe(job: Job[TranscribeRequest, OutputIds]) -> Output:
    """Transcribe a profile audio or video file and store the transcript (text, segments and
    words as JSON) in the profile. The same input, options and model are never run twice; a
    file whose audio ends early (truncated) is refused, not transcribed in part. With a
    `provider`, a configured OpenAI-compatible endpoint does the recognition (pieces within the
    `asr` limit)."""
    local, info = job.fetch_and_probe()
    transcription = transcribe_audio(job, local, info, job.request)
    job.progress.stage(Stage.PROCESSING_RESULT, "storing")
    transcript = procedure.transcript(job.source, job.request, job.ids, transcription, job.settings)
    stored = job.store(transcript)
    return Output(stored, transcript.text, procedure.summary(transcription))
