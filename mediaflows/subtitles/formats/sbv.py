"""SubViewer as YouTube writes it (``.sbv``): ``0:00:01.000,0:00:02.500`` then the text, cues
parted by an empty line. pysubs2 does not know it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from mediaflows.subtitles.formats.common import (
    FOREIGN_MARKUP,
    blank_lines,
    keep_blank_lines,
    unplaced,
)
from mediaflows.subtitles.records import TimedCue

TIMING = re.compile(
    r"^(\d+):(\d{1,2}):(\d{1,2})\.(\d{1,3}),(\d+):(\d{1,2}):(\d{1,2})\.(\d{1,3})\s*$"
)
_KEPT = re.compile(r"</?(?:i|b|u)>", re.IGNORECASE)


def _ms(h: str, m: str, s: str, frac: str) -> int:
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(frac.ljust(3, "0"))


def _stamp(ms: int) -> str:
    return f"{ms // 3_600_000}:{ms // 60_000 % 60:02}:{ms // 1000 % 60:02}.{ms % 1000:03}"


def read(text: str, name: str = "subtitles.sbv") -> list[TimedCue]:
    """The cues of SBV ``text`` (LF line ends); a block whose first line is no timing is left
    out."""
    cues: list[TimedCue] = []
    for block in re.split(r"\n(?:[ \t]*\n)+", text.lstrip("\ufeff").strip("\n")):
        first, _, body = block.strip("\n").partition("\n")
        m = TIMING.match(first.strip())
        if m is None:
            continue
        g = m.groups()
        cues.append(TimedCue(id=len(cues) + 1, start_ms=_ms(*g[:4]), end_ms=_ms(*g[4:]),
                             text=blank_lines(body)))  # fmt: skip
    return cues


def write(cues: Sequence[TimedCue], language: str | None = None) -> str:
    """SBV of ``cues``: <i>, <b>, <u> kept (YouTube shows them), other tags and positions
    dropped (the format has no place for them, nor for the language)."""
    blocks = []
    for cue in cues:
        text = FOREIGN_MARKUP.sub(lambda m: m.group(0) if _KEPT.fullmatch(m.group(0)) else "",
                            unplaced(cue)[0])  # fmt: skip
        text = keep_blank_lines(text.strip("\n"))
        blocks.append(f"{_stamp(cue.start_ms)},{_stamp(cue.end_ms)}\n{text}\n")
    return "\n".join(blocks)
