"""What every format shares: decoding a file's bytes, the position tag, blank lines inside a
cue."""

from __future__ import annotations

import codecs
import re

import charset_normalizer
from charset_normalizer.md import mess_ratio

from mediaflows.errors import InputError
from mediaflows.subtitles.records import TimedCue

#: Subtitle files larger than this are refused (a feature film has ~200 kB of subtitles).
MAX_SRT_BYTES = 20 * 1024 * 1024

BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))  # fmt: skip


def decode_text(data: bytes, name: str = "subtitles") -> tuple[str, str]:
    """Text and encoding of a subtitle file: a BOM decides, then UTF-8, else detection.

    Legacy files (Windows-1252, Latin-1, Cyrillic code pages) are common among downloaded
    subtitles; charset-normalizer guesses their code page from the bytes.
    """
    for bom, encoding in BOMS:
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


# ---- markup ----------------------------------------------------------------------------------

#: Markup a format may not have, dropped by its writer: HTML-like tags SRT and WebVTT files carry
#: (<font>, <c.yellow>, <v Mary>, <00:01.500>) and ASS override blocks. Other text between angle
#: brackets (``<LAUGHING>``, as a broadcaster's caption may read) is text, and stays.
FOREIGN_MARKUP = re.compile(
    r"</?(?:[ibus]|font|c|v|lang|ruby|rt|span)(?=[\s.>])[^<>]*>|<(?:\d+:)?\d{2}:\d{2}\.\d{3}>"
    r"|\{\\[^{}]*\}",
    re.IGNORECASE,
)


# ---- positions -------------------------------------------------------------------------------

#: A position tag at the start of a cue's text, as SRT and ASS write it (``{\an8}``: top centre).
LEADING_POSITION = re.compile(r"^\{\\an([1-9])\}")
ANY_POSITION = re.compile(r"\{\\an([1-9])\}")
#: The tag a text opens with, after any white space an edit left before it.
_STRAY_POSITION = re.compile(r"^\s*\{\\an[1-9]\}")


def position_of(text: str) -> int | None:
    """The numeric-keypad position a cue's text opens with (``{\\an8}`` → 8), None if none."""
    m = LEADING_POSITION.match(text)
    return int(m.group(1)) if m else None


def tagged(text: str, position: int | None) -> str:
    """``text`` opening with the tag of ``position``, as every reader gives a placed cue's text
    (so the text an LLM edits shows the position, and a check that tags are kept covers it)."""
    if position is None or LEADING_POSITION.match(text):
        return text
    return f"{{\\an{position}}}{text}"


def placed(cue: TimedCue) -> str:
    """A cue's text with its position as the tag SRT and ASS put first: the record's position
    wins over a tag the text may have lost or changed (a repair or a translation)."""
    if cue.position is None:
        return cue.text
    return f"{{\\an{cue.position}}}" + _STRAY_POSITION.sub("", cue.text)


def unplaced(cue: TimedCue) -> tuple[str, int | None]:
    """A cue's text without a leading position tag, and its position (the record's, else the
    first tag anywhere in the text), for formats that say where a cue goes outside its text."""
    m = ANY_POSITION.search(cue.text)
    position = cue.position or (int(m.group(1)) if m else None)
    return LEADING_POSITION.sub("", cue.text), position


# ---- blank lines inside a cue ----------------------------------------------------------------

#: In SRT, WebVTT and SBV an empty line ends a cue; an empty line inside one is written as a
#: line holding a no-break space (invisible, and no reader takes it for the end of the cue).
BLANK = "\u00a0"


def keep_blank_lines(text: str) -> str:
    """``text`` with its empty inner lines written as :data:`BLANK` and no empty line at the
    start or end."""
    if "\n\n" not in text and not text.endswith("\n") and not text.startswith("\n"):
        return text
    return "\n".join(line or BLANK for line in text.strip("\n").split("\n"))


def blank_lines(text: str) -> str:
    """``text`` as read: lines holding only white space (:data:`BLANK`) made empty."""
    if BLANK not in text:
        return text
    return "\n".join("" if not line.strip() else line for line in text.split("\n"))
