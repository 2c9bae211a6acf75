"""Readable subtitle cues from a transcription's word timestamps, rendered with their QA report.

Raw Whisper segments run ~6 s and ~90 characters: too long to read. Cues are rebuilt from the
words: a cue ends at a long pause, before it would overflow its lines or its maximum duration, and
preferably at the end of a sentence or clause. Lines are broken between words (never inside one),
balanced, preferably after punctuation. Cue times are then stretched, never overlapping, so that
each cue stays up long enough to be read (minimum duration, maximum characters per second).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mediaflows.languages import join_words
from mediaflows.models import CueRules
from mediaflows.speech.records import Transcription, Word
from mediaflows.subtitles.formats import srt, to_json
from mediaflows.subtitles.formats import vtt as vtt_format
from mediaflows.subtitles.qa import qa_report
from mediaflows.subtitles.records import RenderedSubtitles, TimedCue, visible_width

#: Part of generate_srt's output ids: bump it when the same words make other cues (v2: each word
#: keeps the spacing the recogniser wrote, full-width characters counted as the style guides do,
#: the language's own line rules when the request's are the defaults).
CUES_VERSION = "cues-v2"

_SENTENCE_END = (".", "?", "!", "…", '."', '?"', '!"', "。", "！", "？", "」")
_CLAUSE_END = (",", ";", ":", "—", "–", "、", "，", "；", "：")
_WEAK_ENDINGS = {"a", "an", "the", "of", "to", "and", "or", "but", "in", "on", "at", "for", "with"}


@dataclass
class _W:
    start: float
    end: float
    text: str  # the word, stripped
    spaced: bool = True  # the recogniser wrote a space before it (Japanese, Chinese: none)
    segment_end: bool = False  # Whisper ended a segment here: often a pause or a sentence

    @property
    def token(self) -> str:
        """The word as written: with its leading space, when it has one."""
        return f" {self.text}" if self.spaced else self.text

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
                Word(start=segment.start + i * step, end=segment.start + (i + 1) * step,
                     text=f" {p}")
                for i, p in enumerate(parts)
            )  # fmt: skip
        for w in seg_words:
            text = w.text.strip()
            if text:
                # A segment's first word follows the previous segment as if spaced: whether a
                # space is shown is join_words' decision (none between Japanese characters).
                spaced = w.text[:1].isspace() or w is seg_words[0]
                words.append(_W(max(w.start, 0.0), max(w.end, w.start), text, spaced))
        if words:
            words[-1].segment_end = True
    return words


def break_lines(words: Sequence[str], rules: CueRules) -> list[str] | None:
    """Lay words out on at most ``rules.max_lines`` balanced lines of ``max_line_chars``, a
    space between two words. Returns None when they do not fit."""
    return _lay_out([f" {w}" for w in words], rules)


def _lay_out(tokens: Sequence[str], rules: CueRules) -> list[str] | None:
    """Lay tokens (words as written, with their leading spaces) out on at most
    ``rules.max_lines`` balanced lines, never breaking inside a token; line lengths as the rules
    count them (:func:`visible_width`). None when they do not fit."""
    text = join_words(tokens)
    if visible_width(text) <= rules.max_line_chars:
        return [text]
    best: tuple[float, list[str]] | None = None
    for lines in _splits(tokens, rules.max_lines):
        lengths = [visible_width(line) for line in lines]
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


def _splits(tokens: Sequence[str], max_lines: int) -> list[list[str]]:
    out: list[list[str]] = []
    n = len(tokens)
    if max_lines < 2:
        return out
    for i in range(1, n):
        first = join_words(tokens[:i])
        out.append([first, join_words(tokens[i:])])
        if max_lines >= 3:
            for j in range(i + 1, n):
                out.append([first, join_words(tokens[i:j]), join_words(tokens[j:])])
    return out


def _fits(words: list[_W], rules: CueRules) -> bool:
    return _lay_out([w.token for w in words], rules) is not None


def build_cues(transcription: Transcription, rules: CueRules | None = None) -> list[TimedCue]:
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


def _timed(groups: list[list[_W]], rules: CueRules) -> list[TimedCue]:
    starts = [g[0].start for g in groups]
    ends = [g[-1].end for g in groups]
    cues: list[TimedCue] = []
    for i, group in enumerate(groups):
        lines = _lay_out([w.token for w in group], rules) or _force_lines(group, rules)
        chars = sum(visible_width(line) for line in lines)
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
        # Braces would read as ASS override blocks; speech never means them so: parentheses.
        text = "\n".join(lines).replace("{", "(").replace("}", ")")
        cues.append(TimedCue(id=i + 1, start_ms=round(start * 1000), end_ms=round(end * 1000),
                             text=text))  # fmt: skip
    return cues


def _force_lines(group: list[_W], rules: CueRules) -> list[str]:
    # A single word longer than a line (a URL): it stands alone, over-long, and QA reports it.
    lines: list[str] = []
    for w in group:
        joined = join_words([lines[-1], w.token]) if lines else ""
        if lines and visible_width(joined) <= rules.max_line_chars:
            lines[-1] = joined
        else:
            lines.append(w.text)
    return lines


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
        srt=srt.write(cues),
        vtt=vtt_format.write(cues) if vtt else None,
        json_text=to_json(transcription, cues) if json_output else None,
        qa=qa_report(cues, rules),
    )
