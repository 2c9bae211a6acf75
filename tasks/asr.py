"""Prefect tasks over an OpenAI-compatible speech endpoint. Requests carry the ``asr`` tag: a
Prefect concurrency limit named ``asr`` bounds how many run at once across every worker (not
the ``gpu`` one: the work runs elsewhere)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from prefect.context import TaskRunContext

from mediaflows import asr
from mediaflows.asr import Piece, PieceResult
from mediaflows.models import ProfileFile, TranscribeRequest
from mediaflows.settings import get_settings
from tasks._retry import RETRYING

ASR_TAG = "asr"


@task(name="cut_audio_pieces", cache_policy=NONE)
def cut_audio_pieces(
    path: Path, file: ProfileFile, provider: str, workspace: Path, expected_s: float | None
) -> list[Piece]:
    """The file's audio, decoded by our ffmpeg, cut at quiet moments into pieces under the
    endpoint's upload limit, each encoded as 16 kHz mono Opus."""
    endpoint = get_settings().asr.endpoint(provider)
    return asr.cut_pieces(path, file.name, endpoint, workspace, expected_s=expected_s)


def _piece_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    # Same samples + endpoint + model + options + language → same answer: a re-run sends only
    # the pieces that did not get one. Never the key (a secret).
    piece: Piece = parameters["piece"]
    request: TranscribeRequest = parameters["request"]
    endpoint = get_settings().asr.endpoint(parameters["provider"])
    what = (
        f"{piece.digest}|{piece.offset}|{endpoint.base_url}|{endpoint.model}|"
        f"{endpoint.word_timestamps}|{endpoint.bitrate_kbps}|{request.model_dump_json()}|"
        f"{parameters['language']}"
    )
    return f"asr-piece-v1-{hashlib.sha256(what.encode()).hexdigest()}"


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
    """Send one piece to the endpoint; its segments in the file's time. 429/5xx/timeouts are
    retried inside (honouring Retry-After), then here with backoff; a refusal fails at once."""
    endpoint = get_settings().asr.endpoint(provider)
    return asr.transcribe_piece(piece, request, provider, endpoint, language)
