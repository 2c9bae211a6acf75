"""Prefect task over an OpenAI-compatible speech endpoint. Each request to it is made inside a
slot of the ``asr`` limit (:func:`tasks.slots.hold`: the Prefect concurrency limit ``asr`` bounds
how many run at once across every worker); the task does not carry the tag itself, or Prefect
would hold one slot for the whole file."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from prefect import task
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger

from mediaflows import speech
from mediaflows.models import ProfileFile, TranscribeRequest
from mediaflows.settings import get_settings
from mediaflows.speech import PiecesProgress, Transcription
from mediaflows.speech.whisper import transcription_cache_key
from mediaflows.stages import Stage
from tasks import slots
from tasks.progress import RunProgress
from tasks.retry import RETRYING

ASR_TAG = "asr"


def _endpoint_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return "asr-" + transcription_cache_key(parameters["file"].sha256, parameters["request"])


@task(name="transcribe_by_endpoint", cache_key_fn=_endpoint_key, persist_result=True, **RETRYING)
def transcribe_by_endpoint(
    path: Path,
    file: ProfileFile,
    request: TranscribeRequest,
    workspace: Path,
    progress: RunProgress,
    expected_s: float | None = None,
) -> Transcription:
    """The file's audio, decoded by our ffmpeg, sent in pieces paced to the endpoint's measured
    speed (a piece that timed out is cut in half, never sent again whole); its pieces' answers
    are cached by span, so a re-run sends only what got no answer. The run's log says what the
    endpoint is doing; its progress shows pieces answered, in flight and queued."""
    settings = get_settings()
    endpoint = settings.asr.endpoint(request.provider)
    limit = settings.orchestration.asr_limit
    logger = get_run_logger()

    def show(p: PiecesProgress) -> None:
        fraction = p.answered_s / p.total_s if p.total_s else 1.0
        progress.stage(Stage.CALLING_PROVIDER, p.line(), min(fraction, 1.0))

    def tell(message: str) -> None:
        logger.info("%s", message)

    transcription = speech.transcribe_by_endpoint(
        path, file.name, request, endpoint, workspace, limit, settings, expected_s,
        hold=partial(slots.hold, ASR_TAG, limit), on_progress=show, on_event=tell,
    )  # fmt: skip
    usage = transcription.asr
    if usage is not None:
        logger.info("%s: %d pieces, %.0f s of audio sent", request.provider, usage.pieces,
                    usage.audio_sent_s)  # fmt: skip
    return transcription
