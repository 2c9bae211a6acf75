"""Where a transcription runs, for the operations that transcribe: the model in this worker
(within the ``gpu`` limit) or a configured endpoint (pieces within the ``asr`` limit)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from flows._operation import Job
from flows._requests import raise_first, submit_all
from mediaflows import speech
from mediaflows.media import MediaInfo
from mediaflows.models import TranscribeRequest
from mediaflows.speech import Piece, PieceResult, Transcription
from mediaflows.stages import Stage
from tasks import slots
from tasks.asr import ASR_TAG, cut_audio_pieces, transcribe_piece
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
    endpoint = job.settings.asr.endpoint(request.provider)
    job.progress.stage(Stage.PREPARING, "cutting audio into pieces")
    pieces = cut_audio_pieces(
        local, job.source, request.provider, job.workspace / "pieces", info.audio_duration
    )

    def send(language: str | None, todo: list[Piece]) -> list[PieceResult]:
        values = submit_all(
            [(p.index, partial(transcribe_piece.submit, p, request, request.provider, language))
             for p in todo],
            ASR_TAG, job.settings.orchestration.asr_limit, job.progress, "sending", "pieces",
        )  # fmt: skip
        raise_first([v for v in values.values() if isinstance(v, BaseException)])
        return [values[p.index] for p in todo]

    job.progress.stage(Stage.CALLING_PROVIDER, f"sending 0/{len(pieces)} pieces")
    results = send(None, pieces)
    resent = 0.0
    again = speech.heard_elsewhere(results, request)  # asked again in the file's language
    if again is not None:
        language, odd = again
        results = speech.replace_pieces(results, send(language, [pieces[i] for i in odd]))
        resent = sum(pieces[i].duration for i in odd)
    job.progress.stage(Stage.PROCESSING_RESULT, "joining pieces")
    model = speech.model_id(request, job.settings)
    return speech.merge(results, request, request.provider, endpoint, model, resent_s=resent)
