"""WebVTT (``.vtt``): cue settings, voices and the ``Language:`` header, which pysubs2 does not
keep, so both ways are written here."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from mediaflows.subtitles.formats.common import (
    FOREIGN_MARKUP,
    blank_lines,
    keep_blank_lines,
    tagged,
    unplaced,
)
from mediaflows.subtitles.records import TimedCue

_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2})[.,](\d{1,3})")
_TIMING = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)(.*)$")
#: Markup WebVTT shares with SRT (kept); any other tag (<c.yellow>, <00:01.000>) is dropped.
_KEPT_TAG = re.compile(r"<(/?)([ibu])(?:\.[^\s>]*)?(?:\s[^>]*)?>", re.IGNORECASE)
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]*)>")
_ANY_TAG = re.compile(r"<[^<>]*>")
_WRITTEN_TAG = re.compile(r"</?(?:i|b|u)>", re.IGNORECASE)


def _ms(stamp: str) -> int | None:
    m = _TIME.fullmatch(stamp)
    if m is None:
        return None
    h, mm, s, frac = m.groups()
    return ((int(h or 0) * 60 + int(mm)) * 60 + int(s)) * 1000 + int(frac.ljust(3, "0"))


def _stamp(ms: int) -> str:
    return f"{ms // 3_600_000:02}:{ms // 60_000 % 60:02}:{ms // 1000 % 60:02}.{ms % 1000:03}"


# ---- positions as cue settings -----------------------------------------------------------------


def settings_for(position: int | None) -> str:
    """The cue settings that place a cue at a numeric-keypad ``position``."""
    if position is None:
        return ""
    row = ("", "line:50%,center", "line:0")[(position - 1) // 3]
    column = ("align:start", "", "align:end")[(position - 1) % 3]
    return " ".join(s for s in (row, column) if s)


def position_for(settings: str) -> int | None:
    """The numeric-keypad position cue ``settings`` put a cue at (None: bottom centre)."""
    if not settings:
        return None
    values = dict(s.split(":", 1) for s in settings.split() if ":" in s)
    row = 0
    line = values.get("line", "").split(",")[0]
    if line.endswith("%"):
        try:
            share = float(line[:-1])
        except ValueError:
            share = 100.0
        row = 2 if share < 40 else 1 if share <= 60 else 0
    elif line.lstrip("-").isdigit():
        row = 2 if int(line) >= 0 else 0  # lines count from the top, negative ones from below
    align = values.get("align", "")
    column = 0 if align in ("start", "left") else 2 if align in ("end", "right") else 1
    position = row * 3 + column + 1
    return None if position == 2 else position


# ---- reading -----------------------------------------------------------------------------------


def _cue_text(lines: list[str]) -> tuple[str, str]:
    """A WebVTT cue's text as the record keeps it (<i>, <b>, <u> kept, entities read) and its
    speaker (the first ``<v Name>``)."""
    text = "\n".join(lines)
    if "<" not in text and "&" not in text:
        return blank_lines(text), ""
    voice = _VOICE.search(text)
    text = _KEPT_TAG.sub(lambda m: f"<{m.group(1)}{m.group(2).lower()}>", text)
    text = _ANY_TAG.sub(lambda m: m.group(0) if _WRITTEN_TAG.fullmatch(m.group(0)) else "", text)
    return blank_lines(html.unescape(text)), voice.group(1).strip() if voice else ""


def read(text: str, name: str = "subtitles.vtt") -> list[TimedCue]:
    """The cues of WebVTT ``text`` (LF line ends): the header, NOTE, STYLE and REGION blocks
    skipped; cue settings kept (their position read); cues with broken times left out."""
    cues: list[TimedCue] = []
    blocks = re.split(r"\n(?:[ \t]*\n)+", text.lstrip("\ufeff").strip("\n"))
    for block in blocks[1:] if blocks[0].lstrip().startswith("WEBVTT") else blocks:
        lines = block.strip("\n").split("\n")
        at = 0 if "-->" in lines[0] else 1
        if at >= len(lines) or lines[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        timing = _TIMING.match(lines[at])
        if timing is None:
            continue
        start, end = _ms(timing.group(1)), _ms(timing.group(2))
        if start is None or end is None:
            continue
        settings = " ".join(timing.group(3).split())
        position = position_for(settings)
        body, speaker = _cue_text(lines[at + 1 :])
        cues.append(TimedCue(
            id=len(cues) + 1, start_ms=start, end_ms=end, text=tagged(body, position),
            position=position,
            settings="" if settings == settings_for(position) else settings, speaker=speaker,
        ))  # fmt: skip
    return cues


def language_of(text: str) -> str | None:
    """The ``Language:`` of a WebVTT header (None: none)."""
    header = text.lstrip("\ufeff").split("\n\n", 1)[0]
    m = re.search(r"^Language:[ \t]*(\S+)[ \t]*$", header, re.MULTILINE)
    return m.group(1) if m else None


# ---- writing -----------------------------------------------------------------------------------


def _vtt_text(text: str) -> str:
    """A cue's text as WebVTT cue text: <i>, <b>, <u> kept, other tags and ASS blocks dropped,
    ``&`` and stray ``<`` escaped, no ``-->`` inside, empty inner lines kept as a no-break
    space."""
    if not any(c in text for c in "<>&{\n") and "-->" not in text:
        return text.strip()
    kept: list[str] = []

    def hold(m: re.Match[str]) -> str:
        kept.append(m.group(0).lower())
        return f"\x00{len(kept) - 1}\x00"

    text = FOREIGN_MARKUP.sub(lambda m: hold(m) if _WRITTEN_TAG.fullmatch(m.group(0)) else "", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)
    lines = [line.strip().replace("-->", "→") for line in text.split("\n")]
    return keep_blank_lines("\n".join(lines).strip("\n"))


def write(cues: Sequence[TimedCue], language: str | None = None) -> str:
    """WebVTT of ``cues``, times exactly as given, with the language in the header when given
    (``Language: de``, as web players and YouTube read it). A cue's position becomes cue
    settings (``{\\an8}``: ``line:0``) unless it has settings of its own; its speaker a
    ``<v>`` voice; a cue left with no text is not written."""
    blocks = [f"WEBVTT\nLanguage: {language}\n" if language else "WEBVTT\n"]
    for n, cue in enumerate(cues, 1):
        bare, position = unplaced(cue)
        text = _vtt_text(bare)
        if not text.strip():
            continue
        if cue.speaker:
            text = f"<v {cue.speaker}>{text}"
        where = cue.settings or settings_for(position)
        blocks.append(
            f"{n}\n{_stamp(cue.start_ms)} --> {_stamp(cue.end_ms)}"
            f"{' ' + where if where else ''}\n{text}\n"
        )
    return "\n".join(blocks)


def language_vtt(cues: Sequence[TimedCue], language: str) -> str:
    """WebVTT of an SRT's cues with the language in the header (see :func:`write`)."""
    return write(cues, language)
