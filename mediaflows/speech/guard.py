"""The hallucination guard: what Whisper (or an endpoint running it) writes that nobody said.

faster-whisper's own thresholds flag silence and loops; on top of them a segment is dropped when
it is probably silence (high no-speech probability and low log-probability), loops on a phrase,
repeats the previous segment verbatim, or holds no word at all.

Repetition alone is not a loop: people do say "no, no, no, no, no". A segment that repeats a
phrase (or compresses too well because of it) is kept when its word timings say it was spoken:
a short burst, words of a plausible length at a speaking rate (not squeezed into a few
milliseconds each), heard with normal confidence. A loop repeats a phrase over a span where the
timings or the confidence say otherwise, or comes without word timings to vouch for it. A
segment whose speech runs on into such a loop is cut where the loop begins (:func:`trim_loop`).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from mediaflows.languages import join_words
from mediaflows.speech.records import Segment


@dataclass(frozen=True)
class Guard:
    """Thresholds of the hallucination guard (faster-whisper's own, plus repetition checks)."""

    no_speech_prob: float = 0.6
    avg_logprob: float = -1.0
    compression_ratio: float = 2.4
    max_ngram_repeats: int = 4
    silence_threshold: float = 2.0
    #: A repetition with word timings is speech only up to this many words a second …
    max_words_per_s: float = 5.0
    #: … with words at least this long (a loop's timings collapse to almost nothing) …
    min_word_s: float = 0.06
    #: … heard with at least this mean word probability …
    min_word_probability: float = 0.5
    #: … in a burst no longer than this (a loop fills whole windows).
    max_burst_s: float = 20.0


#: Part of the transcription cache key and of the output ids of what is built from speech: bump
#: it when the guard keeps or drops other segments (v2: spoken repetition is kept).
GUARD_VERSION = "guard-v2"

#: The thresholds every transcription uses unless told otherwise.
DEFAULT_GUARD = Guard()


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


def spoken_repetition(segment: Segment, guard: Guard) -> bool:
    """Whether a repetitive segment's word timings and confidence say it was spoken: a burst no
    longer than ``max_burst_s``, at most ``max_words_per_s``, nearly every word at least
    ``min_word_s`` long, a mean word probability of ``min_word_probability`` or more, and the
    segment's log-probability above the guard's."""
    words = [w for w in segment.words if _WORD_RE.search(w.text)]
    if len(words) < 2 or segment.avg_logprob < guard.avg_logprob:
        return False
    span = words[-1].end - words[0].start
    if span <= 0 or span > guard.max_burst_s or len(words) / span > guard.max_words_per_s:
        return False
    short = sum(1 for w in words if w.end - w.start < guard.min_word_s)
    if short > len(words) // 10:
        return False
    return sum(w.probability for w in words) / len(words) >= guard.min_word_probability


def _repetitive(segment: Segment, guard: Guard) -> bool:
    return (
        segment.compression_ratio > guard.compression_ratio
        or _max_ngram_repeats(segment.text) > guard.max_ngram_repeats
    )


def _compression_ratio(text: str) -> float:
    """As Whisper measures it: the text's bytes over their zlib-compressed bytes."""
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 1.0


def trim_loop(segment: Segment, guard: Guard) -> Segment:
    """A repetitive segment cut before the loop its decoding fell into: a speaker said "word"
    ten times and the model went on writing it, the words after the speech squeezed into a few
    milliseconds each. Its words up to the first three in a row shorter than ``min_word_s`` are
    kept when the words after them only repeat them and they are spoken repetition
    (:func:`spoken_repetition`); any other segment is returned as it is (and judged by
    :func:`is_hallucination`)."""
    words = segment.words
    if not _repetitive(segment, guard) or spoken_repetition(segment, guard):
        return segment
    short = [w.end - w.start < guard.min_word_s for w in words]
    cut = next((i for i in range(len(words) - 2) if all(short[i : i + 3])), len(words))
    if cut < 2 or cut == len(words):
        return segment
    said = {w.lower() for w in _WORD_RE.findall(" ".join(w.text for w in words[:cut]))}
    if not {w.lower() for w in _WORD_RE.findall(" ".join(w.text for w in words[cut:]))} <= said:
        return segment  # the tail says something else: not the speech going on, a loop of its own
    spoken = words[:cut]
    text = join_words(w.text for w in spoken)
    trimmed = segment.model_copy(
        update={"end": spoken[-1].end, "text": text, "words": spoken,
                "compression_ratio": _compression_ratio(text)}
    )  # fmt: skip
    return trimmed if spoken_repetition(trimmed, guard) else segment


def is_hallucination(segment: Segment, previous: Segment | None, guard: Guard) -> bool:
    """Whether a segment is probably something nobody said (see the module's docstring)."""
    if not segment.text or not _WORD_RE.search(segment.text):
        return True
    if segment.no_speech_prob > guard.no_speech_prob and segment.avg_logprob < guard.avg_logprob:
        return True  # Whisper's own "this was silence" rule, applied strictly
    if _repetitive(segment, guard) and not spoken_repetition(segment, guard):
        return True
    return previous is not None and segment.text.lower() == previous.text.lower()
