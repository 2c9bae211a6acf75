"""Subtitle cues from word timestamps, SRT/WebVTT/JSON output, and a QA report.

Raw Whisper segments run ~6 s and ~90 characters: too long to read. Cues are rebuilt from the
words: a cue ends at a long pause, before it would overflow its lines or its maximum duration, and
preferably at the end of a sentence or clause. Lines are broken between words (never inside one),
balanced, preferably after punctuation. Cue times are then stretched, never overlapping, so that
each cue stays up long enough to be read (minimum duration, maximum characters per second).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import charset_normalizer
import pysubs2
from charset_normalizer.md import mess_ratio
from pydantic import BaseModel, ConfigDict, Field

from mediaflows.errors import InputError
from mediaflows.models import CueRules, QAReport
from mediaflows.whisper import Transcription, Word

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


#: SRT files larger than this are refused (a feature film has ~200 kB of subtitles).
MAX_SRT_BYTES = 20 * 1024 * 1024

_SENTENCE_END = (".", "?", "!", "…", '."', '?"', '!"')
_CLAUSE_END = (",", ";", ":", "—", "–")
_WEAK_ENDINGS = {"a", "an", "the", "of", "to", "and", "or", "but", "in", "on", "at", "for", "with"}


@dataclass
class _W:
    start: float
    end: float
    text: str
    segment_end: bool = False  # Whisper ended a segment here: often a pause or a sentence

    @property
    def sentence_end(self) -> bool:
        return self.text.endswith(_SENTENCE_END)

    @property
    def clause_end(self) -> bool:
        return self.text.endswith(_CLAUSE_END)


def _words(transcription: Transcription) -> list[_W]:
    words: list[_W] = []
    for segment in transcription.segments:
        seg_words: tuple[Word, ...] = segment.words
        if not seg_words and segment.text:
            # No word timestamps: spread the segment's words evenly over it.
            parts = segment.text.split()
            step = (segment.end - segment.start) / max(len(parts), 1)
            seg_words = tuple(
                Word(start=segment.start + i * step, end=segment.start + (i + 1) * step, text=p)
                for i, p in enumerate(parts)
            )
        for w in seg_words:
            text = w.text.strip()
            if text:
                words.append(_W(max(w.start, 0.0), max(w.end, w.start), text))
        if words:
            words[-1].segment_end = True
    return words


def break_lines(words: list[str], rules: CueRules) -> list[str] | None:
    """Lay words out on at most ``rules.max_lines`` balanced lines of ``max_line_chars``.

    Returns None when they do not fit.
    """
    text = " ".join(words)
    if len(text) <= rules.max_line_chars:
        return [text]
    best: tuple[float, list[str]] | None = None
    for lines in _splits(words, rules.max_lines):
        lengths = [len(line) for line in lines]
        if max(lengths) > rules.max_line_chars:
            continue
        score = float(max(lengths) - min(lengths))
        for line in lines[:-1]:
            if line.endswith(_SENTENCE_END + _CLAUSE_END):
                score -= 10  # break after punctuation when it costs little balance
            if line.rsplit(" ", 1)[-1].lower() in _WEAK_ENDINGS:
                score += 8  # not "the / cat"
        score += 10 * (len(lines) - 2)  # prefer fewer lines
        if best is None or score < best[0]:
            best = (score, lines)
    return best[1] if best else None


def _splits(words: list[str], max_lines: int) -> list[list[str]]:
    out: list[list[str]] = []
    n = len(words)
    if max_lines < 2:
        return out
    for i in range(1, n):
        first = " ".join(words[:i])
        out.append([first, " ".join(words[i:])])
        if max_lines >= 3:
            for j in range(i + 1, n):
                out.append([first, " ".join(words[i:j]), " ".join(words[j:])])
    return out


def _fits(words: list[_W], rules: CueRules) -> bool:
    return break_lines([w.text for w in words], rules) is not None


def build_cues(transcription: Transcription, rules: CueRules | None = None) -> list[Cue]:
    """Readable cues from a transcription's words, following ``rules``."""
    rules = rules or CueRules()
    groups: list[list[_W]] = []
    current: list[_W] = []
    for word in _words(transcription):
        if current and word.start - current[-1].end >= rules.pause_split:
            groups.append(current)  # a pause ends the cue where it is
            current = []
        elif current and _overflows(current, word, rules):
            keep, carry = _better_split(current, rules)
            groups.append(keep)
            current = carry
            # The carried-over words may still not take the new word.
            if current and _overflows(current, word, rules):
                groups.append(current)
                current = []
        current.append(word)
        if current[-1].sentence_end and current[-1].end - current[0].start >= rules.min_duration:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return _timed([g for g in groups if g], rules)


def _overflows(current: list[_W], word: _W, rules: CueRules) -> bool:
    if word.end - current[0].start > rules.max_duration:
        return True
    return not _fits([*current, word], rules)


def _better_split(words: list[_W], rules: CueRules) -> tuple[list[_W], list[_W]]:
    """Where to end an overflowing cue: at the best break among its words.

    A break scores for the pause after it, for punctuation or a Whisper segment end, and for
    coming late (full cues); it loses for a dangling article or conjunction ("the / cat") and for
    leaving a very short cue behind.
    """
    n = len(words)
    best_i, best_score = n, 0.5  # ending after the last word: the plain overflow break
    for i in range(1, n):
        before, after = words[i - 1], words[i]
        gap = max(after.start - before.end, 0.0)
        score = 2.0 * min(gap, 1.0) + 1.0 * i / n
        if before.sentence_end:
            score += 1.5
        elif before.clause_end or before.segment_end:
            score += 1.0
        if before.text.lower().strip(".,") in _WEAK_ENDINGS:
            score -= 1.0
        if before.end - words[0].start < 1.5:
            score -= 1.0
        if score > best_score:
            best_i, best_score = i, score
    return words[:best_i], words[best_i:]


def _timed(groups: list[list[_W]], rules: CueRules) -> list[Cue]:
    starts = [g[0].start for g in groups]
    ends = [g[-1].end for g in groups]
    cues: list[Cue] = []
    for i, group in enumerate(groups):
        lines = break_lines([w.text for w in group], rules) or _force_lines(group, rules)
        chars = sum(len(line) for line in lines)
        start, end = starts[i], ends[i]
        if i > 0:
            start = max(start, cues[-1].end + rules.min_gap)
        need = min(max(rules.min_duration, chars / rules.max_cps), rules.max_duration)
        limit = starts[i + 1] - rules.min_gap if i + 1 < len(groups) else end + need
        if end - start < need:
            end = min(start + need, max(limit, end))
        if end - start < need and i > 0:
            # Still short: start a little earlier, into the silence before (at most 0.5 s).
            earliest = max(cues[-1].end + rules.min_gap, start - 0.5)
            start = max(earliest, end - need)
        end = max(end, start + 0.001)
        cues.append(Cue(index=i + 1, start=round(start, 3), end=round(end, 3), lines=tuple(lines)))
    return cues


def _force_lines(group: list[_W], rules: CueRules) -> list[str]:
    # A single word longer than a line (a URL): it stands alone, over-long, and QA reports it.
    lines: list[str] = []
    for w in group:
        if lines and len(lines[-1]) + 1 + len(w.text) <= rules.max_line_chars:
            lines[-1] += " " + w.text
        else:
            lines.append(w.text)
    return lines


def qa_report(cues: list[Cue], rules: CueRules | None = None) -> QAReport:
    """Count the cues that break each rule."""
    rules = rules or CueRules()
    checks: dict[str, list[int]] = {
        "line_length": [], "line_count": [], "reading_speed": [], "min_duration": [],
        "max_duration": [], "overlap": [], "empty": [],
    }  # fmt: skip
    speeds: list[float] = []
    for i, cue in enumerate(cues):
        cps = cue.chars / cue.duration if cue.duration > 0 else float("inf")
        speeds.append(cps)
        failed = {
            "line_length": any(visible_len(line) > rules.max_line_chars for line in cue.lines),
            "line_count": len(cue.lines) > rules.max_lines,
            "reading_speed": cps > rules.max_cps + 1e-6,
            "min_duration": cue.duration < rules.min_duration - 1e-6,
            "max_duration": cue.duration > rules.max_duration + 1e-6,
            "overlap": i > 0 and cue.start < cues[i - 1].end,
            "empty": not cue.text.strip(),
        }
        for rule, bad in failed.items():
            if bad:
                checks[rule].append(cue.index)
    return QAReport(
        cues=len(cues),
        violations={rule: len(idx) for rule, idx in checks.items()},
        mean_cps=round(sum(speeds) / len(speeds), 2) if speeds else 0.0,
        max_cps=round(max(speeds), 2) if speeds else 0.0,
        max_line_chars=max((visible_len(line) for c in cues for line in c.lines), default=0),
        examples={rule: idx[:5] for rule, idx in checks.items() if idx},
    )


def _ssa(cues: list[Cue]) -> pysubs2.SSAFile:
    subs = pysubs2.SSAFile()
    for cue in cues:
        # Braces would read as ASS override tags; the transcript never means them as such.
        text = r"\N".join(line.replace("{", "(").replace("}", ")") for line in cue.lines)
        subs.append(
            pysubs2.SSAEvent(start=round(cue.start * 1000), end=round(cue.end * 1000), text=text)
        )
    return subs


def to_srt(cues: list[Cue]) -> str:
    """SubRip text (written by pysubs2)."""
    return _ssa(cues).to_string("srt") if cues else ""


def to_vtt(cues: list[Cue]) -> str:
    """WebVTT text (written by pysubs2)."""
    return _ssa(cues).to_string("vtt") if cues else "WEBVTT\n\n"


def to_json(transcription: Transcription, cues: list[Cue] | None = None) -> str:
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


def render(
    transcription: Transcription,
    rules: CueRules | None = None,
    vtt: bool = False,
    json_output: bool = False,
) -> RenderedSubtitles:
    """Cues, SRT (always), WebVTT and JSON (on request) and the QA report of a transcription."""
    rules = rules or CueRules()
    cues = build_cues(transcription, rules)
    return RenderedSubtitles(
        cues=tuple(cues),
        srt=to_srt(cues),
        vtt=to_vtt(cues) if vtt else None,
        json_text=to_json(transcription, cues) if json_output else None,
        qa=qa_report(cues, rules),
    )


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
