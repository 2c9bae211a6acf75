"""Prefect tasks over an OpenAI-compatible speech endpoint. Requests carry the ``asr`` tag: a
Prefect concurrency limit named ``asr`` bounds how many run at once across every worker (not
the ``gpu`` one: the work runs elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from prefect.context import TaskRunContext

from mediaflows import speech
from mediaflows.models import ProfileFile, TranscribeRequest
from mediaflows.settings import get_settings
from mediaflows.speech import Piece, PieceResult
from tasks.retry import RETRYING

ASR_TAG = "asr"


@task(name="cut_audio_pieces", cache_policy=NONE)
def cut_audio_pieces(
    path: Path, file: ProfileFile, provider: str, workspace: Path, expected_s: float | None
) -> list[Piece]:
    """The file's audio, decoded by our ffmpeg, cut at quiet moments into pieces under the
    endpoint's upload limit, each encoded as 16 kHz mono Opus."""
    endpoint = get_settings().asr.endpoint(provider)
    return speech.cut_pieces(path, file.name, endpoint, workspace, expected_s=expected_s)


def _piece_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    endpoint = get_settings().asr.endpoint(parameters["provider"])
    return speech.piece_cache_key(
        parameters["piece"], parameters["request"], endpoint, parameters["language"]
    )


@task(
    name="transcribe_piece",
    tags=[ASR_TAG],
    cache_key_fn=_piece_key,
    persist_result=True,
    task_run_name="transcribe_piece-{piece.index}",
    **RETRYING,
)
def transcribe_piece(
    piece: Piece, request: TranscribeRequest, provider: str, language: str | None
) -> PieceResult:
    """Send one piece to the endpoint; its segments in the file's time. Cached by its samples,
    the endpoint, the options and the language: a re-run sends only what got no answer.
    429/5xx/timeouts are retried inside (honouring Retry-After), then here with backoff; a
    refusal fails at once."""
    endpoint = get_settings().asr.endpoint(provider)
    return speech.transcribe_piece(piece, request, provider, endpoint, language)
