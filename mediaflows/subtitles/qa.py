"""The QA report of subtitles: how many cues break each readability rule, and reading speed."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mediaflows.models import CueRules, QAReport
from mediaflows.subtitles.records import TimedCue, visible_width


def qa_report(cues: Sequence[TimedCue], rules: CueRules | None = None) -> QAReport:
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
            "line_length": any(visible_width(line) > rules.max_line_chars for line in cue.lines),
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
    widest = max((visible_width(line) for c in cues for line in c.lines), default=0.0)
    return QAReport(
        cues=len(cues),
        violations={rule: len(idx) for rule, idx in checks.items()},
        mean_cps=round(sum(speeds) / len(speeds), 2) if speeds else 0.0,
        max_cps=round(max(speeds), 2) if speeds else 0.0,
        max_line_chars=math.ceil(widest),
        examples={rule: idx[:5] for rule, idx in checks.items() if idx},
    )
