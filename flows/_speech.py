"""Where a transcription runs, for the operations that transcribe: the model in this worker
(within the ``gpu`` limit; a long file window by window, each window a cached task, so a run that
dies goes on at the first window not done) or a configured endpoint (pieces within the ``asr``
limit)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flows._operation import Job
from mediaflows import speech
from mediaflows.media import MediaInfo
from mediaflows.models import TranscribeRequest
from mediaflows.speech import Heard, Span, Transcription, windows
from mediaflows.speech.scripts import model_language
from mediaflows.stages import Stage
from tasks import children, slots
from tasks import prefect_adapter as adapter
from tasks.asr import transcribe_by_endpoint
from tasks.whisper import GPU_TAG, plan_windows, transcribe_media, transcribe_window


def transcribe_audio(
    job: Job[Any, Any], local: Path, info: MediaInfo, request: TranscribeRequest
) -> Transcription:
    """``request`` run on the fetched input ``local``: by the local model, or by the endpoint
    its ``provider`` names."""
    if request.provider == "local":
        if windows.is_long(info.audio_duration, job.settings):
            return _by_windows(job, local, info, request)
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


def _by_windows(
    job: Job[Any, Any], local: Path, info: MediaInfo, request: TranscribeRequest
) -> Transcription:
    job.progress.stage(Stage.PROCESSING, "planning windows")
    spans = plan_windows(local, job.source, info.audio_duration)
    estimate = windows.Estimate(spans, info.audio_duration)
    job.progress.stage(Stage.PROCESSING, estimate.line())

    def one(span: Span, language: str | None) -> Heard:
        state = transcribe_window(local, job.source, request, span, language,
                                  info.audio_duration, return_state=True)  # fmt: skip
        heard: Heard = adapter.result_of(state)
        if isinstance(heard, BaseException):
            raise heard
        estimate.add(heard, cached=state.name == "Cached")
        job.progress.stage(Stage.PROCESSING, estimate.line(), estimate.fraction)
        return heard

    def rest(todo: Sequence[Span], language: str | None) -> list[Heard]:
        if not (job.settings.whisper.spread_windows and children.under_deployment()):
            return [one(span, language) for span in todo]
        job.progress.stage(Stage.PROCESSING, f"{estimate.line()} · {len(todo)} on the pool")

        def done(_: int, heard: Heard) -> None:
            estimate.add(heard)
            job.progress.stage(Stage.PROCESSING, estimate.line(), estimate.fraction)

        window_runs = [{"profile": job.profile, "file_id": job.source.id,
                        "request": request.model_dump(mode="json"),
                        "span": span.model_dump(mode="json"), "language": language,
                        "expected_s": info.audio_duration} for span in todo]  # fmt: skip
        orchestration = job.settings.orchestration
        names = [f"{job.source.name} window {s.index + 1}/{len(spans)}" for s in todo]
        return children.run_children(children.sibling_deployment("transcribe_window"),
                                     window_runs, orchestration.batch_in_flight,
                                     orchestration.batch_resubmits, done, names)  # fmt: skip

    heard = windows.run_windows(spans, model_language(request.language), one, rest)
    return speech.joined(heard, request)
