"""How a file's audio goes to a speech endpoint: pieces sized to the endpoint's measured speed,
timeouts that allow for its queue, and a piece that timed out cut in half, never sent again whole.

A self-hosted server (a faster-whisper server on a CPU, one request at a time) may run at a few
times realtime while the client knows nothing of it. Sending a file in two 600 s pieces at once
to such a server, with a 600 s timeout, livelocked: the second piece waited in the server's queue,
timed out, was sent again whole to a server still busy with it, and so on. Here:

* the audio is decoded once into a file of samples with **cut points** every ``UNIT_S`` seconds
  at quiet moments (the same points on every run, so answers cached by span are found again);
* an unknown endpoint gets short pieces first (``first_piece_s``); the **speed** of its answers
  (audio seconds per wall second)
  sizes the next pieces so that one takes at most a third of ``timeout_s``, growing at most
  twice per answer and only after answers that came back within half their timeout (the speed
  is a moving average of each answer's audio seconds per wall second, queue wait included);
* requests in flight follow the endpoint's real parallelism (:class:`endpoints.Window`), and a
  request's timeout allows for the pieces queued before it at the measured speed (a server that
  answers its queue out of order may time out an early piece, which is then cut as below);
* a piece that timed out is **cut in half** at the cut point (or quiet moment) nearest its middle
  and both halves are sent before new work; the abandoned request's connection is closed (the
  client drops it), so a server that watches its connections stops working on it;
* every answer is cached by its span, endpoint and options: a re-run sends only the audio that
  got no answer.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mediaflows import cancel, endpoints
from mediaflows.errors import ASRTimeoutError, ASRUnavailableError, InputError, PieceTooLargeError
from mediaflows.files import atomic_write
from mediaflows.languages import LANGUAGES, same_language
from mediaflows.media.audio import SAMPLE_RATE, audio_windows, quietest_cut
from mediaflows.models import TranscribeRequest
from mediaflows.settings import ASREndpoint, Settings, get_settings
from mediaflows.speech.alignment import align, local_words
from mediaflows.speech.endpoint import (
    PieceResult,
    encode_piece,
    heard_elsewhere,
    majority_language,
    merge,
    piece_seconds,
    transcribe_piece,
)
from mediaflows.speech.records import Transcription, doubtful
from mediaflows.speech.whisper import detect_language, model_id

#: Seconds between two cut points: the smallest piece sent, but for halves of a timed-out one.
UNIT_S = 30.0
#: A timed-out piece shorter than twice this is not cut again: the endpoint is failing.
MIN_HALF_S = 4.0


@dataclass(frozen=True)
class Span:
    """A stretch of the file's audio, in samples."""

    start: int
    end: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


@dataclass
class DecodedAudio:
    """The file's audio as 16 kHz mono float32 samples in ``path`` (read by span, never held
    whole), with its cut points."""

    path: Path
    samples: int
    cuts: list[int]  # sample positions, ascending, 0 and ``samples`` included

    def read(self, span: Span) -> np.ndarray:
        data = np.memmap(self.path, dtype=np.float32, mode="r", shape=(self.samples,))
        return np.array(data[span.start : span.end])

    def digest(self) -> str:
        """Of all the samples, read a block at a time."""
        sha = hashlib.sha256()
        with self.path.open("rb") as f:
            while block := f.read(1 << 22):
                sha.update(block)
        return sha.hexdigest()


def decode_once(
    path: Path,
    name: str,
    workspace: Path,
    settings: Settings | None = None,
    expected_s: float | None = None,
    unit_s: float = UNIT_S,
) -> DecodedAudio:
    """Decode the file's first audio stream into ``workspace`` with a cut point at a quiet moment
    about every ``unit_s`` seconds (a truncated file is refused as for the local model)."""
    workspace.mkdir(parents=True, exist_ok=True)
    dest = workspace / "audio.f32"
    cuts = [0]
    with dest.open("wb") as out:
        for _, samples in audio_windows(path, name, settings, unit_s, expected_s):
            cancel.check()
            out.write(np.ascontiguousarray(samples, dtype=np.float32).tobytes())
            cuts.append(cuts[-1] + len(samples))
    return DecodedAudio(dest, cuts[-1], cuts if len(cuts) > 1 else [0, 0])


class Pace:
    """What was learnt of one endpoint's speed, and the piece sizes and timeouts it allows."""

    def __init__(self, endpoint: ASREndpoint, limit: int) -> None:
        self.endpoint = endpoint
        self.window = endpoints.window(endpoint, endpoint.model, limit)
        self.speed: float | None = None  # audio seconds per wall second, one request alone
        self.largest_ok_s = 0.0  # the longest piece answered well within its timeout
        self._lock = threading.Lock()

    def piece_s(self) -> float:
        """How long the next new piece may be."""
        longest = piece_seconds(self.endpoint)
        with self._lock:
            if self.speed is None:
                return min(self.endpoint.first_piece_s, longest)
            fits = self.speed * self.endpoint.timeout_s / 3
            grown = max(2 * self.largest_ok_s, self.endpoint.first_piece_s)
            return max(min(fits, grown, longest), UNIT_S)

    def timeout_s(self, seconds: float, queued_s: float) -> float:
        """The timeout of a piece of ``seconds`` sent while ``queued_s`` seconds of audio are in
        flight before it: ``timeout_s`` for its own answer, plus the time a one-at-a-time
        server needs for the audio ahead of it at the measured speed."""
        with self._lock:
            speed = self.speed
        if speed is None:
            return self.endpoint.timeout_s * (1 + queued_s / max(seconds, 1.0))
        return self.endpoint.timeout_s + queued_s / speed

    def answered(self, seconds: float, took: float, timeout: float) -> None:
        with self._lock:
            # Seconds of audio per wall second of this answer, its wait in the server's queue
            # included: on a one-at-a-time server an underestimate, which errs towards smaller
            # pieces and longer timeouts; the server stays busy as long as the window keeps one
            # piece waiting behind the one it computes.
            speed = seconds / max(took, 1e-3)
            self.speed = speed if self.speed is None else 0.7 * self.speed + 0.3 * speed
            if took <= timeout / 2:
                self.largest_ok_s = max(self.largest_ok_s, seconds)


@dataclass
class Progress:
    """What the run shows while pieces are out."""

    total_s: float
    answered: int = 0
    answered_s: float = 0.0
    sent: int = 0
    queued: int = 0
    split: int = 0
    cached: int = 0
    speed: float | None = None

    def line(self) -> str:
        speed = f", {self.speed:.1f}x realtime" if self.speed else ""
        split = f", {self.split} split after a timeout" if self.split else ""
        cached = f", {self.cached} from cache" if self.cached else ""
        return (f"pieces answered {self.answered}, in flight {self.sent}, queued "
                f"{self.queued} ({self.answered_s:.0f}/{self.total_s:.0f} s of audio{speed}"
                f"{split}{cached})")  # fmt: skip


class SpanCache:
    """Answers by span, for one file, endpoint, request and language: JSON in ``directory``."""

    def __init__(self, directory: Path, key: str) -> None:
        self.path = directory / f"{key}.json"
        self._lock = threading.Lock()
        try:
            self._entries: dict[str, str] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self._entries = {}

    def longest_from(self, start: int) -> tuple[Span, PieceResult] | None:
        with self._lock:
            found = [(int(k.split("-")[1]), v) for k, v in self._entries.items()
                     if int(k.split("-")[0]) == start]  # fmt: skip
        if not found:
            return None
        end, text = max(found)
        return Span(start, end), PieceResult.model_validate_json(text)

    def put(self, span: Span, result: PieceResult) -> None:
        with self._lock:
            self._entries[f"{span.start}-{span.end}"] = result.model_dump_json()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(self._entries).encode(), fsync=False)


#: ``send(span, timeout_s)``: the endpoint's answer for that span (index and offset set later).
Send = Callable[[Span, float], PieceResult]


@dataclass
class _Out:
    span: Span
    timeout: float
    started: float
    result: PieceResult | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class Sender:
    """Sends a file's audio as pieces (see the module's docstring); one per file and request."""

    audio: DecodedAudio
    pace: Pace
    send: Send
    cache: SpanCache | None = None
    hold: Callable[[], AbstractContextManager[object]] = nullcontext
    on_progress: Callable[[Progress], None] = lambda p: None
    on_event: Callable[[str], None] = lambda m: None
    clock: Callable[[], float] = time.monotonic
    results: dict[Span, PieceResult] = field(default_factory=dict)
    whole_resent: int = 0  # pieces sent again whole: 0 unless the endpoint failed otherwise

    def run(self, spans: list[Span] | None = None) -> list[PieceResult]:
        """Every span of the audio (or just ``spans``, as they are: pieces asked again),
        answered, in order of time (a span cut in two answers as two); each result's ``index``
        is its place."""
        todo: deque[Span] = deque(spans or [])
        cursor = self.audio.samples if spans else 0
        out: list[_Out] = []
        changed = threading.Condition()
        progress = Progress(total_s=self.audio.samples / SAMPLE_RATE if not spans
                            else sum(s.seconds for s in spans))  # fmt: skip
        shown = ""
        while todo or cursor < self.audio.samples or out:
            cancel.check()
            while len(out) < self.pace.window.size and (todo or cursor < self.audio.samples):
                if todo:
                    span = todo.popleft()
                else:
                    span, cached = self._next_span(cursor)
                    cursor = span.end
                    if cached is not None:
                        self.results[span] = cached
                        progress.cached += 1
                        progress.answered += 1
                        progress.answered_s += span.seconds
                        continue
                queued_s = sum(o.span.seconds for o in out)
                timeout = self.pace.timeout_s(span.seconds, queued_s)
                job = _Out(span, timeout, self.clock())
                out.append(job)
                # The run's context (its cancel scope) goes with the request's thread.
                context = contextvars.copy_context()
                threading.Thread(target=context.run, args=(self._one, job, changed), daemon=True,
                                 name="mediaflows-speech-piece").start()  # fmt: skip
            progress.sent, progress.queued = len(out), len(todo)
            progress.speed = self.pace.speed
            if (line := progress.line()) != shown:
                shown = line
                self.on_progress(progress)
            with changed:
                changed.wait_for(lambda: any(o.done for o in out), timeout=0.2)
            for job in [o for o in out if o.done]:
                out.remove(job)
                self._finished(job, todo, progress)
        self.on_progress(progress)
        ordered = sorted(self.results.items(), key=lambda kv: kv[0].start)
        return [r.model_copy(update={"index": i}) for i, (_, r) in enumerate(ordered)]

    def _next_span(self, start: int) -> tuple[Span, PieceResult | None]:
        if self.cache is not None and (hit := self.cache.longest_from(start)) is not None:
            return hit
        want = start + int(self.pace.piece_s() * SAMPLE_RATE)
        later = [c for c in self.audio.cuts if c > start]
        end = min(later, key=lambda c: (abs(c - want), c))
        # Never past the endpoint's upload limit: the largest cut within it, at least one unit.
        longest = start + int(piece_seconds(self.pace.endpoint) * SAMPLE_RATE)
        if end > longest:
            end = max([c for c in later if c <= longest], default=later[0])
        return Span(start, end), None

    def _one(self, job: _Out, changed: threading.Condition) -> None:
        in_flight = self.pace.window.started()
        ok = False
        try:
            with self.hold():
                job.started = self.clock()
                job.result = self.send(job.span, job.timeout)
            ok = True
        except BaseException as exc:  # handed to the loop, which raises or splits
            job.error = exc
        finally:
            took = self.clock() - job.started
            self.pace.window.finished(in_flight, took, job.span.seconds, ok)
            if ok:
                self.pace.answered(job.span.seconds, took, job.timeout)
            with changed:
                job.done = True
                changed.notify_all()

    def _finished(self, job: _Out, todo: deque[Span], progress: Progress) -> None:
        if job.result is not None:
            self.results[job.span] = job.result
            if self.cache is not None:
                self.cache.put(job.span, job.result)
            progress.answered += 1
            progress.answered_s += job.span.seconds
            return
        if not isinstance(job.error, ASRTimeoutError | PieceTooLargeError):
            raise job.error if job.error is not None else RuntimeError("piece lost")
        halves = self._halves(job.span)
        if halves is None:
            raise ASRUnavailableError(
                f"{job.error}; {job.span.seconds:.1f} s of audio at "
                f"{job.span.start / SAMPLE_RATE:.1f} s got no answer: the endpoint is too slow "
                "or stuck (raise its timeout_s)"
            )
        progress.split += 1
        why = (f"got no answer within {job.timeout:.0f} s" if isinstance(job.error, ASRTimeoutError)
               else "was larger than the upload limit")  # fmt: skip
        self.on_event(
            f"piece {_where(job.span)} {why}: cut in two ({halves[0].seconds:.0f} s + "
            f"{halves[1].seconds:.0f} s), sent before new pieces"
        )
        todo.extendleft(reversed(halves))

    def _halves(self, span: Span) -> tuple[Span, Span] | None:
        if span.seconds < 2 * MIN_HALF_S:
            return None
        middle = (span.start + span.end) // 2
        inside = [c for c in self.audio.cuts if span.start < c < span.end]
        if inside:
            cut = min(inside, key=lambda c: abs(c - middle))
        else:  # one unit: its quietest moment in the middle half
            samples = self.audio.read(span)
            quarter = len(samples) // 4
            cut = span.start + quietest_cut(samples, quarter, len(samples) - quarter)
        return Span(span.start, cut), Span(cut, span.end)


def transcribe_by_endpoint(
    path: Path,
    name: str,
    request: TranscribeRequest,
    endpoint: ASREndpoint,
    workspace: Path,
    limit: int,
    settings: Settings | None = None,
    expected_s: float | None = None,
    hold: Callable[[], AbstractContextManager[object]] = nullcontext,
    on_progress: Callable[[Progress], None] = lambda p: None,
    on_event: Callable[[str], None] = lambda m: None,
) -> Transcription:
    """``path`` transcribed by the endpoint ``request.provider`` names: decoded once, sent in
    pieces paced to the endpoint (:class:`Sender`), pieces heard in another language than most
    of the file asked again in the file's, merged and guarded (:func:`merge`). ``limit``: the
    most requests in flight (the ``asr`` limit); ``hold()``: a slot of it around each request."""
    settings = settings or get_settings()
    audio = decode_once(path, name, workspace, settings, expected_s,
                        min(UNIT_S, piece_seconds(endpoint)))  # fmt: skip
    whole = audio.digest()
    pace = Pace(endpoint, limit)
    (workspace / "pieces").mkdir(exist_ok=True)

    def sender(language: str | None) -> Sender:
        what = (f"{endpoint.base_url}|{endpoint.model}|{endpoint.word_timestamps}|"
                f"{endpoint.bitrate_kbps}|{endpoint.response_format}|"
                f"{request.model_dump_json()}|{language}")  # fmt: skip
        cache = SpanCache(cache_dir(settings), span_cache_key(whole, what))
        upload_limit = int(endpoint.max_upload_mb * 1e6)

        def send(span: Span, timeout: float) -> PieceResult:
            samples = audio.read(span)
            piece = encode_piece(samples, span.start / SAMPLE_RATE, endpoint,
                                 workspace / "pieces", settings)  # fmt: skip
            try:
                if piece.size > upload_limit:
                    raise PieceTooLargeError(f"{piece.size} bytes, over {upload_limit}")
                result = transcribe_piece(piece, request, request.provider, endpoint, language,
                                          timeout_s=timeout)  # fmt: skip
            finally:
                piece.path.unlink(missing_ok=True)
            if not (result.words_estimated and endpoint.align_words and result.segments):
                return result
            reference = local_words(samples, result.language, settings)
            aligned = align(result.segments, reference, span.start / SAMPLE_RATE)
            return result.model_copy(update={"segments": aligned, "words_estimated": False,
                                             "words_aligned": True})  # fmt: skip

        return Sender(audio, pace, send, cache, hold, on_progress, on_event)

    results = sender(None).run()
    check, measured = None, None
    spoken = any(r.segments for r in results)
    if (
        spoken
        and request.language is None
        and request.task == "transcribe"
        and (settings.asr.check_language)
    ):
        check, measured = check_language(
            audio, majority_language(results), request.provider, settings
        )
        on_event(f"language: the endpoint heard {majority_language(results)}; the bundled "
                 f"model hears {check}")  # fmt: skip
    resent = 0.0
    again = heard_elsewhere(results, request)
    if again is not None:
        language, odd = again
        spans = [span for r, span in zip(results, spans_of(results), strict=True)
                 if r.index in odd]  # fmt: skip
        on_event(f"{len(spans)} piece(s) heard in another language than the file's "
                 f"({language}): asked again in {language}")  # fmt: skip
        redone = sender(language).run(spans)
        kept = [r for r in results if r.index not in odd]
        results = [r.model_copy(update={"index": i}) for i, r in
                   enumerate(sorted(kept + redone, key=lambda r: r.offset))]  # fmt: skip
        resent = sum(s.seconds for s in spans)
    model = model_id(request, settings)
    heard = merge(results, request, request.provider, endpoint, model, resent_s=resent)
    if check is not None and heard.asr is not None:
        heard = heard.model_copy(update={
            "asr": heard.asr.model_copy(update={"language_check": check}),
            "language_probability": measured, "language_doubtful": doubtful(measured),
        })  # fmt: skip
    return heard


#: Seconds of the file the bundled model listens to when the endpoint detected the language.
CHECK_S = 30.0


def check_language(
    audio: DecodedAudio, heard: str, provider: str, settings: Settings | None = None
) -> tuple[str, float | None]:
    """What the bundled multilingual model hears in 30 s from the middle of the file, as
    ``"de 0.97 (agrees)"``, and its probability for ``heard`` (None when it hears another
    language: nobody measured the endpoint's); :class:`InputError` naming both languages when
    it is confidently (``check_language_confidence``) another language than the endpoint's
    ``heard``, or when ``heard`` is a language mediaflows does not know (never used silently)."""
    settings = settings or get_settings()
    middle = audio.samples // 2
    half = int(CHECK_S / 2 * SAMPLE_RATE)
    span = Span(max(0, middle - half), min(audio.samples, middle + half))
    local, probability = detect_language(audio.read(span), settings)
    if same_language(heard, local):
        return f"{local} {probability:.2f} (agrees)", round(probability, 4)
    known = heard in LANGUAGES
    if probability >= settings.asr.check_language_confidence or not known:
        what = "" if known else ", a language mediaflows does not know"
        raise InputError(
            f"the speech endpoint {provider!r} heard {_named(heard)}{what}, but the bundled model "
            f"hears {_named(local)} ({probability:.0%} sure) in {span.seconds:.0f} s at "
            f"{_clock(span.start / SAMPLE_RATE)}: set the request's language (e.g. language: "
            f"{local}) and run again"
        )
    return f"{local} {probability:.2f} (the endpoint's {heard} kept: not sure enough)", None


def _named(code: str) -> str:
    return f"{LANGUAGES[code][0]} ({code})" if code in LANGUAGES else repr(code)


def _where(span: Span) -> str:
    return f"{_clock(span.start / SAMPLE_RATE)}–{_clock(span.end / SAMPLE_RATE)}"


def _clock(seconds: float) -> str:
    minutes, rest = divmod(math.floor(seconds), 60)
    return f"{minutes}:{rest:02d}"


def span_cache_key(audio_digest: str, what: str) -> str:
    """The cache file's name for one file's audio and everything an answer depends on."""
    return hashlib.sha256(f"{audio_digest}|{what}".encode()).hexdigest()[:32]


def cache_dir(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).home / "cache" / "asr-spans"


def spans_of(results: list[PieceResult]) -> Iterator[Span]:
    """The spans of answered pieces (from their offset and duration)."""
    for r in results:
        start = round(r.offset * SAMPLE_RATE)
        yield Span(start, start + round(r.duration * SAMPLE_RATE))
