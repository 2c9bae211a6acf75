"""The records of the subtitles package: the one cue record, of a transcript's cues and of a
subtitle file's in any format (:class:`TimedCue`), a file as read (:class:`ParsedSrt`), and
subtitles rendered in their formats with their QA report (:class:`RenderedSubtitles`). They
import nothing else of the package."""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, ConfigDict, Field

from mediaflows.languages import is_cjk
from mediaflows.models import QAReport

#: Markup a viewer does not read: HTML-like tags (<i>, </font>) and ASS override blocks ({\an8}).
MARKUP = re.compile(r"<[^<>]*>|\{\\[^{}]*\}")


def visible_len(line: str) -> int:
    """A line's length as a viewer sees it (markup not counted), in characters."""
    return len(MARKUP.sub("", line))


def visible_width(line: str) -> float:
    """A line's length as the subtitle rules count it (line length, reading speed): markup not
    counted, and in a line written in Chinese or Japanese characters a half-width character
    (Latin, a digit, a space) counts half, as the style guides count full-width characters
    (Netflix's: 13 full-width characters a line for Japanese, 16 for Chinese)."""
    text = MARKUP.sub("", line)
    if not any(is_cjk(ch) and unicodedata.east_asian_width(ch) in "FW" for ch in text):
        return float(len(text))  # Latin, Cyrillic, Thai, Korean …: every character counts one
    return sum(1.0 if unicodedata.east_asian_width(ch) in "FW" else 0.5 for ch in text)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TimedCue(_Record):
    """A cue of a subtitle file as read: its number, times in milliseconds as in the file, and
    its text (lines joined with ``\\n``, inline markup kept: ``<i>``, ``<b>``, ``<u>``, ``<s>``,
    ``<font>``, ASS override blocks). Where the file placed it and who speaks are kept beside
    the text, so that a writer puts them back whatever became of the text."""

    id: int = Field(ge=1)
    start_ms: int
    end_ms: int
    text: str
    position: int | None = Field(
        default=None, ge=1, le=9,
        description="Where the cue sits on screen, as a numeric keypad (``{\\an8}``: top "
        "centre); None: the player's default (bottom centre).",
    )  # fmt: skip
    settings: str = Field(
        default="", description="WebVTT cue settings the position does not say, as written."
    )
    speaker: str = Field(default="", description="Who speaks (ASS Name, WebVTT voice).")
    style: str = Field(default="", description="The ASS style the cue uses (empty: Default).")

    # As the rules and the QA report read a cue: seconds, lines, characters a viewer reads.
    @property
    def index(self) -> int:
        return self.id

    @property
    def start(self) -> float:
        return self.start_ms / 1000

    @property
    def end(self) -> float:
        return self.end_ms / 1000

    @property
    def duration(self) -> float:
        return (self.end_ms - self.start_ms) / 1000

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(self.text.split("\n"))

    @property
    def chars(self) -> float:
        """Characters a viewer reads, as the rules count them (line breaks and markup not
        counted; see :func:`visible_width`)."""
        return sum(visible_width(line) for line in self.lines)


#: The one cue record of subtitle files, whatever their format.
SubtitleCue = TimedCue


class RenderedSubtitles(_Record):
    """Cues in every requested format, with their QA report."""

    cues: tuple[TimedCue, ...]
    srt: str
    vtt: str | None = None
    json_text: str | None = None
    qa: QAReport


class ParsedSrt(_Record):
    """A subtitle file as read: its cues in file order, its format and the encoding it was
    written in."""

    cues: tuple[TimedCue, ...]
    encoding: str
    format: str = Field(default="srt", description="Its format's name (``srt``, ``vtt`` …).")
    language: str | None = Field(
        default=None, description="The language the file says it is in (WebVTT's Language: "
        "header, TTML's xml:lang, ASS's Script Info), as written; None where it says none."
    )  # fmt: skip
    bom: bool = Field(default=False, description="The file began with a byte-order mark.")
    crlf: bool = Field(default=False, description="Its lines ended CR LF (Windows).")

    def conventions(self, srt: str) -> str:
        """``srt`` (LF line ends, no BOM) written the way this file was: its BOM and CR LF line
        ends back (players and editors on Windows expect them)."""
        if self.crlf:
            srt = srt.replace("\n", "\r\n")
        return "\ufeff" + srt if self.bom else srt


#: A subtitle file of any format as read (the record is the same as for SRT).
ParsedSubtitles = ParsedSrt
