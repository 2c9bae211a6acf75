"""Prefect tasks over faster-whisper. A model run is called inside a slot of the ``gpu`` limit
(:func:`tasks.slots.hold`: the Prefect concurrency limit ``gpu`` bounds how many run at once
across every worker); the task does not carry the tag itself, or Prefect would take a second."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from mediaflows import whisper
from mediaflows.models import ProfileFile, TranscribeRequest
from mediaflows.stages import Stage
from mediaflows.whisper import Transcription
from tasks._retry import RETRYING
from tasks.progress import RunProgress

GPU_TAG = "gpu"


def _transcription_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    # Same content + options + model → same transcription, in any run, process or profile.
    file: ProfileFile = parameters["file"]
    request: TranscribeRequest = parameters["request"]
    options = hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:16]
    model = hashlib.sha256(whisper.model_id(request).encode()).hexdigest()[:16]
    return f"transcribe-v2-{file.sha256}-{options}-{model}"


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
    hallucinations; cached by content hash across runs and processes. A file that decodes to
    clearly less than ``expected_s`` (its probed duration) is refused as truncated."""
    return whisper.transcribe_file(
        path,
        file.name,
        request,
        on_progress=progress.tracker(Stage.PROCESSING, "transcribing"),
        expected_s=expected_s,
    )
