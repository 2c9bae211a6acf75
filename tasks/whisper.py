"""Prefect tasks over faster-whisper. A model run is called inside a slot of the ``gpu`` limit
(:func:`tasks.slots.hold`: the Prefect concurrency limit ``gpu`` bounds how many run at once
across every worker); the task does not carry the tag itself, or Prefect would take a second."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import task
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger

from mediaflows import speech
from mediaflows.models import ProfileFile, TranscribeRequest
from mediaflows.settings import get_settings
from mediaflows.speech import Heard, Span, Transcription, windows
from mediaflows.speech.whisper import transcription_cache_key
from mediaflows.stages import Stage
from tasks import slots
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


def _plan_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    window = get_settings().whisper.window_s
    return f"{windows.PLAN_VERSION}-{parameters['file'].sha256}-{window:g}"


@task(name="plan_windows", cache_key_fn=_plan_key, persist_result=True, **RETRYING)
def plan_windows(path: Path, file: ProfileFile, duration: float | None) -> tuple[Span, ...]:
    """The windows a file is transcribed in (one for a file no longer than
    ``MEDIAFLOWS_WHISPER__WINDOW_S``), each cut at a quiet moment: decoded around the cuts
    only; cached by content and window length."""
    spans = windows.plan_spans(path, file.name, duration)
    if len(spans) > 1:
        get_run_logger().info("%s: %d windows of about %g s", file.name, len(spans),
                              get_settings().whisper.window_s)  # fmt: skip
    return spans


def _window_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    span: Span = parameters["span"]
    whole = transcription_cache_key(parameters["file"].sha256, parameters["request"])
    return f"window-{whole}-{span.key()}-{parameters['language'] or 'detect'}"


@task(
    name="transcribe_window",
    task_run_name="transcribe_window-{span.index}",
    cache_key_fn=_window_key,
    persist_result=True,
    **RETRYING,
)
def transcribe_window(
    path: Path,
    file: ProfileFile,
    request: TranscribeRequest,
    span: Span,
    language: str | None,
    expected_s: float | None = None,
    on_time: Callable[[float], None] | None = None,
) -> Heard:
    """One window of a long file, in a slot of the ``gpu`` limit (taken only when the window is
    not cached): cached by content, span, options, language and model, so that a run that dies
    goes on at the first window not done, and any worker can take any window."""
    settings = get_settings()
    with slots.hold(GPU_TAG, settings.orchestration.gpu_limit):
        heard = speech.transcribe_span(path, file.name, span, request, language, expected_s,
                                       on_time, settings)  # fmt: skip
    get_run_logger().info("%s: window %d (%s s) heard: %d segments", file.name, span.index,
                          span.key(), len(heard.segments))  # fmt: skip
    return heard
