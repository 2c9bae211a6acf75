"""Subtitle files: SRT, WebVTT and JSON written from cues (pysubs2 writes the subtitle formats),
and real-world SRT read back (any encoding, BOM, CR LF, tags) so that a repair or a translation
changes nothing but the text it meant to.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Sequence
from typing import Any

import charset_normalizer
import pysubs2
from charset_normalizer.md import mess_ratio

from mediaflows.errors import InputError
from mediaflows.speech.records import Transcription
from mediaflows.subtitles.records import Cue, ParsedSrt, TimedCue

#: SRT files larger than this are refused (a feature film has ~200 kB of subtitles).
MAX_SRT_BYTES = 20 * 1024 * 1024


def _ssa(cues: Sequence[Cue]) -> pysubs2.SSAFile:
    subs = pysubs2.SSAFile()
    for cue in cues:
        # Braces would read as ASS override tags; the transcript never means them as such.
        text = r"\N".join(line.replace("{", "(").replace("}", ")") for line in cue.lines)
        subs.append(
            pysubs2.SSAEvent(start=round(cue.start * 1000), end=round(cue.end * 1000), text=text)
        )
    return subs


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip text (written by pysubs2)."""
    return _ssa(cues).to_string("srt") if cues else ""


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT text (written by pysubs2)."""
    return _ssa(cues).to_string("vtt") if cues else "WEBVTT\n\n"


def to_json(transcription: Transcription, cues: Sequence[Cue] | None = None) -> str:
    """Segments with their words (and cues, when given) as JSON."""
    data: dict[str, Any] = {
        "language": transcription.language,
        "duration": transcription.duration,
        "model": transcription.model,
        "text": transcription.text,
        "segments": [s.model_dump() for s in transcription.segments],
    }
    if cues is not None:
        data["cues"] = [c.model_dump() for c in cues]
    return json.dumps(data, ensure_ascii=False, indent=1)


#: Markup WebVTT has too (kept); any other tag (<font>) is dropped, an ASS block read.
_VTT_TAGS = re.compile(r"</?(?:i|b|u)>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[^<>]*>")
_ASS_BLOCK = re.compile(r"\{\\[^{}]*\}")
_TOP = re.compile(r"\{\\an[789]\}")


def _vtt_time(ms: int) -> str:
    return f"{ms // 3_600_000:02}:{ms // 60_000 % 60:02}:{ms // 1000 % 60:02}.{ms % 1000:03}"


def _vtt_text(text: str) -> str:
    """A cue's SRT text as WebVTT cue text: <i>, <b>, <u> kept, other tags and ASS blocks
    dropped, ``&`` and stray ``<`` escaped, no blank line and no ``-->`` inside."""
    kept: list[str] = []

    def hold(m: re.Match[str]) -> str:
        kept.append(m.group(0).lower())
        return f"\x00{len(kept) - 1}\x00"

    text = _ANY_TAG.sub(lambda m: hold(m) if _VTT_TAGS.fullmatch(m.group(0)) else "",
                        _ASS_BLOCK.sub("", text))  # fmt: skip
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)
    lines = [line.strip().replace("-->", "→") for line in text.split("\n") if line.strip()]
    return "\n".join(lines)


def language_vtt(cues: Sequence[TimedCue], language: str) -> str:
    """WebVTT of an SRT's cues, times exactly as given, with the language in the header
    (``Language: de``, as web players and YouTube read it). A cue placed at the top in the SRT
    (``{\\an8}``) gets the cue setting ``line:0``; a cue left with no text is not written."""
    blocks = [f"WEBVTT\nLanguage: {language}\n"]
    for n, cue in enumerate(cues, 1):
        text = _vtt_text(cue.text)
        if not text:
            continue
        where = " line:0" if _TOP.search(cue.text) else ""
        blocks.append(
            f"{n}\n{_vtt_time(cue.start_ms)} --> {_vtt_time(cue.end_ms)}{where}\n{text}\n"
        )
    return "\n".join(blocks)


# ---- reading real-world SRT ------------------------------------------------------------------

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))  # fmt: skip


def decode_text(data: bytes, name: str = "subtitles") -> tuple[str, str]:
    """Text and encoding of a subtitle file: a BOM decides, then UTF-8, else detection.

    Legacy files (Windows-1252, Latin-1, Cyrillic code pages) are common among downloaded
    subtitles; charset-normalizer guesses their code page from the bytes.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise InputError(f"{name}: not text in any known encoding")
    # On a few hundred bytes the detector often cannot tell Western code pages apart (French in
    # Windows-1252 comes back as cp1257, "déją"). Windows-1252 is by far the most common legacy
    # encoding of subtitles, so it wins when it reads as cleanly as the detector's pick; Cyrillic
    # or Central European bytes read as cp1252 are a mess ("Ïðèâåò") and keep their code page.
    if best.encoding != "cp1252":
        try:
            western = data.decode("cp1252")
        except UnicodeDecodeError:
            western = None
        if western is not None and mess_ratio(western, 1.0) <= best.chaos + 0.05:
            return western, "cp1252"
    return str(best), str(best.encoding)


def read_srt(data: bytes, name: str = "subtitles.srt") -> ParsedSrt:
    """Parse an SRT file as found in the wild (BOM, CRLF, HTML/ASS tags, overlapping cues, no
    final blank line, legacy encodings) with pysubs2. Times are kept to the millisecond and text
    as written, tags included, so that writing it back changes nothing but what was edited."""
    if len(data) > MAX_SRT_BYTES:
        raise InputError(f"{name}: {len(data)} bytes; larger than an SRT file can be")
    text, encoding = decode_text(data, name)
    bom = any(data.startswith(mark) for mark, _ in _BOMS)
    crlf = "\r\n" in text[:4096]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        subs = pysubs2.SSAFile.from_string(text, format_="srt", keep_html_tags=True)
    except Exception as exc:  # pysubs2 raises a variety of errors on garbage
        raise InputError(f"{name}: not a SubRip file ({exc})") from exc
    cues = tuple(
        TimedCue(id=i, start_ms=e.start, end_ms=e.end, text=e.text.replace(r"\N", "\n"))
        for i, e in enumerate(subs, 1)
    )
    if not cues:
        raise InputError(f"{name}: no SubRip cues found")
    return ParsedSrt(cues=cues, encoding=encoding, bom=bom, crlf=crlf)


def write_srt(cues: Sequence[TimedCue]) -> str:
    """SubRip text of ``cues``, numbered from 1, times and tags exactly as given."""
    subs = pysubs2.SSAFile()
    for cue in cues:
        subs.append(pysubs2.SSAEvent(start=cue.start_ms, end=cue.end_ms,
                                     text=cue.text.replace("\n", r"\N")))  # fmt: skip
    # keep_ssa_tags: text goes out as it came in (HTML and {\an8} tags untouched).
    return subs.to_string("srt", keep_ssa_tags=True) if cues else ""


def timed_to_cues(cues: Sequence[TimedCue]) -> list[Cue]:
    """Parsed cues as :class:`Cue` records (seconds, lines), for the QA report."""
    return [
        Cue(
            index=c.id,
            start=c.start_ms / 1000,
            end=c.end_ms / 1000,
            lines=tuple(c.text.split("\n")),
        )
        for c in cues
    ]
