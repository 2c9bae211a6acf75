"""SubRip (``.srt``), read and written by pysubs2, text and tags exactly as found."""

from __future__ import annotations

from collections.abc import Sequence

import pysubs2

from mediaflows.errors import InputError
from mediaflows.subtitles.formats.common import (
    BOMS,
    MAX_SRT_BYTES,
    blank_lines,
    cues_to_timed,
    decode_text,
    keep_blank_lines,
    placed,
    position_of,
)
from mediaflows.subtitles.records import Cue, ParsedSrt, TimedCue


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


def write(cues: Sequence[TimedCue], language: str | None = None) -> str:
    """SubRip text of ``cues``, numbered from 1, times and tags exactly as given (a cue's
    position as ``{\\anN}`` first); SubRip has no place for the language."""
    subs = pysubs2.SSAFile()
    for cue in cues:
        text = keep_blank_lines(placed(cue)).replace("\n", r"\N")
        subs.append(pysubs2.SSAEvent(start=cue.start_ms, end=cue.end_ms, text=text))
    # keep_ssa_tags: text goes out as it came in (HTML and {\an8} tags untouched).
    return subs.to_string("srt", keep_ssa_tags=True) if cues else ""


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


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip text of a transcript's cues (written by pysubs2)."""
    return write(cues_to_timed(cues))
