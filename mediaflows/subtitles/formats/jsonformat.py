"""mediaflows' JSON: a transcript's segments and words (with its cues), and cues of any file
with everything the record keeps (position, settings, speaker, style)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from mediaflows.errors import InputError
from mediaflows.speech.records import Transcription
from mediaflows.subtitles.records import TimedCue


def to_json(transcription: Transcription, cues: Sequence[TimedCue] | None = None) -> str:
    """Segments with their words (and cues, when given: number, seconds, lines) as JSON."""
    data: dict[str, Any] = {
        "language": transcription.language,
        "duration": transcription.duration,
        "model": transcription.model,
        "text": transcription.text,
        "segments": [s.model_dump() for s in transcription.segments],
    }
    if cues is not None:
        data["cues"] = [
            {"index": c.id, "start": c.start, "end": c.end, "lines": list(c.lines)} for c in cues
        ]
    return json.dumps(data, ensure_ascii=False, indent=1)


def _cue(n: int, item: Any) -> TimedCue:
    """A cue of either shape: a file's (``start_ms``, ``text``) or a transcript's (``start``
    in seconds, ``lines``)."""
    if isinstance(item, dict) and "lines" in item:
        start, end = round(item["start"] * 1000), round(item["end"] * 1000)
        return TimedCue(id=n, start_ms=start, end_ms=end, text="\n".join(item["lines"]))
    return TimedCue.model_validate({**item, "id": n})


def read(text: str, name: str = "subtitles.json") -> list[TimedCue]:
    """The cues of a JSON document with a ``cues`` list (as :func:`write` and
    :func:`to_json` write it)."""
    try:
        data = json.loads(text)
        items = data["cues"] if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise InputError(f"{name}: JSON without a list of cues")
        return [_cue(n, item) for n, item in enumerate(items, 1)]
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise InputError(f"{name}: not a JSON subtitle file ({str(exc).splitlines()[0]})") from exc


def language_of(text: str) -> str | None:
    """The ``language`` of a JSON subtitle file (None: none)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    language = data.get("language") if isinstance(data, dict) else None
    return language if isinstance(language, str) and language else None


def write(cues: Sequence[TimedCue], language: str | None = None) -> str:
    """``{"language": …, "cues": [...]}``, each cue with its times in milliseconds, its text and
    what else it has (position, settings, speaker, style)."""
    dumped = (c.model_dump(exclude_defaults=True, exclude={"id"}) | {"text": c.text} for c in cues)
    items = ",\n  ".join(json.dumps(item, ensure_ascii=False) for item in dumped)
    # One cue a line: readable and diffable, and json's C encoder stays in use (not with indent).
    return f'{{\n "language": {json.dumps(language)},\n "cues": [\n  {items}\n ]\n}}\n'
