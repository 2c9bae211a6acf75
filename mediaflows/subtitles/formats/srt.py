"""SubRip (``.srt``), read by pysubs2 and written here the way pysubs2 writes it, text and tags
exactly as found."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pysubs2

from mediaflows.errors import InputError
from mediaflows.subtitles.formats.common import (
    BOMS,
    MAX_SRT_BYTES,
    blank_lines,
    decode_text,
    keep_blank_lines,
    placed,
    position_of,
)
from mediaflows.subtitles.records import ParsedSrt, TimedCue


def read(text: str, name: str = "subtitles.srt") -> list[TimedCue]:
    """The cues of SubRip ``text`` (LF line ends): times to the millisecond, text as written
    (HTML and ASS tags kept), a leading ``{\\an8}`` also kept as the cue's position."""
    try:
        subs = pysubs2.SSAFile.from_string(text, format_="srt", keep_html_tags=True)
    except Exception as exc:  # pysubs2 raises a variety of errors on garbage
        raise InputError(f"{name}: not a SubRip file ({exc})") from exc
    cues = []
    for i, e in enumerate(subs, 1):
        body = blank_lines(e.text.replace(r"\N", "\n"))
        cues.append(
            TimedCue(id=i, start_ms=e.start, end_ms=e.end, text=body, position=position_of(body))
        )
    return cues


#: A drawing (``{\\p1}``), which pysubs2 does not write as SubRip either.
_DRAWING = re.compile(r"\{[^{}]*\\p[1-9][^{}]*\}")
#: Largest time SubRip can write, 99:59:59,999.
_LAST_MS = 100 * 3_600_000 - 1


def srt_time(ms: int) -> str:
    """``ms`` as SubRip writes a time (``01:02:03,450``)."""
    ms = min(max(ms, 0), _LAST_MS)
    return f"{ms // 3_600_000:02}:{ms // 60_000 % 60:02}:{ms // 1000 % 60:02},{ms % 1000:03}"


def _body(cue: TimedCue) -> str:
    text = keep_blank_lines(placed(cue))
    if "\\" in text:
        text = text.replace(r"\h", " ").replace(r"\n", "\n").replace(r"\N", "\n")
    return re.sub("\n+", "\n", text.strip()) if "\n\n" in text or text != text.strip() else text


def write(cues: Sequence[TimedCue], language: str | None = None) -> str:
    """SubRip text of ``cues``, numbered from 1, times and tags exactly as given (a cue's
    position as ``{\\anN}`` first), byte for byte as pysubs2 writes it with its tags kept (its
    generic writer takes longer than reading the file); SubRip has no place for the language."""
    blocks: list[str] = []
    for cue in cues:
        if "{" in cue.text and _DRAWING.search(cue.text):
            continue
        blocks.append(f"{len(blocks) + 1}\n{srt_time(cue.start_ms)} --> {srt_time(cue.end_ms)}\n"
                      f"{_body(cue)}\n\n")  # fmt: skip
    return "".join(blocks)


def read_srt(data: bytes, name: str = "subtitles.srt") -> ParsedSrt:
    """Parse an SRT file as found in the wild (BOM, CRLF, HTML/ASS tags, overlapping cues, no
    final blank line, legacy encodings) with pysubs2. Times are kept to the millisecond and text
    as written, tags included, so that writing it back changes nothing but what was edited."""
    if len(data) > MAX_SRT_BYTES:
        raise InputError(f"{name}: {len(data)} bytes; larger than an SRT file can be")
    text, encoding = decode_text(data, name)
    bom = any(data.startswith(mark) for mark, _ in BOMS)
    crlf = "\r\n" in text[:4096]
    cues = tuple(read(text.replace("\r\n", "\n").replace("\r", "\n"), name))
    if not cues:
        raise InputError(f"{name}: no SubRip cues found")
    return ParsedSrt(cues=cues, encoding=encoding, bom=bom, crlf=crlf)


def write_srt(cues: Sequence[TimedCue]) -> str:
    """SubRip text of ``cues``, numbered from 1, times and tags exactly as given."""
    return write(cues)
