"""What speech recognition hands on, whoever did it (the local model or an endpoint): words with
their times, segments, and a file's transcription. The unit Prefect caches, and what subtitles
are built from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mediaflows.languages import join_words
from mediaflows.models import DOUBTFUL, PROBABILITY, ProviderUsage


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Word(_Record):
    """One recognised word with its times in seconds."""

    start: float
    end: float
    text: str
    probability: float = 1.0


class Segment(_Record):
    """One Whisper segment."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0


#: A detected language less sure than this is reported as doubtful (faster-whisper's own
#: ``language_detection_threshold``).
DOUBTFUL_BELOW = 0.5


def doubtful(probability: float | None) -> bool:
    """Whether a detected language with this probability (None: nobody measured it) is in doubt."""
    return probability is None or probability < DOUBTFUL_BELOW


class Transcription(_Record):
    """What the model heard: the unit Prefect caches (keyed by content, options and model)."""

    language: str
    language_probability: float | None = Field(default=None, description=PROBABILITY)
    language_doubtful: bool = Field(default=False, description=DOUBTFUL)
    duration: float
    segments: tuple[Segment, ...]
    model: str
    dropped: int = Field(default=0, description="Segments dropped by the hallucination guard.")
    asr: ProviderUsage = Field(default_factory=ProviderUsage)

    @property
    def text(self) -> str:
        """The segments' text joined as the language is written: with a space between two
        segments, but none between two characters of scripts written without spaces."""
        return join_words(" " + s.text for s in self.segments)


class Span(_Record):
    """One window of a long file: ``start`` to ``end`` seconds (None: to the end of the audio)."""

    index: int
    start: float
    end: float | None

    def key(self) -> str:
        """The span in a cache key, to the millisecond."""
        return f"{self.start:.3f}-{'end' if self.end is None else f'{self.end:.3f}'}"


class Heard(_Record):
    """What the model heard in one window, its times already in the file's: the unit a long
    file's transcription is cached and resumed by."""

    index: int
    start: float
    duration: float
    segments: tuple[Segment, ...]
    dropped: int = 0
    language: str
    probability: float = 0.0
    detected: bool = Field(
        default=False, description="The language was detected (not given, multilingual model)."
    )
