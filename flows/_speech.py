"""Where a transcription runs, for the operations that transcribe: the model in this worker
(within the ``gpu`` limit) or a configured endpoint (pieces within the ``asr`` limit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows._operation import Job
from mediaflows.media import MediaInfo
from mediaflows.models import TranscribeRequest
from mediaflows.speech import Transcription
from mediaflows.stages import Stage
from tasks import slots
from tasks.asr import transcribe_by_endpoint
from tasks.whisper import GPU_TAG, transcribe_media


def transcribe_audio(
    job: Job[Any, Any], local: Path, info: MediaInfo, request: TranscribeRequest
) -> Transcription:
    """``request`` run on the fetched input ``local``: by the local model, or by the endpoint
    its ``provider`` names."""
    if request.provider == "local":
        job.progress.stage(Stage.PROCESSING, "waiting for the model (gpu slot)")
        with slots.hold(GPU_TAG, job.settings.orchestration.gpu_limit):
            job.progress.stage(Stage.PROCESSING, "transcribing 0%")
            return transcribe_media(
                local, job.source, request, job.progress, expected_s=info.audio_duration
            )
    job.progress.stage(Stage.CALLING_PROVIDER, "decoding audio for the endpoint")
    return transcribe_by_endpoint(
        local,
        job.source,
        request,
        job.workspace / "endpoint",
        job.progress,
        expected_s=info.audio_duration,
    )
