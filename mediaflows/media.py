"""ffmpeg and ffprobe on media files: probing, conversion plans and guarded conversions.

Every call goes through :mod:`mediaflows.tools` with ``-protocol_whitelist file`` and a demuxer
whitelist, so an input can never make ffmpeg open another file or a URL: HLS playlists, concat
lists and other indirections are rejected, also when named ``.mp4``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ffmpeg
from pydantic import BaseModel, ConfigDict, Field

from mediaflows.errors import MediaError, MediaflowsError, UnsafeMediaError
from mediaflows.models import ConvertRequest
from mediaflows.settings import Settings, get_settings
from mediaflows.tools import ToolRun, ffmpeg_version, run_tool


class MediaStream(BaseModel):
    """One stream of a probed media file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    type: Literal["video", "audio", "subtitle", "data", "attachment", "unknown"]
    codec: str
    width: int | None = None
    height: int | None = None
    channels: int | None = None
    sample_rate: int | None = None
    duration: float | None = Field(
        default=None, description="The stream's own duration, when the container records it."
    )


class MediaInfo(BaseModel):
    """What ffprobe found in a media file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_name: str
    duration: float = Field(ge=0, description="What the container claims.")
    content_duration: float | None = Field(
        default=None, ge=0, description="The longest stream's own duration, when known."
    )
    size: int = Field(ge=0)
    streams: tuple[MediaStream, ...]

    @property
    def video(self) -> MediaStream | None:
        """The first video stream (cover art excluded), if any."""
        return next((s for s in self.streams if s.type == "video"), None)

    @property
    def audio(self) -> MediaStream | None:
        """The first audio stream, if any."""
        return next((s for s in self.streams if s.type == "audio"), None)

    @property
    def audio_duration(self) -> float:
        """How long the first audio stream should decode to: its own duration where the
        container records one, else the container's."""
        audio = self.audio
        if audio is not None and audio.duration:
            return audio.duration
        return self.duration


class ConvertedMedia(BaseModel):
    """An MP4 made in a run's workspace, not yet stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    mode: Literal["remux", "transcode"]
    reason: str
    duration: float = Field(ge=0)
    tool: str = Field(description="The ffmpeg that made it, e.g. 'ffmpeg 5.1.9'.")


#: Demuxers that read a single self-contained file. Indirections (hls, concat, image2, ...) are
#: left out on purpose: they open other files or URLs.
ALLOWED_DEMUXERS = (
    "mov",  # mov,mp4,m4a,3gp,3g2,mj2
    "matroska",  # matroska,webm
    "avi",
    "mpegts",
    "mpeg",
    "flv",
    "asf",
    "ogg",
    "wav",
    "w64",
    "mp3",
    "flac",
    "aac",
    "aiff",
    "caf",
    "amr",
)
_TEXT_SNIFF = (
    (b"#EXTM3U", "an HLS playlist"),
    (b"#EXT-X-", "an HLS playlist"),
    (b"ffconcat version", "an ffconcat list"),
    (b"<MPD", "a DASH manifest"),
    (b"<?xml", "an XML document"),
)
_MP4_VIDEO = {"h264", "hevc"}
_MP4_AUDIO = {"aac", "mp3"}

ProgressCallback = Callable[[float], None]
"""Called with the fraction done (0..1) while a conversion runs."""


def _input_args() -> dict[str, str]:
    return {"protocol_whitelist": "file", "format_whitelist": ",".join(ALLOWED_DEMUXERS)}


def input_flags() -> list[str]:
    """The options every ffmpeg/ffprobe call puts before its input: local files only, and only
    demuxers that read one self-contained file."""
    return [a for k, v in _input_args().items() for a in (f"-{k}", v)]


def _sniff(path: Path, name: str) -> None:
    """Reject empty files and text indirections with a message that says what they are."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise MediaError(name, "file is missing") from exc
    if size == 0:
        raise MediaError(name, "file is empty")
    with path.open("rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    for magic, what in _TEXT_SNIFF:
        if head.startswith(magic) or (magic.startswith(b"#EXT") and magic in head[:1024]):
            raise UnsafeMediaError(name, f"is {what}, not a media file; refused")


def probe(path: Path, name: str | None = None, settings: Settings | None = None) -> MediaInfo:
    """Describe a media file with ffprobe.

    Args:
        path: Local file to probe.
        name: Name to use in error messages (the user's file name or id).
        settings: Binaries and timeouts.

    Raises:
        MediaError: empty, not media, unsupported, or no usable streams.
        UnsafeMediaError: a playlist or list that points at other files.
    """
    settings = settings or get_settings()
    name = name or path.name
    _sniff(path, name)
    args = [
        settings.media.ffprobe_binary,
        "-v",
        "error",
        *input_flags(),
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        f"file:{path}",
    ]
    out = run_tool(args, name, settings.media.ffprobe_timeout_s)
    data: dict[str, Any] = json.loads(out or b"{}")
    info = _media_info(data)
    if not info.streams:
        raise MediaError(name, "no audio or video streams")
    if info.duration <= 0:
        raise MediaError(name, "no duration: empty or truncated")
    if info.duration > settings.media.max_media_duration_s:
        raise MediaError(
            name,
            f"claims a duration of {info.duration:.0f} s, over the "
            f"{settings.media.max_media_duration_s:.0f} s limit",
        )
    return info


def import_details(path: Path) -> dict[str, Any] | None:
    """What an import records about a media file: its duration (batch estimates use it); None
    when it is no readable media (the operation refuses it later with a clear error)."""
    try:
        info = probe(path, path.name)
    except MediaflowsError:
        return None
    return {"duration": info.content_duration or info.duration}


def _num(value: Any, cast: type[int] | type[float]) -> Any:
    try:
        return cast(value) if value not in (None, "N/A") else None
    except (TypeError, ValueError):
        return None


def _stream_duration(stream: dict[str, Any]) -> float | None:
    """A stream's own duration: ffprobe's, or the ``DURATION`` tag Matroska/WebM muxers write."""
    if (seconds := _num(stream.get("duration"), float)) is not None:
        return float(seconds)
    tag = (stream.get("tags") or {}).get("DURATION")
    if not isinstance(tag, str) or tag.count(":") != 2:
        return None
    hours, minutes, rest = tag.split(":")
    try:
        return int(hours) * 3600 + int(minutes) * 60 + float(rest)
    except ValueError:
        return None


def _media_info(data: dict[str, Any]) -> MediaInfo:
    fmt = data.get("format", {})
    streams: list[MediaStream] = []
    durations: list[float] = []
    for s in data.get("streams", []):
        kind = s.get("codec_type", "unknown")
        if kind == "video" and s.get("disposition", {}).get("attached_pic"):
            continue  # cover art is not video
        if kind not in ("video", "audio", "subtitle", "data", "attachment"):
            kind = "unknown"
        streams.append(
            MediaStream(
                index=int(s.get("index", len(streams))),
                type=kind,
                codec=str(s.get("codec_name", "unknown")),
                width=_num(s.get("width"), int),
                height=_num(s.get("height"), int),
                channels=_num(s.get("channels"), int),
                sample_rate=_num(s.get("sample_rate"), int),
                duration=_stream_duration(s),
            )
        )
        if (d := _num(s.get("duration"), float)) is not None:
            durations.append(d)
    duration = _num(fmt.get("duration"), float) or max(durations, default=0.0)
    return MediaInfo(
        format_name=str(fmt.get("format_name", "unknown")),
        duration=max(duration, 0.0),
        content_duration=max(durations) if durations else None,
        size=_num(fmt.get("size"), int) or 0,
        streams=tuple(streams),
    )


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
    stream = ffmpeg.input(f"file:{src}", **_input_args())
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
            if key == "out_time_us":
                written = max(written, (_num(value, int) or 0) / 1e6)
                if on_progress and duration > 0:
                    on_progress(min(max(written / duration, 0.0), 1.0))
        run.finish()
    if on_progress:
        on_progress(1.0)
    return written


def check_complete(name: str, read_s: float, expected_s: float) -> None:
    """Raise :class:`MediaError` when a tool read clearly less of a file than it claims to hold:
    the file was cut short (a partial upload or copy) or is corrupt mid-way. ffmpeg reads what it
    can of such a file and still exits 0."""
    if expected_s - read_s > max(1.0, 0.02 * expected_s):
        raise MediaError(
            name,
            f"truncated or corrupt: only {read_s:.1f} s of {expected_s:.1f} s could be read",
        )


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
