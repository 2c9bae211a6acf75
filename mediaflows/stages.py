"""Where a run is: its stage, and the share of the progress bar each stage owns.

The stages are those of the job queue mediaflows replaces (queued → upload_received → preparing →
calling_provider → processing_result → succeeded / failed), with ``awaiting_review`` between
the last two when a reviewer is in the loop, and ``processing`` beside
``calling_provider`` for work done here (ffmpeg, the local Whisper model) rather than by an
external service (an LLM endpoint). A run's progress artifact in the Prefect UI carries the stage
and a detail as its description (``processing: transcribing 42%``) and the percent as its value;
:func:`describe` writes that description and :func:`parse` reads it back, so this module is the
only place that knows the format.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """One step of a run, in the order a run goes through them."""

    QUEUED = "queued"
    """Submitted, not started (no worker has it yet, or it waits for a slot)."""
    UPLOAD_RECEIVED = "upload_received"
    """The input file is found in the profile and fetched to the worker."""
    PREPARING = "preparing"
    """The input is checked and planned (probed, parsed, chunked)."""
    CALLING_PROVIDER = "calling_provider"
    """An external service does the work (an LLM endpoint)."""
    PROCESSING = "processing"
    """Our own tool or model does the work (ffmpeg, Whisper)."""
    AWAITING_REVIEW = "awaiting_review"
    """The run waits for a person to review flagged cues (its detail: how many). Neither failed
    nor done: under a deployment the run is suspended (no worker holds it), in-process paused."""
    PROCESSING_RESULT = "processing_result"
    """The result is built, checked and stored."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def span(self) -> tuple[float, float]:
        """The percent range of the progress bar this stage fills."""
        return _SPANS[self]

    def percent(self, fraction: float = 0.0) -> float:
        """The overall percent when this stage is ``fraction`` (0..1) done."""
        start, end = self.span
        return round(start + (end - start) * min(max(fraction, 0.0), 1.0), 1)

    @property
    def final(self) -> bool:
        return self in (Stage.SUCCEEDED, Stage.FAILED)


_SPANS: dict[Stage, tuple[float, float]] = {
    Stage.QUEUED: (0.0, 0.0),
    Stage.UPLOAD_RECEIVED: (0.0, 5.0),
    Stage.PREPARING: (5.0, 10.0),
    Stage.CALLING_PROVIDER: (10.0, 90.0),
    Stage.PROCESSING: (10.0, 90.0),
    Stage.AWAITING_REVIEW: (90.0, 90.0),
    Stage.PROCESSING_RESULT: (90.0, 100.0),
    Stage.SUCCEEDED: (100.0, 100.0),
    Stage.FAILED: (100.0, 100.0),
}

_SEPARATOR = ": "


def describe(stage: Stage, detail: str = "") -> str:
    """The progress artifact's description for ``stage`` (``"processing: converting 42%"``)."""
    return f"{stage.value}{_SEPARATOR}{detail}" if detail else stage.value


def parse(description: str | None) -> tuple[Stage, str]:
    """The stage and detail of a description written by :func:`describe` (``queued`` for none or
    a foreign one)."""
    if not description:
        return Stage.QUEUED, ""
    head, _, detail = description.partition(_SEPARATOR)
    try:
        return Stage(head), detail
    except ValueError:
        return Stage.QUEUED, description
