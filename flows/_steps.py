"""Orchestration steps that several flows share."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from prefect.runtime import flow_run

from mediaflows.models import FixReport, MediaInfo, ProfileFile, QAReport, SrtResult, StoredFile
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


def srt_result(srt: StoredFile, content: str, cached: bool) -> SrtResult:
    """The result of a flow that stored an SRT, from the stored file and its details."""
    details = srt.file.details
    return SrtResult(
        file_id=srt.file.id,
        media_url=srt.media_url,
        profile=srt.file.profile,
        source_file_id=srt.file.source_file_id or "",
        content=content,
        language=str(details.get("language", "")),
        qa=QAReport.model_validate(details["qa"]),
        vtt_file_id=details.get("vtt_file_id"),
        json_file_id=details.get("json_file_id"),
        fix=FixReport.model_validate(details["fix"]) if details.get("fix") else None,
        cached=cached,
    )
