"""Chinese in the script a request asks for: ``zh-Hans`` (Simplified) or ``zh-Hant``
(Traditional) is recognised as ``zh`` and the text converted with OpenCC, the well-kept converter
(phrase tables, not a character map made by hand); ``zh`` alone is written as the model writes
it (Whisper often writes Mandarin in Traditional characters)."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from mediaflows.speech.records import Transcription

#: Script subtag → OpenCC's conversion.
CONVERSIONS = {"Hans": "t2s", "Hant": "s2t"}
_lock = threading.Lock()


def model_language(language: str | None) -> str | None:
    """The language code a model or an endpoint is given for a requested tag (``zh-Hans`` →
    ``zh``)."""
    return language.split("-")[0] if language else None


@lru_cache(maxsize=4)
def _converter(conversion: str) -> Any:
    import opencc

    return opencc.OpenCC(conversion)


def convert(text: str, language: str) -> str:
    """``text`` in the script ``language`` names (``zh-Hans``/``zh-Hant``); as it is otherwise."""
    conversion = CONVERSIONS.get(language.partition("-")[2])
    if not text or conversion is None:
        return text
    with _lock:  # one converter object per conversion, shared by the runs of a process
        return str(_converter(conversion).convert(text))


def in_script(transcription: Transcription, language: str | None) -> Transcription:
    """The transcription with every segment's and word's text in the requested script, and
    the requested tag as its language; as it is for a request without a script."""
    if not language or language.partition("-")[2] not in CONVERSIONS:
        return transcription
    segments = tuple(
        s.model_copy(update={
            "text": convert(s.text, language),
            "words": tuple(w.model_copy(update={"text": convert(w.text, language)})
                           for w in s.words),
        })
        for s in transcription.segments
    )  # fmt: skip
    return transcription.model_copy(update={"segments": segments, "language": language})
