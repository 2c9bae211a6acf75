"""The records of the subtitles package: a cue as a viewer sees it (:class:`Cue`), a cue of an SRT
file as read (:class:`TimedCue`, :class:`ParsedSrt`), and subtitles rendered in their formats
with their QA report (:class:`RenderedSubtitles`). They import nothing else of the package."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from mediaflows.models import QAReport

#: Markup a viewer does not read: HTML-like tags (<i>, </font>) and ASS override blocks ({\an8}).
MARKUP = re.compile(r"<[^<>]*>|\{\\[^{}]*\}")


def visible_len(line: str) -> int:
    """A line's length as a viewer sees it (markup not counted)."""
    return len(MARKUP.sub("", line))


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cue(_Record):
    """One subtitle: times in seconds and up to ``max_lines`` lines."""

    index: int
    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def chars(self) -> int:
        """Characters a viewer reads (line breaks and markup not counted)."""
        return sum(visible_len(line) for line in self.lines)

    @property
    def duration(self) -> float:
        return self.end - self.start


class RenderedSubtitles(_Record):
    """Cues in every requested format, with their QA report."""

    cues: tuple[Cue, ...]
    srt: str
    vtt: str | None = None
    json_text: str | None = None
    qa: QAReport


class TimedCue(_Record):
    """A cue of a parsed SRT: its number, times in milliseconds as in the file, and raw text
    (tags kept, lines joined with ``\\n``)."""

    id: int = Field(ge=1)
    start_ms: int
    end_ms: int
    text: str


class ParsedSrt(_Record):
    """An SRT file as read: its cues in file order and the encoding it was written in."""

    cues: tuple[TimedCue, ...]
    encoding: str
    bom: bool = Field(default=False, description="The file began with a byte-order mark.")
    crlf: bool = Field(default=False, description="Its lines ended CR LF (Windows).")

    def conventions(self, srt: str) -> str:
        """``srt`` (LF line ends, no BOM) written the way this file was: its BOM and CR LF line
        ends back (players and editors on Windows expect them)."""
        if self.crlf:
            srt = srt.replace("\n", "\r\n")
        return "\ufeff" + srt if self.bom else srt
