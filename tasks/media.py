"""Prefect tasks over ffmpeg/ffprobe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from prefect.context import TaskRunContext

from mediaflows import media
from mediaflows.media import ConvertedMedia, MediaInfo
from mediaflows.models import ConvertRequest, ProfileFile
from mediaflows.stages import Stage
from tasks.progress import RunProgress
from tasks.retry import RETRYING


def _probe_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    # Content-addressed: the same bytes probe the same, whatever the path or profile. v3: the
    # cached MediaInfo moved to mediaflows.media.probe (results are pickled by reference).
    file: ProfileFile = parameters["file"]
    return f"probe-v3-{file.sha256}"


@task(name="probe_media", cache_key_fn=_probe_key, persist_result=True, **RETRYING)
def probe_media(path: Path, file: ProfileFile) -> MediaInfo:
    """Describe the media (cached by content hash across runs and processes)."""
    return media.probe(path, name=file.name)


@task(name="convert_media", cache_policy=NONE, **RETRYING)
def convert_media(
    path: Path,
    info: MediaInfo,
    request: ConvertRequest,
    file: ProfileFile,
    workspace: Path,
    progress: RunProgress,
) -> ConvertedMedia:
    """Remux or transcode into a web-ready MP4 in the workspace, reporting percent done."""
    return media.convert_to_mp4(
        path,
        workspace,
        info,
        request,
        name=file.name,
        on_progress=progress.tracker(Stage.PROCESSING, "converting"),
    )
