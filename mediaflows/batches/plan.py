"""Plain-Python parts of batches: the pre-flight plan, measured speeds, the outcome summary."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mediaflows.files import atomic_write
from mediaflows.models import BatchChild, BatchResult, ProfileFile


class BatchPlan(BaseModel):
    """The pre-flight summary of a batch, before any work starts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    files: int
    known_duration_s: float = Field(description="Total media duration where it is known.")
    unknown_duration: int = Field(description="Files whose duration is not recorded.")
    total_bytes: int
    estimated_s: float | None = Field(
        default=None, description="known duration ÷ the operation's measured realtime factor."
    )


def _speeds_path(home: Path) -> Path:
    return home / "batch-speeds.json"


def measured_speed(home: Path, operation: str) -> float | None:
    """Media seconds processed per wall second by the last batch of ``operation`` here."""
    try:
        speeds = json.loads(_speeds_path(home).read_text())
    except (OSError, ValueError):
        return None
    value = speeds.get(operation)
    return float(value) if isinstance(value, int | float) and value > 0 else None


def batch_ids(file_ids: Sequence[str], listed: Sequence[str] = ()) -> list[str]:
    """The files of a batch: each once, in the order given, then those ``listed`` (every input
    of the profile) that were not given."""
    return list(dict.fromkeys([*file_ids, *listed]))


def record_speed(
    home: Path,
    operation: str,
    files: Sequence[ProfileFile],
    children: Sequence[BatchChild],
    wall_s: float,
) -> None:
    """Remember this batch's speed, the media seconds of the files that completed by the wall
    seconds it took, for the next pre-flight estimate (best effort, atomic)."""
    by_id = {f.id: f for f in files}
    done = [by_id[c.file_id] for c in children if c.status == "completed" and c.file_id in by_id]
    media_s = sum(file_duration(f) or 0.0 for f in done)
    if media_s <= 0 or wall_s <= 0:
        return
    path = _speeds_path(home)
    try:
        speeds = json.loads(path.read_text())
    except (OSError, ValueError):
        speeds = {}
    speeds[operation] = media_s / wall_s
    atomic_write(path, json.dumps(speeds).encode(), fsync=False)


def file_duration(file: ProfileFile) -> float | None:
    value = file.details.get("duration")
    return float(value) if isinstance(value, int | float) and value > 0 else None


def plan(files: Sequence[ProfileFile], home: Path, operation: str) -> BatchPlan:
    """Files, total known media duration, bytes, and the time that should take at the speed
    the last batch of ``operation`` here measured."""
    speed = measured_speed(home, operation)
    durations = [file_duration(f) for f in files]
    known = sum(d for d in durations if d is not None)
    return BatchPlan(
        files=len(files),
        known_duration_s=round(known, 3),
        unknown_duration=sum(d is None for d in durations),
        total_bytes=sum(f.size for f in files),
        estimated_s=round(known / speed, 1) if speed and known else None,
    )


def summarize(operation: str, profile: str, children: Sequence[BatchChild]) -> BatchResult:
    failed = sum(c.status == "failed" for c in children)
    return BatchResult(
        operation=operation,
        profile=profile,
        total=len(children),
        succeeded=len(children) - failed,
        failed=failed,
        cached=sum(c.status == "cached" for c in children),
        children=tuple(children),
    )


def failure_message(result: BatchResult, shown: int = 10) -> str:
    names = result.failed_files
    listed = ", ".join(names[:shown]) + (
        f" and {len(names) - shown} more" if len(names) > shown else ""
    )
    return f"{result.failed} of {result.total} files failed: {listed}"
