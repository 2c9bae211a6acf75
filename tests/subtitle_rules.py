"""Checks every cue of an SRT against the cue rules, parsing it with the `srt` library."""

from __future__ import annotations

import srt

from mediaflows.models import CueRules


def parse(content: str) -> list[srt.Subtitle]:
    return list(srt.parse(content))


def rule_violations(content: str, rules: CueRules | None = None) -> list[str]:
    """Every broken rule, as 'cue N: what' lines (empty when all cues are fine)."""
    rules = rules or CueRules()
    subs = parse(content)
    problems = []
    for i, sub in enumerate(subs):
        lines = sub.content.split("\n")
        duration = (sub.end - sub.start).total_seconds()
        chars = sum(len(line) for line in lines)
        if any(len(line) > rules.max_line_chars for line in lines):
            problems.append(f"cue {sub.index}: line over {rules.max_line_chars} chars {lines}")
        if len(lines) > rules.max_lines:
            problems.append(f"cue {sub.index}: {len(lines)} lines")
        if not (rules.min_duration - 0.001 <= duration <= rules.max_duration + 0.001):
            problems.append(f"cue {sub.index}: duration {duration:.3f}")
        if duration > 0 and chars / duration > rules.max_cps + 0.01:
            problems.append(f"cue {sub.index}: {chars / duration:.1f} cps")
        if i and sub.start < subs[i - 1].end:
            problems.append(f"cue {sub.index}: overlaps the previous cue")
        if not sub.content.strip():
            problems.append(f"cue {sub.index}: empty")
    return problems


def words(content: str) -> list[str]:
    return [w for sub in parse(content) for w in sub.content.split()]
