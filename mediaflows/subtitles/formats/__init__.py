"""Subtitle files in every format, one module each, and the table of formats (:data:`FORMATS`):
read any of them into one cue record, write the record out in any.

* :mod:`.common`: decoding (encodings, BOMs), the position tag, blank lines inside a cue.
* :mod:`.srt`: SubRip (pysubs2).
* :mod:`.vtt`: WebVTT, with cue settings, voices and the ``Language:`` header.
* :mod:`.ass`: ASS and SSA (pysubs2).
* :mod:`.ttml`: TTML/DFXP read, IMSC1 text profile written.
* :mod:`.sbv`: YouTube's SubViewer.
* :mod:`.jsonformat`: mediaflows' JSON (a transcript's, and cues with all they keep).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from mediaflows.errors import InputError
from mediaflows.subtitles.formats import ass, jsonformat, sbv, srt, ttml, vtt
from mediaflows.subtitles.formats.common import (
    BOMS,
    MAX_SRT_BYTES,
    decode_text,
)
from mediaflows.subtitles.formats.jsonformat import to_json
from mediaflows.subtitles.formats.srt import read_srt, write_srt
from mediaflows.subtitles.formats.vtt import language_vtt
from mediaflows.subtitles.records import ParsedSrt, TimedCue

#: Reads a decoded file (LF line ends) named for messages into its cues.
Reader = Callable[[str, str], list[TimedCue]]
#: Writes cues, with their language when the format has a place for it.
Writer = Callable[[Sequence[TimedCue], str | None], str]
#: The language a decoded file says it is in, where the format has a place for it.
LanguageOf = Callable[[str], str | None]


def _unsaid(text: str) -> str | None:
    return None


@dataclass(frozen=True)
class SubtitleFormat:
    """One row of the table: a format, how to read and write it, and what it keeps of a cue
    besides its times and text (``markup``: italics, bold, underline; ``positions``;
    ``speakers``; ``styles``: named styles)."""

    name: str
    extensions: tuple[str, ...]
    content_type: str
    read: Reader
    write: Writer
    keeps: frozenset[str]
    time_step_ms: int = 1  #: the finest time the format writes (ASS: centiseconds)
    pysubs2: str | None = None  #: its name in pysubs2, where pysubs2 reads and writes it
    language_of: LanguageOf = _unsaid  #: the language the file says it is in


_ALL = frozenset({"markup", "positions", "speakers", "styles"})

FORMATS: dict[str, SubtitleFormat] = {
    f.name: f
    for f in (
        SubtitleFormat("srt", (".srt",), "application/x-subrip", srt.read, srt.write,
                       frozenset({"markup", "positions"}), pysubs2="srt"),
        SubtitleFormat("vtt", (".vtt",), "text/vtt", vtt.read, vtt.write,
                       frozenset({"markup", "positions", "speakers"}), pysubs2="vtt",
                       language_of=vtt.language_of),
        SubtitleFormat("ass", (".ass",), "text/x-ass", ass.read, ass.write, _ALL,
                       time_step_ms=10, pysubs2="ass", language_of=ass.language_of),
        SubtitleFormat("ssa", (".ssa",), "text/x-ssa", ass.read_ssa, ass.write_ssa, _ALL,
                       time_step_ms=10, pysubs2="ssa", language_of=ass.language_of),
        SubtitleFormat("ttml", (".ttml", ".dfxp", ".xml"), "application/ttml+xml", ttml.read,
                       ttml.write, frozenset({"markup", "positions"}), pysubs2="ttml",
                       language_of=ttml.language_of),
        SubtitleFormat("sbv", (".sbv",), "text/plain", sbv.read, sbv.write,
                       frozenset({"markup"})),
        SubtitleFormat("json", (".json",), "application/json", jsonformat.read,
                       jsonformat.write, _ALL, language_of=jsonformat.language_of),
    )
}  # fmt: skip

_SRT_TIMING = re.compile(r"^[ \t]*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}[ \t]*-->", re.MULTILINE)
_TTML_ROOT = re.compile(r"<(?:[\w.-]+:)?tt[\s>]")
_ASS_SECTION = re.compile(r"^\[(?:Script Info|V4\+? Styles|Events)\]", re.MULTILINE)


def format_of_name(filename: str | None) -> str | None:
    """The format a file's extension names (None: none of the table's)."""
    suffix = PurePath(filename or "").suffix.lower()
    return next((f.name for f in FORMATS.values() if suffix in f.extensions), None)


def _by_content(text: str) -> str | None:
    head = text[:4096].lstrip("\ufeff \t\r\n")
    if head.startswith("WEBVTT"):
        return "vtt"
    if _ASS_SECTION.search(head):
        v4 = "[V4 Styles]" in head or re.search(r"^ScriptType:\s*v4\.00\s*$", head, re.M)
        return "ssa" if v4 else "ass"
    if head.startswith("<"):
        if _TTML_ROOT.search(head) and any(ns in head for ns in ttml.NAMESPACES):
            return "ttml"
        return None
    if head.startswith("{"):
        return "json"
    if _SRT_TIMING.search(text):
        return "srt"
    if sbv.TIMING.match(head.partition("\n")[0].strip()):
        return "sbv"
    return None


def detect(text: str, filename: str | None = None) -> str:
    """The format of a subtitle file: from its content first (a WebVTT header, ASS sections, a
    TTML root, SRT or SBV timings), its extension second (ASS or SSA; which the content leaves
    open). Content that is no subtitle format is an :class:`InputError`."""
    found = _by_content(text)
    named = format_of_name(filename)
    if found in ("ass", "ssa") and named in ("ass", "ssa"):
        return named
    if found is None:
        what = f"{named} file" if named else "subtitle format"
        raise InputError(f"{filename or 'subtitles'}: the content is not a {what} we can read")
    return found


def read_subtitles(data: bytes, filename: str = "subtitles") -> ParsedSrt:
    """Parse a subtitle file of any format in the table (its format from its content, then its
    name), in any encoding, with or without BOM and CR LF line ends, into cues.

    Raises:
        InputError: an empty, binary, oversized or unreadable file, or one with no cues.
    """
    if len(data) > MAX_SRT_BYTES:
        raise InputError(f"{filename}: {len(data)} bytes; larger than a subtitle file can be")
    bom = any(data.startswith(mark) for mark, _ in BOMS)
    if not data.strip():
        raise InputError(f"{filename}: empty file")
    if b"\x00" in data[:4096] and not bom:
        raise InputError(f"{filename}: binary data, not a subtitle file")
    text, encoding = decode_text(data, filename)
    crlf = "\r\n" in text[:4096]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    name = detect(text, filename)
    cues = tuple(FORMATS[name].read(text, filename))
    if not cues:
        raise InputError(f"{filename}: no cues found in this {name} file")
    language = FORMATS[name].language_of(text)
    return ParsedSrt(
        cues=cues, encoding=encoding, bom=bom, crlf=crlf, format=name, language=language
    )


def write_subtitles(cues: Sequence[TimedCue], format: str, language: str | None = None) -> str:
    """``cues`` written in ``format`` (a name in :data:`FORMATS`), with ``language`` (a BCP-47
    tag) where the format has a place for it."""
    if format not in FORMATS:
        raise InputError(f"unknown subtitle format {format!r} (known: {', '.join(FORMATS)})")
    return FORMATS[format].write(cues, language)


__all__ = [
    "FORMATS",
    "MAX_SRT_BYTES",
    "SubtitleFormat",
    "decode_text",
    "detect",
    "format_of_name",
    "language_vtt",
    "read_srt",
    "read_subtitles",
    "to_json",
    "write_srt",
    "write_subtitles",
]
