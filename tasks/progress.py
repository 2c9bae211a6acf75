"""Run progress in the Prefect UI: one progress artifact per flow run, with the stage as its
description (``fetching``, ``probing``, ``converting 42%``, ``storing``, ``done``)."""

from __future__ import annotations

import logging
import time
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

log = logging.getLogger(__name__)


def start_progress(operation: str, subject: str) -> UUID | None:
    """Create the run's progress artifact at 0 % (``None`` if the server refused it)."""
    try:
        return create_progress_artifact(
            progress=0.0, description=f"{operation} {subject}: queued"
        )
    except Exception as exc:  # progress is a view: never fail a run for it
        log.warning("could not create progress artifact: %s", exc)
        return None


def report_progress(artifact_id: UUID | None, percent: float, stage: str) -> None:
    """Set the run's progress and stage (best effort)."""
    if artifact_id is None:
        return
    try:
        update_progress_artifact(
            artifact_id=artifact_id, progress=round(min(max(percent, 0.0), 100.0), 1),
            description=stage,
        )
    except Exception as exc:
        log.warning("could not update progress artifact: %s", exc)


class StageProgress:
    """Maps a stage's own 0..1 fraction onto its slice of the run's 0..100 %, throttled."""

    def __init__(
        self, artifact_id: UUID | None, stage: str, start: float, end: float, every_s: float = 1.0
    ) -> None:
        self.artifact_id = artifact_id
        self.stage = stage
        self.start = start
        self.end = end
        self.every_s = every_s
        self._last = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < self.every_s:
            return
        self._last = now
        percent = self.start + (self.end - self.start) * fraction
        report_progress(self.artifact_id, percent, f"{self.stage} {fraction:.0%}")
