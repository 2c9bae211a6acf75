"""Orchestration steps that several flows share."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from prefect.runtime import flow_run

from mediaflows.models import MediaInfo, ProfileFile
from mediaflows.workspace import workspace_path
from tasks.media import probe_media
from tasks.progress import report_progress
from tasks.store import fetch_profile_file


def run_workspace(fallback: str) -> Path:
    """This flow run's scratch directory (removed by the flow when it ends)."""
    return workspace_path(str(flow_run.get_id() or fallback))


def fetch_and_probe(
    source: ProfileFile, workspace: Path, progress: UUID | None, probe_at: float
) -> tuple[Path, MediaInfo]:
    """A local copy of the input, and what ffprobe finds in it (refusing unsafe or bad media)."""
    local = fetch_profile_file(source, workspace)
    report_progress(progress, probe_at, "probing")
    return local, probe_media(local, source)
