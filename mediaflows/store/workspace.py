"""Per-run scratch directories under the work dir, removed when the run ends."""

from __future__ import annotations

import shutil
from pathlib import Path

from mediaflows.settings import Settings, get_settings


def workspace_path(run_id: str, settings: Settings | None = None) -> Path:
    """The scratch directory of one run (not created)."""
    settings = settings or get_settings()
    safe = "".join(c for c in run_id if c.isalnum() or c in "-_") or "run"
    return settings.work_path / "runs" / safe


def remove_workspace(path: Path) -> None:
    """Delete a run's scratch directory and everything in it."""
    shutil.rmtree(path, ignore_errors=True)
