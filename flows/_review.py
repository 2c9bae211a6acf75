"""The review step the LLM operations share: when the request asks for a reviewer and the
automatic pass flagged cues (or always), the run waits for the answer (:mod:`tasks.review`) and
makes its result again with the reviewer's text in place."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from flows._operation import Job
from flows._requests import key_text
from mediaflows.models import ReviewCue, ReviewOptions, ReviewRecord
from mediaflows.stages import Stage
from mediaflows.subtitles import review
from mediaflows.subtitles.chunks import ChunkFix
from tasks.review import kept_chunks, wait_for_review

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
Edits = Mapping[str, Mapping[int, str]]


def kept_before(job: Job[Any, Any]) -> dict[str, ChunkFix]:
    """The chunks that got no valid answer before this run was suspended for a review, by
    :func:`~flows._requests.key_text`: resumed, it does not ask for them again."""
    if job.request.review == "never":
        return {}
    return {key: ChunkFix.model_validate(fix) for key, fix in kept_chunks().items()}


def reviewed(
    job: Job[Any, Any],
    cues: Sequence[ReviewCue],
    made: T,
    again: Callable[[Edits], T],
    answers: Mapping[K, ChunkFix],
) -> tuple[T, ReviewRecord | None]:
    """``made`` as it is when no review is wanted (or the reviewer changed nothing), else
    ``again`` with the reviewer's edits (by language, then cue number); and the review's
    record. ``answers``: the chunks' answers (their fallbacks are kept with the wait)."""
    options: ReviewOptions = job.request
    if not review.needed(options.review, cues):
        return made, None
    poll_s = job.settings.orchestration.review_poll_s
    kept = {key_text(k): f.model_dump(mode="json") for k, f in answers.items() if f.fallback}
    changed, record = wait_for_review(cues, options, job.title, job.progress, poll_s, kept)
    job.progress.stage(Stage.PROCESSING_RESULT, f"reviewed: {len(changed)} cues changed")
    return (again(review.edits_of(cues, changed)) if changed else made), record
