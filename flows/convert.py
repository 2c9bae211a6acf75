"""The ``convert`` flow: a profile video → a web-ready MP4 stored in the same profile."""

from __future__ import annotations

from pathlib import PurePath

from prefect import flow

from flows._steps import fetch_and_probe, run_workspace
from mediaflows import media
from mediaflows.ids import FileId, ProfileName
from mediaflows.models import ConvertRequest, ConvertResult, StoredFile
from mediaflows.workspace import remove_workspace
from tasks._engine import run_blocking
from tasks.media import convert_media
from tasks.progress import report_progress, start_progress
from tasks.store import (
    find_output,
    lookup_profile_file,
    store_output,
)


def _result(stored: StoredFile, source_file_id: str, cached: bool) -> ConvertResult:
    file = stored.file
    return ConvertResult(
        file_id=file.id,
        media_url=stored.media_url,
        profile=file.profile,
        source_file_id=source_file_id,
        mode=file.details.get("mode", "transcode"),
        duration=float(file.details.get("duration", 0.0)),
        size=file.size,
        cached=cached,
    )


@flow(name="convert", log_prints=False, validate_parameters=True, persist_result=True)
async def convert(
    profile: ProfileName, file_id: FileId, request: ConvertRequest | None = None
) -> ConvertResult:
    """Convert a profile video to a web-ready MP4 and store it in the profile.

    Remuxes when the codecs fit MP4 (H.264/HEVC + AAC/MP3), else transcodes to H.264/AAC; the
    moov atom always comes first. If an earlier run already stored this exact output (same
    content, options and ffmpeg), nothing runs again.

    The flow is ``async`` for its engine (an async flow run ends without the sync engine's ~1 s
    heartbeat-thread join); its tasks are plain blocking calls, run one after another in a
    worker thread.
    """
    return await run_blocking(_convert, profile, file_id, request or ConvertRequest())


def _convert(profile: str, file_id: str, request: ConvertRequest) -> ConvertResult:
    progress = start_progress("convert", f"{profile}/{file_id}")
    report_progress(progress, 1, "fetching")
    source = lookup_profile_file(profile, file_id)
    output_id = media.convert_output_id(source.sha256, request)
    existing = find_output(profile, output_id)
    if existing is not None:
        report_progress(progress, 100, "done (already converted)", wait=True)
        return _result(existing, source.id, cached=True)

    workspace = run_workspace(output_id)
    try:
        local, info = fetch_and_probe(source, workspace, progress, probe_at=10)
        report_progress(progress, 15, "converting 0%")
        converted = convert_media(local, info, request, source, workspace, progress)
        report_progress(progress, 90, "storing")
        stored = store_output(
            profile,
            output_id,
            converted.path,
            name=f"{PurePath(source.name).stem or source.id}.mp4",
            source=source,
            operation="convert",
            options=request.model_dump(mode="json"),
            tools={"ffmpeg": converted.tool},
            details={
                "mode": converted.mode,
                "reason": converted.reason,
                "duration": converted.duration,
            },
        )
    finally:
        remove_workspace(workspace)
    report_progress(progress, 100, f"done ({converted.mode})", wait=True)
    return _result(stored, source.id, cached=False)
