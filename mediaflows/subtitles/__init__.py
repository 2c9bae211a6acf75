"""Subtitles: readable cues built from speech, the files they are written to and read from, the
readability rules and their QA, and the LLM operations on their text (repair, translation).

* :mod:`.records`: :class:`TimedCue` (the one cue record), :class:`ParsedSrt`,
  :class:`RenderedSubtitles`, and what a viewer reads of a line (:func:`visible_len`).
* :mod:`.cues`: cues from a transcription's word times (:func:`render`).
* :mod:`.qa`: the QA report (cues breaking each rule, reading speed).
* :mod:`.formats`: the table of subtitle formats (SRT, WebVTT, ASS/SSA, TTML, SBV, JSON), each
  read into one cue record and written from it.
* :mod:`.lines`: each language's line rules, and the wrap that keeps them.
* :mod:`.language_checks`: cheap checks that a text is in a language.
* :mod:`.chunks`: cue text through an LLM chunk by chunk, validated (repair and translation).
* :mod:`.repair`: fix_srt's prompt and what a repair may change.
* :mod:`.translation`: translate_srt's prompt, its checks, the translated file and its report.
* :mod:`.review`: a reviewer in the loop: the cues flagged for a person, their answer checked
  and applied (text only, never times).
* :mod:`.windows`: two short cues of one sentence translated as one window (``merge_short``).
"""

from mediaflows.subtitles.chunks import ChunkFix, CueText, SrtChunk, plan_chunks
from mediaflows.subtitles.cues import break_lines, build_cues, render
from mediaflows.subtitles.formats import (
    read_srt,
    read_subtitles,
    to_json,
    write_srt,
    write_subtitles,
)
from mediaflows.subtitles.lines import line_rules, wrap
from mediaflows.subtitles.qa import qa_report
from mediaflows.subtitles.records import (
    MARKUP,
    ParsedSrt,
    ParsedSubtitles,
    RenderedSubtitles,
    SubtitleCue,
    TimedCue,
    visible_len,
)

__all__ = [
    "MARKUP",
    "ChunkFix",
    "CueText",
    "ParsedSrt",
    "ParsedSubtitles",
    "RenderedSubtitles",
    "SrtChunk",
    "SubtitleCue",
    "TimedCue",
    "break_lines",
    "build_cues",
    "line_rules",
    "plan_chunks",
    "qa_report",
    "read_srt",
    "read_subtitles",
    "render",
    "to_json",
    "visible_len",
    "wrap",
    "write_srt",
    "write_subtitles",
]
