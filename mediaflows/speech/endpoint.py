"""Speech recognition by an OpenAI-compatible endpoint (``POST /audio/transcriptions``): OpenAI
``whisper-1``/``gpt-4o-transcribe``, Groq, speaches, vLLM, LocalAI, a faster-whisper server.

The audio is decoded by our own hardened ffmpeg call (:mod:`mediaflows.media.audio`, never the
endpoint's), cut at quiet moments into pieces small enough for the endpoint's upload limit, and
each piece sent as 16 kHz mono Opus. Each answer's times are shifted to the piece's place in the
file; the pieces' language is made consistent (a piece heard in another language than most of
the file is asked again with that language); the hallucination guard of the local model applies
to the result. An endpoint that returns segment times only gets word times estimated inside each
segment (said so in the result), so the cue rules still hold.

Requests, their faults and retries are the endpoint client's (:mod:`mediaflows.endpoints`):
429, 5xx, timeouts and reset connections are retried (honouring ``Retry-After``);
400/401/403/404/413 and a refused connection fail at once with an error naming the endpoint and
model. The API key never appears in parameters, logs or error messages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mediaflows import cancel, endpoints
from mediaflows.languages import LANGUAGES, is_unspaced
from mediaflows.media.audio import SAMPLE_RATE, audio_windows
from mediaflows.media.tools import run_tool
from mediaflows.models import ProviderUsage, TranscribeRequest
from mediaflows.settings import ASREndpoint, Settings, get_settings
from mediaflows.speech.guard import Guard, is_hallucination, trim_loop
from mediaflows.speech.records import Segment, Transcription, Word
from mediaflows.speech.scripts import in_script, model_language


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Piece(_Record):
    """One piece of a file's audio, encoded and ready to send."""

    index: int
    path: Path
    offset: float
    duration: float
    digest: str  # of the samples: part of the piece's cache key
    size: int


class PieceResult(_Record):
    """What the endpoint heard in one piece, its times already shifted into the file."""

    index: int
    language: str
    duration: float
    segments: tuple[Segment, ...]
    words_estimated: bool
    forced_language: str | None = None
    offset: float = 0.0
    words_aligned: bool = False  # word times from the bundled model (:mod:`.alignment`)


def piece_seconds(endpoint: ASREndpoint) -> float:
    """How long a piece may be: the endpoint's upload limit at the Opus bitrate, with a fifth
    to spare (Opus varies its rate and the container adds a little), at most ``max_piece_s``."""
    bytes_per_s = endpoint.bitrate_kbps * 1000 / 8
    return max(min(endpoint.max_piece_s, 0.8 * endpoint.max_upload_mb * 1e6 / bytes_per_s), 10.0)


def cut_pieces(
    path: Path,
    name: str,
    endpoint: ASREndpoint,
    workspace: Path,
    settings: Settings | None = None,
    expected_s: float | None = None,
) -> list[Piece]:
    """The file's audio in pieces for the endpoint, each cut at the quietest moment near its
    end and encoded to Ogg Opus in ``workspace``. A truncated file is refused
    (:class:`MediaError`) as for the local model."""
    settings = settings or get_settings()
    workspace.mkdir(parents=True, exist_ok=True)
    limit = int(endpoint.max_upload_mb * 1e6)
    pieces: list[Piece] = []
    windows = audio_windows(path, name, settings, window_s=piece_seconds(endpoint),
                            expected_s=expected_s)  # fmt: skip
    for offset, samples in windows:
        for start, part in _fit(offset, samples, endpoint, workspace, settings, limit):
            pieces.append(part.model_copy(update={"index": len(pieces), "offset": start}))
    return pieces


def _fit(
    offset: float,
    samples: np.ndarray,
    endpoint: ASREndpoint,
    workspace: Path,
    settings: Settings,
    limit: int,
) -> Iterator[tuple[float, Piece]]:
    """Encode ``samples``; should the result be over the upload limit after all, split it in
    two and try again (each half at its own offset)."""
    cancel.check()
    piece = _encode(samples, endpoint, workspace, settings)
    if piece.size <= limit or len(samples) < 2 * SAMPLE_RATE:
        yield offset, piece
        return
    piece.path.unlink(missing_ok=True)
    half = len(samples) // 2
    yield from _fit(offset, samples[:half], endpoint, workspace, settings, limit)
    yield from _fit(offset + half / SAMPLE_RATE, samples[half:], endpoint, workspace, settings,
                    limit)  # fmt: skip


def encode_piece(
    samples: np.ndarray, offset: float, endpoint: ASREndpoint, workspace: Path,
    settings: Settings | None = None,
) -> Piece:  # fmt: skip
    """``samples`` (from ``offset`` s in the file) encoded for the endpoint in ``workspace``."""
    piece = _encode(samples, endpoint, workspace, settings or get_settings())
    return piece.model_copy(update={"offset": offset})


def _encode(
    samples: np.ndarray, endpoint: ASREndpoint, workspace: Path, settings: Settings
) -> Piece:
    raw = np.ascontiguousarray(samples, dtype=np.float32).tobytes()
    digest = hashlib.sha256(raw).hexdigest()
    source = workspace / f"{digest[:16]}.f32"
    dest = workspace / f"{digest[:16]}.ogg"
    source.write_bytes(raw)
    try:
        run_tool(
            [settings.media.ffmpeg_binary, "-nostdin", "-hide_banner", "-v", "error", "-y",
             "-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", f"file:{source}",
             "-c:a", "libopus", "-b:a", f"{endpoint.bitrate_kbps}k", "-application", "voip",
             "-f", "ogg", f"file:{dest}"],
            "audio piece",
            settings.media.ffmpeg_timeout_s,
        )  # fmt: skip
    finally:
        source.unlink(missing_ok=True)
    return Piece(index=0, path=dest, offset=0.0, duration=len(samples) / SAMPLE_RATE,
                 digest=digest, size=dest.stat().st_size)  # fmt: skip


# ---- what the endpoint answered ------------------------------------------------------------


#: Whisper's language names (what OpenAI's verbose JSON says: "english") → codes.
_NAMES = {name.lower(): code for code, (name, _) in LANGUAGES.items()}


def _language_code(value: Any) -> str:
    text = str(value or "").strip().lower()
    if len(text) in (2, 3) and text.isalpha():
        return text
    return _NAMES.get(text, text or "und")


def _field(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def estimate_words(text: str, start: float, end: float) -> tuple[Word, ...]:
    """Word times inside a segment that came without them: its time shared out by length."""
    words = text.split()
    if not words:
        return ()
    total = sum(len(w) + 1 for w in words)
    out, at = [], start
    for word in words:
        span = (end - start) * (len(word) + 1) / total
        out.append(Word(start=round(at, 3), end=round(at + span, 3), text=f" {word}",
                        probability=0.0))  # fmt: skip
        at += span
    return tuple(out)


def _segments(answer: Any, offset: float, duration: float) -> tuple[tuple[Segment, ...], bool]:
    """The answer's segments with their words, shifted by ``offset``; and whether the word
    times were estimated (an endpoint that gives segment times only, or none at all)."""
    raw_segments = list(_field(answer, "segments") or [])
    raw_words = list(_field(answer, "words") or [])
    text = str(_field(answer, "text") or "").strip()
    if not raw_segments and text:  # only text: one segment over the whole piece
        raw_segments = [{"start": 0.0, "end": duration, "text": text}]
    words: list[Word] = []
    for item in raw_words:
        # Endpoints give words without spaces ("Hello"): one goes before each, but not between
        # two words of a script written without spaces (Japanese, Chinese, Thai).
        said = str(_field(item, "word", "")).strip()
        previous = words[-1].text if words else ""
        tight = bool(previous and said) and is_unspaced(previous[-1]) and is_unspaced(said[0])
        at, until = float(_field(item, "start", 0.0)), float(_field(item, "end", 0.0))
        words.append(Word(start=at, end=until, text=said if tight else f" {said}"))
    estimated = not words
    segments = []
    for raw in raw_segments:
        start, end = float(_field(raw, "start", 0.0)), float(_field(raw, "end", 0.0))
        seg_text = str(_field(raw, "text", "")).strip()
        inside = tuple(w for w in words if start - 0.01 <= w.start < end + 0.01)
        if estimated or not inside:
            inside = estimate_words(seg_text, start, end)
            estimated = True
        segments.append(Segment(
            start=start + offset,
            end=end + offset,
            text=seg_text,
            words=tuple(w.model_copy(update={"start": w.start + offset, "end": w.end + offset})
                        for w in inside),
            avg_logprob=float(_field(raw, "avg_logprob", 0.0) or 0.0),
            no_speech_prob=float(_field(raw, "no_speech_prob", 0.0) or 0.0),
            compression_ratio=float(_field(raw, "compression_ratio", 1.0) or 1.0),
        ))  # fmt: skip
    return tuple(segments), estimated


def piece_cache_key(
    piece: Piece, request: TranscribeRequest, endpoint: ASREndpoint, language: str | None
) -> str:
    """What a piece's answer depends on: its samples and place, the endpoint, its model and
    options, the request and the language asked for. A re-run sends only the pieces that got no
    answer. Never the key (a secret). The version names the cached record's class too (v2 since
    :class:`PieceResult` moved to ``speech.endpoint``)."""
    what = (
        f"{piece.digest}|{piece.offset}|{endpoint.base_url}|{endpoint.model}|"
        f"{endpoint.word_timestamps}|{endpoint.bitrate_kbps}|{request.model_dump_json()}|"
        f"{language}"
    )
    return f"asr-piece-v2-{hashlib.sha256(what.encode()).hexdigest()}"


def transcribe_piece(
    piece: Piece,
    request: TranscribeRequest,
    name: str,
    endpoint: ASREndpoint,
    language: str | None = None,
    sleep: Callable[[float], None] = cancel.sleep,
    timeout_s: float | None = None,
) -> PieceResult:
    """Send one piece (faults and retries: :func:`mediaflows.endpoints.send`); its segments in
    the file's time. ``timeout_s``: its own timeout, past which :class:`ASRTimeoutError` is
    raised at once (see :mod:`mediaflows.speech.pacing`)."""
    language = language or model_language(request.language)  # zh-Hans: the endpoint hears zh
    options: dict[str, Any] = {"model": endpoint.model, "response_format": endpoint.response_format}
    if request.task == "transcribe":
        if language:
            options["language"] = language
        if endpoint.word_timestamps and endpoint.response_format == "verbose_json":
            options["timestamp_granularities"] = ["word", "segment"]
    prompt = " ".join(p for p in (request.initial_prompt, request.hotwords) if p)
    if prompt:
        options["prompt"] = prompt[:1000]
    translate = request.task != "transcribe"  # English text from any language
    answer = endpoints.transcribe(piece.path, name, endpoint, options, translate, sleep, timeout_s)
    if isinstance(answer, str):  # a server that ignored verbose_json
        answer = {"text": answer}
    segments, estimated = _segments(answer, piece.offset, piece.duration)
    heard = _language_code(_field(answer, "language")) if request.task == "transcribe" else "en"
    return PieceResult(index=piece.index, language=language or heard, duration=piece.duration,
                       segments=segments, words_estimated=estimated,
                       forced_language=language, offset=piece.offset)  # fmt: skip


def majority_language(results: Sequence[PieceResult]) -> str:
    """The language most of the audio was heard in (by seconds)."""
    seconds: dict[str, float] = {}
    for r in results:
        if r.segments:
            seconds[r.language] = seconds.get(r.language, 0.0) + r.duration
    return max(seconds, key=lambda k: seconds[k]) if seconds else results[0].language


def heard_elsewhere(
    results: Sequence[PieceResult], request: TranscribeRequest
) -> tuple[str, list[int]] | None:
    """The file's language and the pieces heard in another one (a short piece of music or noise,
    typically), to be asked again in that language so that the file stays in one language; None
    when a language was requested or every piece agrees."""
    if request.language is not None or len(results) < 2:
        return None
    language = majority_language(results)
    odd = sorted(r.index for r in results if r.language != language and r.segments)
    return (language, odd) if odd else None


def replace_pieces(
    results: Sequence[PieceResult], again: Sequence[PieceResult]
) -> list[PieceResult]:
    """``results`` with the pieces asked again in their place."""
    redone = {r.index for r in again}
    return [r for r in results if r.index not in redone] + list(again)


def merge(
    results: Sequence[PieceResult],
    request: TranscribeRequest,
    name: str,
    endpoint: ASREndpoint,
    model_id: str,
    resent_s: float = 0.0,
    guard: Guard | None = None,
) -> Transcription:
    """One transcription from the pieces' answers, in order, with the hallucination guard
    applied (loops, repeats, silence the endpoint flagged). ``resent_s``: seconds of audio sent
    a second time (pieces asked again in the file's language), counted as sent."""
    guard = guard or Guard()
    ordered = sorted(results, key=lambda r: r.index)
    kept: list[Segment] = []
    dropped = 0
    for result in ordered:
        for raw in result.segments:
            segment = trim_loop(raw, guard)
            if is_hallucination(segment, kept[-1] if kept else None, guard):
                dropped += 1
            else:
                kept.append(segment)
    language = majority_language(ordered) if ordered else (request.language or "und")
    usage = ProviderUsage(
        provider=name,
        provider_model=endpoint.model,
        audio_sent_s=round(sum(r.duration for r in ordered) + resent_s, 3),
        pieces=len(ordered),
        words_estimated=any(r.words_estimated for r in ordered),
        word_times="estimated"
        if any(r.words_estimated for r in ordered)
        else "aligned"
        if any(r.words_aligned for r in ordered)
        else "endpoint",
    )
    detected = request.language is None and request.task == "transcribe"
    heard = Transcription(
        language=language,
        # Endpoints give no probability: pacing.check_language may measure one.
        language_probability=None,
        language_doubtful=detected,
        duration=round(sum(r.duration for r in ordered), 3),
        segments=tuple(kept),
        model=model_id,
        dropped=dropped,
        asr=usage,
    )
    return in_script(heard, request.language)
