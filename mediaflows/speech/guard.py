"""The hallucination guard: what Whisper (or an endpoint running it) writes that nobody said.

faster-whisper's own thresholds flag silence and loops; on top of them a segment is dropped when
it is probably silence (high no-speech probability and low log-probability), loops on a phrase,
repeats the previous segment verbatim, or holds no word at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mediaflows.speech.records import Segment


@dataclass(frozen=True)
class Guard:
    """Thresholds of the hallucination guard (faster-whisper's own, plus repetition checks)."""

    no_speech_prob: float = 0.6
    avg_logprob: float = -1.0
    compression_ratio: float = 2.4
    max_ngram_repeats: int = 4
    silence_threshold: float = 2.0


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


def is_hallucination(segment: Segment, previous: Segment | None, guard: Guard) -> bool:
    if not segment.text or not _WORD_RE.search(segment.text):
        return True
    if segment.no_speech_prob > guard.no_speech_prob and segment.avg_logprob < guard.avg_logprob:
        return True  # Whisper's own "this was silence" rule, applied strictly
    if segment.compression_ratio > guard.compression_ratio:
        return True
    if _max_ngram_repeats(segment.text) > guard.max_ngram_repeats:
        return True
    return previous is not None and segment.text.lower() == previous.text.lower()
