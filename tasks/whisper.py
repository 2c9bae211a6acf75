"""Prefect tasks over faster-whisper. A model run is called inside a slot of the ``gpu`` limit
(:func:`tasks.slots.hold`: the Prefect concurrency limit ``gpu`` bounds how many run at once
across every worker); the task does not carry the tag itself, or Prefect would take a second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from mediaflows import speech
from mediaflows.models import ProfileFile, TranscribeRequest
from mediaflows.speech import Transcription
from mediaflows.speech.whisper import transcription_cache_key
from mediaflows.stages import Stage
from tasks.progress import RunProgress
from tasks.retry import RETRYING

GPU_TAG = "gpu"


def _transcription_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return transcription_cache_key(parameters["file"].sha256, parameters["request"])


@task(
    name="transcribe_media",
    cache_key_fn=_transcription_key,
    persist_result=True,
    **RETRYING,
)
def transcribe_media(
    path: Path,
    file: ProfileFile,
    request: TranscribeRequest,
    progress: RunProgress,
    expected_s: float | None = None,
) -> Transcription:
    """Decode the audio and run the model (loaded once per worker process), guarded against
    hallucinations; cached by content hash, options and model across runs and processes. A
    file that decodes to clearly less than ``expected_s`` (its probed duration) is refused as
    truncated."""
    return speech.transcribe_file(
        path,
        file.name,
        request,
        on_progress=progress.tracker(Stage.PROCESSING, "transcribing"),
        expected_s=expected_s,
    )
