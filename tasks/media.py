"""Prefect tasks over ffmpeg/ffprobe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from prefect.context import TaskRunContext

from mediaflows import media
from mediaflows.media import ConvertedMedia, MediaInfo
from mediaflows.media.package import PackagedMedia, Track, package, preview_frame
from mediaflows.models import ConvertRequest, PackageRequest, ProfileFile
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


@task(name="package_media", cache_policy=NONE, **RETRYING)
def package_media(
    path: Path,
    info: MediaInfo,
    tracks: list[Track],
    burn_in: Track | None,
    request: PackageRequest,
    file: ProfileFile,
    workspace: Path,
    progress: RunProgress,
) -> PackagedMedia:
    """Mux the subtitle tracks into an MP4 in the workspace (streams copied, or the video
    re-encoded with one language burnt in), reporting percent done."""
    what = "packaging" if burn_in is None else f"burning in {burn_in.language}"
    return package(
        path, info, tracks, workspace / "packaged.mp4", file.name, burn_in,
        crf=request.crf, preset=request.preset,
        on_progress=progress.tracker(Stage.PROCESSING, what),
    )  # fmt: skip


@task(name="render_preview", cache_policy=NONE, **RETRYING)
def render_preview(
    path: Path, at: float, lines: list[tuple[str, str]], file: ProfileFile, workspace: Path
) -> bytes:
    """A JPEG of the frame at ``at`` seconds with each language's cue drawn."""
    return preview_frame(path, at, lines, workspace / "preview", file.name)
