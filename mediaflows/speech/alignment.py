"""Word times for an endpoint's text when the endpoint gives none (segment times only, or text
only): the bundled model's own word times on the same piece of audio, matched word by word.

Spreading a segment's words evenly over its time (what :func:`endpoint.estimate_words` does)
puts cue boundaries where the speaker was not: a pause inside a segment moves every word after
it. Here the same audio goes through the local model with word timestamps; the endpoint's words
and the local ones are matched as sequences (``difflib``: the endpoint's text is kept, only its
times come from the local model); a word without a match gets the time between its matched
neighbours, shared by length. The local model's words are never used as text.
"""

from __future__ import annotations

import difflib
import threading
import unicodedata

import numpy as np

from mediaflows.languages import LANGUAGES
from mediaflows.models import TranscribeRequest
from mediaflows.settings import Settings
from mediaflows.speech.records import Segment, Word

#: One local model run at a time for alignment (request threads share the loaded model).
_lock = threading.Lock()


def _token(text: str) -> str:
    kept = (c for c in unicodedata.normalize("NFKC", text.lower()) if c.isalnum())
    return "".join(kept)


def local_words(
    samples: np.ndarray, language: str | None, settings: Settings | None = None
) -> list[Word]:
    """The local model's words with their times (0 = the first sample)."""
    from mediaflows.speech.whisper import transcribe

    request = TranscribeRequest(language=language if language in LANGUAGES else None)
    with _lock:
        heard = transcribe(samples, request, settings=settings)
    return [w for s in heard.segments for w in s.words]


def align(
    segments: tuple[Segment, ...], reference: list[Word], offset: float
) -> tuple[Segment, ...]:
    """``segments`` (the endpoint's, in the file's time, words spread evenly) with each word's
    time taken from the matching word of ``reference`` (the local model's, ``offset`` s before
    the file's time); unmatched words share the time between their matched neighbours."""
    words = [w for s in segments for w in s.words]
    if not words or not reference:
        return segments
    ours = [_token(w.text) for w in words]
    theirs = [_token(w.text) for w in reference]
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    timed: list[tuple[float, float] | None] = [None] * len(words)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            ref = reference[block.b + k]
            timed[block.a + k] = (ref.start + offset, ref.end + offset)
    times = _fill(words, timed)
    out, at = [], 0
    for segment in segments:
        n = len(segment.words)
        mine = tuple(w.model_copy(update={"start": round(t[0], 3), "end": round(t[1], 3)})
                     for w, t in zip(segment.words, times[at : at + n], strict=True))  # fmt: skip
        at += n
        if mine:
            segment = segment.model_copy(update={
                "words": mine, "start": min(segment.start, mine[0].start),
                "end": max(mine[-1].end, mine[0].start)})  # fmt: skip
        out.append(segment)
    return tuple(out)


def _fill(words: list[Word], timed: list[tuple[float, float] | None]) -> list[tuple[float, float]]:
    """Times for the unmatched words: between the matched ones around them (or the spread
    estimate's bounds at either end), shared by length."""
    out: list[tuple[float, float]] = []
    i = 0
    while i < len(words):
        if timed[i] is not None:
            out.append(timed[i])  # type: ignore[arg-type]
            i += 1
            continue
        j = i
        while j < len(words) and timed[j] is None:
            j += 1
        start = out[-1][1] if out else words[i].start
        end = timed[j][0] if j < len(words) else words[j - 1].end  # type: ignore[index]
        end = max(end, start)
        lengths = [len(w.text.strip()) + 1 for w in words[i:j]]
        total, at = sum(lengths), start
        for length in lengths:
            span = (end - start) * length / total
            out.append((at, at + span))
            at += span
        i = j
    return out
