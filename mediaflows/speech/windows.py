"""Long files as windows: the spans a file's audio is cut into (each cut at the quietest moment
near its nominal place, found by decoding only the audio around it), the windows run in the order
that lets the language be detected once, and the windows' recognitions joined into one
transcription. Each window is a unit of work of its own: cached, resumable, run on any worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mediaflows.media.audio import CUT_SEARCH_S, SAMPLE_RATE, decode_span, quietest_cut
from mediaflows.media.probe import check_complete
from mediaflows.settings import Settings, get_settings
from mediaflows.speech.guard import DEFAULT_GUARD, Guard, is_hallucination
from mediaflows.speech.records import Heard, Segment, Span, Transcription, doubtful

#: Part of the plan's cache key: bump it when the same file would be cut elsewhere.
PLAN_VERSION = "spans-v1"


def search_s(window_s: float) -> float:
    """How far from its nominal place a cut may move (at most a third of a window)."""
    return min(CUT_SEARCH_S, window_s / 3)


def is_long(duration: float | None, settings: Settings | None = None) -> bool:
    """Whether a file of ``duration`` seconds is transcribed in more than one window."""
    window = (settings or get_settings()).whisper.window_s
    return duration is not None and duration > window + search_s(window)


def plan_spans(
    path: Path, name: str, duration: float | None, settings: Settings | None = None
) -> tuple[Span, ...]:
    """The windows of a file of ``duration`` seconds (the probe's): one for a file no longer
    than a window (and its search margin), else one every ``whisper.window_s``, each cut at the
    quietest 100 ms within :func:`search_s` of its nominal place. Only the audio around each cut
    is decoded (ffmpeg seeks), so planning a 3-hour film reads about a minute of it."""
    settings = settings or get_settings()
    window = settings.whisper.window_s
    search = search_s(window)
    if duration is None or not is_long(duration, settings):
        return (Span(index=0, start=0.0, end=None),)
    cuts: list[float] = [0.0]
    nominal = window
    while duration - nominal > search:
        around = decode_span(path, name, nominal - search, 2 * search, settings)
        if len(around) < SAMPLE_RATE:  # the audio ends before the file claims: no more cuts
            break
        cut = quietest_cut(around, 0, len(around)) / SAMPLE_RATE
        cuts.append(round(nominal - search + cut, 3))
        nominal += window
    ends: list[float | None] = [*cuts[1:], None]
    pairs = zip(cuts, ends, strict=True)
    return tuple(Span(index=i, start=s, end=e) for i, (s, e) in enumerate(pairs))


def span_audio(
    path: Path, name: str, span: Span, expected_s: float | None, settings: Settings | None = None
) -> np.ndarray:
    """The samples of ``span``; a window that decodes to clearly less than it spans (or, the
    last, than the file claims to hold) is refused as truncated (:class:`MediaError`)."""
    settings = settings or get_settings()
    length = None if span.end is None else span.end - span.start
    audio = decode_span(path, name, span.start, length, settings)
    wanted = span.end if span.end is not None else expected_s
    if wanted is not None:
        check_complete(name, span.start + len(audio) / SAMPLE_RATE, wanted)
    return audio


RunWindow = Callable[[Span, str | None], Heard]
RunWindows = Callable[[Sequence[Span], str | None], list[Heard]]


def run_windows(
    spans: Sequence[Span], language: str | None, one: RunWindow, rest: RunWindows
) -> list[Heard]:
    """Every span heard: without a ``language``, one window at a time until one has speech (its
    language is then given to every later window, as one pass would), then the rest together
    (``rest`` may run them anywhere, in any order)."""
    heard: list[Heard] = []
    todo = list(spans)
    while language is None and todo:
        window = one(todo.pop(0), None)
        heard.append(window)
        if window.segments:
            language = window.language
    return [*heard, *rest(todo, language)] if todo else heard


def join(
    heard: Sequence[Heard], model: str, requested: str | None, guard: Guard = DEFAULT_GUARD
) -> Transcription:
    """The windows' recognitions as one transcription, in time order: a segment that repeats the
    last one of the window before (the same words on both sides of a cut) is dropped, as one
    pass would drop it; the language is the first speech's (or the requested one)."""
    kept: list[Segment] = []
    dropped = 0
    first: Heard | None = None
    for window in sorted(heard, key=lambda h: h.start):
        dropped += window.dropped
        segments = list(window.segments)
        while segments and kept and is_hallucination(segments[0], kept[-1], guard):
            segments.pop(0)
            dropped += 1
        kept.extend(segments)
        if first is None and window.segments:
            first = window
    first = first or (max(heard, key=lambda h: h.start) if heard else None)
    probability = first.probability if first is not None and first.detected else None
    language = first.language if first is not None else (requested or "en")
    return Transcription(
        language=language,
        language_probability=probability,
        language_doubtful=bool(first is not None and first.detected and doubtful(probability)),
        duration=sum(h.duration for h in heard),
        segments=tuple(kept),
        model=model,
        dropped=dropped,
    )


class Estimate:
    """Windows done of all, audio seconds done, and when the rest should be done at the speed
    measured so far (windows answered from the cache are not counted in the speed)."""

    def __init__(self, spans: Sequence[Span], total_s: float | None) -> None:
        self.count = len(spans)
        self.total_s = total_s or 0.0
        self.done = 0
        self.done_s = 0.0
        self._worked_s = 0.0
        self._started = time.monotonic()
        self._cached_s = 0.0
        self._lock = threading.Lock()

    def add(self, heard: Heard, cached: bool = False) -> None:
        with self._lock:  # windows on the pool end in threads of their own
            self.done += 1
            self.done_s += heard.duration
            if cached:
                self._cached_s += heard.duration
            self._worked_s = time.monotonic() - self._started

    @property
    def fraction(self) -> float:
        return min(self.done_s / self.total_s, 1.0) if self.total_s else self.done / self.count

    def eta_s(self) -> float | None:
        """Seconds until every window is done, or None before one was worked out."""
        measured = self.done_s - self._cached_s
        if measured <= 0 or self._worked_s <= 0:
            return None
        return max(self.total_s - self.done_s, 0.0) * self._worked_s / measured

    def line(self) -> str:
        """``window 3/12 · 15:00 of 60:00 · about 9 min left``."""
        text = (f"window {self.done}/{self.count} · {_clock(self.done_s)} of "
                f"{_clock(self.total_s)}")  # fmt: skip
        eta = self.eta_s()
        if eta is not None and self.done < self.count:
            text += f" · about {_clock(eta)} left"
        return text


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
