"""Web-ready MP4 from any video: the plan (remux when the codecs fit MP4, else transcode to
H.264/AAC), the ffmpeg command (built with ffmpeg-python), and the guarded run with progress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ffmpeg
from pydantic import BaseModel, ConfigDict, Field

from mediaflows.errors import MediaError
from mediaflows.media.probe import MediaInfo, check_complete, input_options
from mediaflows.media.tools import ToolRun, ffmpeg_version
from mediaflows.models import ConvertRequest
from mediaflows.settings import Settings, get_settings

_MP4_VIDEO = {"h264", "hevc"}
_MP4_AUDIO = {"aac", "mp3"}

ProgressCallback = Callable[[float], None]
"""Called with the fraction done (0..1) while a conversion runs."""


class ConvertedMedia(BaseModel):
    """An MP4 made in a run's workspace, not yet stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    mode: Literal["remux", "transcode"]
    reason: str
    duration: float = Field(ge=0)
    tool: str = Field(description="The ffmpeg that made it, e.g. 'ffmpeg 5.1.9'.")


@dataclass(frozen=True)
class ConversionPlan:
    """What ffmpeg will do to make an MP4: remux or transcode, and how."""

    mode: Literal["remux", "transcode"]
    reason: str
    request: ConvertRequest
    video_codec: str
    has_audio: bool


def plan_conversion(info: MediaInfo, request: ConvertRequest, name: str) -> ConversionPlan:
    """Decide between remuxing (``-c copy``) and transcoding for this file and request.

    Raises:
        MediaError: no video stream, or ``codec="copy"`` asked for codecs MP4 cannot hold.
    """
    video, audio = info.video, info.audio
    if video is None:
        raise MediaError(name, "has no video stream to convert")
    fits = video.codec in _MP4_VIDEO and (audio is None or audio.codec in _MP4_AUDIO)
    too_tall = request.max_height is not None and (video.height or 0) > request.max_height
    has_audio = audio is not None
    if request.codec == "copy":
        if not fits:
            raise MediaError(
                name,
                f"codecs {video.codec}/{audio.codec if audio else '-'} cannot be copied into MP4; "
                "use codec=auto or transcode",
            )
        return ConversionPlan("remux", "copy requested", request, video.codec, has_audio)
    if request.codec == "transcode":
        return ConversionPlan("transcode", "transcode requested", request, video.codec, has_audio)
    if too_tall:
        reason = f"height {video.height} > {request.max_height}"
        return ConversionPlan("transcode", reason, request, video.codec, has_audio)
    if fits:
        return ConversionPlan("remux", "codecs fit MP4", request, video.codec, has_audio)
    reason = f"{video.codec}/{audio.codec if audio else '-'} do not fit MP4"
    return ConversionPlan("transcode", reason, request, video.codec, has_audio)


def conversion_args(
    src: Path, dst: Path, plan: ConversionPlan, settings: Settings | None = None
) -> list[str]:
    """The ffmpeg argument list for a plan (progress on stdout, errors on stderr)."""
    settings = settings or get_settings()
    stream = ffmpeg.input(f"file:{src}", **input_options())
    video = stream["v:0"]
    audio = stream["a:0?"]
    req = plan.request
    common: dict[str, Any] = {"f": "mp4", "movflags": "+faststart", "sn": None, "dn": None}
    if plan.mode == "remux":
        extra = {"tag:v": "hvc1"} if plan.video_codec == "hevc" else {}
        out = ffmpeg.output(video, audio, f"file:{dst}", c="copy", **common, **extra)
    else:
        height = f"min(ih,{req.max_height})" if req.max_height else "trunc(ih/2)*2"
        width = "-2" if req.max_height else "trunc(iw/2)*2"
        out = ffmpeg.output(
            video.filter("scale", width, height),
            audio,
            f"file:{dst}",
            vcodec="libx264",
            preset=req.preset,
            crf=req.crf,
            pix_fmt="yuv420p",
            acodec="aac",
            **{"b:a": req.audio_bitrate},
            **common,
        )
    args: list[str] = out.compile(cmd=settings.media.ffmpeg_binary, overwrite_output=True)
    # Global options go first: ffmpeg applies them wherever they are, but reads best this way.
    return [args[0], "-nostdin", "-hide_banner", "-v", "error", "-progress", "pipe:1", *args[1:]]


def run_ffmpeg(
    args: list[str],
    name: str,
    duration: float,
    on_progress: ProgressCallback | None = None,
    timeout: float | None = None,
) -> float:
    """Run ffmpeg with a timeout, reporting progress from its ``-progress`` output.

    Returns:
        The duration ffmpeg wrote (its last ``out_time``), in seconds.

    Raises:
        MediaError: ffmpeg rejected the input.
        ToolTimeoutError: it ran past ``timeout`` seconds (the process is killed).
    """
    timeout = timeout if timeout is not None else get_settings().media.ffmpeg_timeout_s
    written = 0.0
    with ToolRun(args, name, timeout) as run:
        for line in run.lines():
            key, _, value = line.partition("=")
            if key == "out_time_us" and value.strip().lstrip("-").isdigit():  # "N/A" at first
                written = max(written, int(value) / 1e6)
                if on_progress and duration > 0:
                    on_progress(min(max(written / duration, 0.0), 1.0))
        run.finish()
    if on_progress:
        on_progress(1.0)
    return written


def convert(
    src: Path,
    dst: Path,
    plan: ConversionPlan,
    source: MediaInfo,
    name: str,
    on_progress: ProgressCallback | None = None,
    settings: Settings | None = None,
) -> float:
    """Convert ``src`` into a web-ready MP4 at ``dst``.

    The output must be as long as the source: a shorter one means the source was truncated or
    corrupt mid-way (ffmpeg reads what it can and still exits 0), which is an input error.

    Returns:
        The output's duration in seconds (from ffmpeg's own progress report, no second probe).
    """
    settings = settings or get_settings()
    written = run_ffmpeg(
        conversion_args(src, dst, plan, settings),
        name,
        source.duration,
        on_progress,
        settings.media.ffmpeg_timeout_s,
    )
    try:
        check_complete(name, written, source.duration)
    except MediaError:
        dst.unlink(missing_ok=True)
        raise
    return written


def convert_to_mp4(
    src: Path,
    workspace: Path,
    info: MediaInfo,
    request: ConvertRequest,
    name: str,
    on_progress: ProgressCallback | None = None,
    settings: Settings | None = None,
) -> ConvertedMedia:
    """Plan and run the conversion of ``src`` into ``workspace/<stem>.mp4``."""
    settings = settings or get_settings()
    plan = plan_conversion(info, request, name)
    workspace.mkdir(parents=True, exist_ok=True)
    dst = workspace / "converted.mp4"
    duration = convert(src, dst, plan, info, name, on_progress, settings)
    return ConvertedMedia(
        path=dst,
        mode=plan.mode,
        reason=plan.reason,
        duration=duration,
        tool=ffmpeg_version(settings.media.ffmpeg_binary),
    )
