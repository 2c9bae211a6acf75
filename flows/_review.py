"""The review step the LLM operations share: when the request asks for a reviewer and the
automatic pass flagged cues (or always), the run waits for the answer (:mod:`tasks.review`) and
makes its result again with the reviewer's text in place."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from flows._operation import Job
from mediaflows.models import ReviewCue, ReviewOptions, ReviewRecord
from mediaflows.stages import Stage
from mediaflows.subtitles import review
from tasks.review import wait_for_review

T = TypeVar("T")
Edits = Mapping[str, Mapping[int, str]]


def reviewed(
    job: Job[Any, Any], cues: Sequence[ReviewCue], made: T, again: Callable[[Edits], T]
) -> tuple[T, ReviewRecord | None]:
    """``made`` as it is when no review is wanted (or the reviewer changed nothing), else
    ``again`` with the reviewer's edits (by language, then cue number); and the review's
    record."""
    options: ReviewOptions = job.request
    if not review.needed(options.review, cues):
        return made, None
    poll_s = job.settings.orchestration.review_poll_s
    changed, record = wait_for_review(cues, options, job.title, job.progress, poll_s)
    job.progress.stage(Stage.PROCESSING_RESULT, f"reviewed: {len(changed)} cues changed")
    return (again(review.edits_of(cues, changed)) if changed else made), record
