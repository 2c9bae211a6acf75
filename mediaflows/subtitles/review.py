"""A reviewer in the loop: which cues of a translation or repair need a person, the list they
see, and their answer checked and applied.

A cue is flagged when the automatic pass could not vouch for it: an answer refused (the source
text kept), a chunk that got no valid answer, a cue still read faster than its language's limit
after condensing, a cue over the line rules even re-wrapped, a glossary term not written as
given. The reviewer answers with text only, per cue, or accepts it as it is; times never change.
An answer is checked as an LLM's is, less the language guess (the reviewer is the judge of
that): the markup the source has is kept, the text fits the line rules (re-wrapped if the
reviewer's own line breaks do not), and its reading speed is reported. One bad cue refuses the
whole answer, with every reason, so that nothing is half-applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from mediaflows.errors import ReviewRefusedError
from mediaflows.languages import parse_language
from mediaflows.models import (
    CueRules,
    FixReport,
    ReviewChange,
    ReviewCue,
    ReviewPolicy,
    ReviewRecord,
    TranslationReport,
)
from mediaflows.subtitles.chunks import ChunkFix, damage
from mediaflows.subtitles.formats.srt import srt_time
from mediaflows.subtitles.lines import line_rules, wrap
from mediaflows.subtitles.records import TimedCue, visible_width

#: What a reviewer writes for a cue to keep it as it is (the CLI's edits file, the Python API).
ACCEPT = "accept"
_PROBLEM = re.compile(r"^(?:chunk \d+: )?cue (\d+): (.*?)(?:: (?:left untranslated|kept))?$")


def cue_key(language: str, number: int) -> str:
    """How answers name a cue: ``12`` in a repair, ``de:12`` in a translation."""
    return f"{language}:{number}" if language else str(number)


def field_name(language: str, number: int) -> str:
    """The cue's field in the resume form (a Python name): ``cue_12``, ``de_12``, ``pt_BR_12``."""
    return f"{re.sub(r'[^A-Za-z0-9]', '_', language)}_{number}" if language else f"cue_{number}"


def needed(policy: ReviewPolicy, flagged: Sequence[ReviewCue]) -> bool:
    """Whether a run with these flagged cues waits for a reviewer."""
    return policy == "always" or (policy == "flagged" and bool(flagged))


def _problems(problems: Sequence[str]) -> dict[int, list[str]]:
    """The report's problems by cue number (``chunk 0: cue 12: markup changed: kept`` → 12:
    markup changed)."""
    found: dict[int, list[str]] = {}
    for line in problems:
        match = _PROBLEM.match(line)
        if match:
            found.setdefault(int(match[1]), []).append(match[2])
    return found


def _cps(cue: TimedCue) -> float:
    return round(cue.chars / cue.duration, 1) if cue.duration > 0 else 0.0


def _cue(
    source: TimedCue, current: TimedCue, reasons: Sequence[str], rules: CueRules, language: str
) -> ReviewCue:
    return ReviewCue(
        key=cue_key(language, source.id), field=field_name(language, source.id),
        language=language, number=source.id, start=srt_time(source.start_ms),
        end=srt_time(source.end_ms), duration=source.duration, source=source.text,
        current=current.text, reasons=tuple(reasons), max_lines=rules.max_lines,
        max_line_chars=rules.max_line_chars, max_cps=rules.max_cps,
    )  # fmt: skip


def translation_flags(
    source: Sequence[TimedCue], translated: Sequence[TimedCue], report: TranslationReport
) -> list[ReviewCue]:
    """The cues of one language's translation a reviewer is asked about, in file order, each
    with every reason it was flagged."""
    rules = line_rules(parse_language(report.language))
    said = _problems(report.problems)
    reasons: dict[int, list[str]] = {}
    for number in report.untranslated:
        why = [p for p in said.get(number, []) if "glossary" not in p]
        reasons.setdefault(number, []).append(
            f"left untranslated ({why[0]})"
            if why
            else "left untranslated (its chunk got no valid answer)"
        )
    by_id = {c.id: c for c in translated}
    for number in report.too_fast:
        reasons.setdefault(number, []).append(
            f"read at {_cps(by_id[number]):g} characters a second ({report.language}'s limit "
            f"{rules.max_cps:g})"
        )
    for number in report.unfit:
        cue = by_id[number]
        widest = max(visible_width(line) for line in cue.lines)
        reasons.setdefault(number, []).append(
            f"over the line rules: {len(cue.lines)} lines, the longest {widest:g} characters "
            f"({rules.max_lines} of {rules.max_line_chars})"
        )
    for number, said_here in said.items():
        reasons.setdefault(number, []).extend(p for p in said_here if "glossary" in p)
    return [
        _cue(s, by_id[s.id], reasons[s.id], rules, report.language)
        for s in source if reasons.get(s.id)
    ]  # fmt: skip


def repair_flags(
    source: Sequence[TimedCue],
    fixes: Sequence[ChunkFix],
    report: FixReport,
    rules: CueRules,
) -> list[ReviewCue]:
    """The cues of a repair a reviewer is asked about: those whose answer was refused, and
    those of chunks that got no valid answer (both kept their text)."""
    said = _problems(report.problems)
    reasons: dict[int, list[str]] = {}
    for number in report.rejected_cues:
        why = said.get(number) or ["the answer was refused"]
        reasons.setdefault(number, []).append(f"kept as it was ({why[0]})")
    for fix in fixes:
        if fix.fallback:
            for text in fix.texts:
                reasons.setdefault(text.id, []).append(
                    "kept as it was (its chunk got no valid answer)"
                )
    return [_cue(c, c, reasons[c.id], rules, "") for c in source if reasons.get(c.id)]


def _fits(lines: Sequence[str], cue: ReviewCue) -> bool:
    return len(lines) <= cue.max_lines and all(
        visible_width(line) <= cue.max_line_chars for line in lines
    )


def fit_answer(cue: ReviewCue, answer: str) -> str:
    """The text a reviewer's answer for ``cue`` becomes: their line breaks when the lines keep
    the rules, else the text re-wrapped to them. :class:`ReviewRefusedError` (one line, the
    cue named) when it is empty, changes the source's markup, or cannot fit."""
    text = answer.replace("\r\n", "\n").strip()
    if not text:
        raise ReviewRefusedError(f"cue {cue.key}: empty; write its text or {ACCEPT!r} it")
    problem = damage(cue.source, text)
    if problem is not None:
        raise ReviewRefusedError(
            f"cue {cue.key}: {problem}: keep the markup of the source ({cue.source!r})"
        )
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if _fits(lines, cue):
        return "\n".join(lines)
    rules = CueRules(
        max_line_chars=cue.max_line_chars, max_lines=cue.max_lines, max_cps=cue.max_cps
    )
    speakers = len(lines) > 1 and all(line.startswith("-") for line in lines)
    wrapped = text if speakers else wrap(" ".join(lines), parse_language(cue.language or "en"),
                                         rules=rules)  # fmt: skip
    if not speakers and _fits(wrapped.split("\n"), cue):
        return wrapped
    widest = max(visible_width(line) for line in wrapped.split("\n"))
    raise ReviewRefusedError(
        f"cue {cue.key}: does not fit {cue.max_lines} lines of {cue.max_line_chars} characters "
        f"({len(wrapped.splitlines())} lines, the longest {widest:g}); shorten it"
    )


def check_answer(cues: Sequence[ReviewCue], answers: Mapping[str, str | None]) -> dict[str, str]:
    """The new text of each cue the reviewer changed (by key), fitted to its rules. ``None``,
    :data:`ACCEPT` or the current text accept a cue; a cue not named is accepted. Refused
    whole (:class:`ReviewRefusedError`, every reason) when a key was not asked about or any
    text breaks the rules."""
    by_key = {c.key: c for c in cues}
    unknown = [k for k in answers if k not in by_key]
    if unknown:
        asked = ", ".join(by_key) or "none"
        raise ReviewRefusedError(
            f"cue {', '.join(unknown)} was not flagged for review in this run (flagged: {asked})"
        )
    changed: dict[str, str] = {}
    reasons: list[str] = []
    for key, answer in answers.items():
        cue = by_key[key]
        if answer is None or answer.strip() in (ACCEPT, cue.current.strip()):
            continue
        try:
            text = fit_answer(cue, answer)
        except ReviewRefusedError as exc:
            reasons.append(str(exc))
            continue
        if text != cue.current:
            changed[key] = text
    if reasons:
        raise ReviewRefusedError("; ".join(reasons))
    return changed


def record(
    cues: Sequence[ReviewCue],
    changed: Mapping[str, str],
    reviewer: str = "",
    answered_at: datetime | None = None,
    timed_out: bool = False,
    refused: int = 0,
) -> ReviewRecord:
    """What the output's details say about the review."""
    changes = []
    for cue in cues:
        if cue.key in changed:
            after = changed[cue.key]
            chars = sum(visible_width(line) for line in after.split("\n"))
            cps = round(chars / cue.duration, 1) if cue.duration > 0 else 0.0
            changes.append(ReviewChange(key=cue.key, language=cue.language, number=cue.number,
                                        before=cue.current, after=after, cps=cps))  # fmt: skip
    return ReviewRecord(
        reviewer=reviewer, answered_at=answered_at, timed_out=timed_out,
        flagged=tuple(c.key for c in cues), changed=tuple(changes),
        accepted=tuple(c.key for c in cues if c.key not in changed),
        too_fast=tuple(
            c.key for c in changes
            if c.cps > next(q.max_cps for q in cues if q.key == c.key) + 1e-6
        ),
        refused=refused,
    )  # fmt: skip


def edits_of(cues: Sequence[ReviewCue], changed: Mapping[str, str]) -> dict[str, dict[int, str]]:
    """The changed texts by language, then cue number (``""``: a repair)."""
    edits: dict[str, dict[int, str]] = {}
    for cue in cues:
        if cue.key in changed:
            edits.setdefault(cue.language, {})[cue.number] = changed[cue.key]
    return edits


def reviewed_fixes(fixes: Sequence[ChunkFix], edits: Mapping[int, str]) -> list[ChunkFix]:
    """The chunks' answers with the reviewer's text in place: an edited cue is no longer one
    that kept its source text; the other cues of a chunk that fell back still are."""
    if not edits:
        return list(fixes)
    reviewed = []
    for fix in fixes:
        ids = [t.id for t in fix.texts]
        if not any(i in edits for i in ids):
            reviewed.append(fix)
            continue
        texts = tuple(t.model_copy(update={"text": edits.get(t.id, t.text)}) for t in fix.texts)
        left = set(ids) if fix.fallback else set(fix.rejected)
        rejected = tuple(i for i in ids if i in left and i not in edits)
        reviewed.append(fix.model_copy(update={"texts": texts, "rejected": rejected,
                                               "fallback": False}))  # fmt: skip
    return reviewed


def markdown(cues: Sequence[ReviewCue], title: str, note: str = "") -> str:
    """The flagged cues as the reviewer reads them (the run's review artifact and the resume
    form's description): number, time, source, current text, why, the limits."""
    out = [f"# Review: {title}", ""]
    if note:
        out += [note, ""]
    if not cues:
        out += ["No cue is flagged: resume to deliver the file as it is.", ""]
    for cue in cues:
        where = f"{cue.language} " if cue.language else ""
        out += [
            f"## {where}cue {cue.number} · {cue.start} → {cue.end} ({cue.duration:g} s)",
            "",
            f"- **field:** `{cue.field}` · **limits:** {cue.max_lines} lines of "
            f"{cue.max_line_chars} characters, {cue.max_cps:g} characters a second",
            f"- **why:** {'; '.join(cue.reasons) or 'asked for (review: always)'}",
            f"- **source:** {_quoted(cue.source)}",
            f"- **current:** {_quoted(cue.current)}",
            "",
        ]
    return "\n".join(out)


def _quoted(text: str) -> str:
    return " / ".join(line.replace("|", "\\|") for line in text.split("\n")) or "(empty)"
