"""ffmpeg and ffprobe: probing, conversion plans and guarded conversions.

Every subprocess gets an argument list (never a shell string), a timeout, ``-protocol_whitelist
file`` and a demuxer whitelist, so an input can never make ffmpeg open another file or a URL: HLS
playlists, concat lists and other indirections are rejected, also when named ``.mp4``.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import ffmpeg

from mediaflows import cancel
from mediaflows.errors import (
    ConfigurationError,
    MediaError,
    ResourceError,
    ToolTimeoutError,
    UnsafeMediaError,
)
from mediaflows.ids import output_file_id
from mediaflows.models import ConvertedMedia, ConvertRequest, MediaInfo, MediaStream
from mediaflows.settings import Settings, get_settings

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
_INDIRECTIONS = {
    "hls": "an HLS playlist",
    "concat": "an ffconcat list",
    "ffconcat": "an ffconcat list",
    "dash": "a DASH manifest",
    "image2": "an image sequence",
    "tee": "a tee list",
}
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


@lru_cache(maxsize=4)
def ffmpeg_version(binary: str = "ffmpeg") -> str:
    """The ffmpeg version string, e.g. ``ffmpeg 5.1.9-0+deb12u1`` (part of output ids)."""
    try:
        out = subprocess.run(
            [binary, "-hide_banner", "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            stdin=subprocess.DEVNULL,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigurationError(f"cannot run {binary!r}: {exc} (install ffmpeg)") from exc
    match = re.match(r"ffmpeg version (\S+)", out)
    return f"ffmpeg {match.group(1) if match else 'unknown'}"


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


def _tool_error(name: str, stderr: str) -> MediaError | ResourceError:
    """Turn ffmpeg/ffprobe's stderr into the right error."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    whitelist = re.search(r"\[(\w+) @ [^]]+\] Format not on whitelist", stderr)
    if whitelist:
        demuxer = whitelist.group(1)
        if demuxer in _INDIRECTIONS:
            return UnsafeMediaError(name, f"is {_INDIRECTIONS[demuxer]}, not a media file; refused")
        return MediaError(name, f"unsupported format {demuxer!r}")
    if any("No space left on device" in ln for ln in lines):
        return ResourceError(f"{name}: no space left on device")
    if any("Cannot allocate memory" in ln for ln in lines):
        return ResourceError(f"{name}: out of memory")
    detail = lines[-1] if lines else "ffmpeg failed"
    # Local paths (work dirs) mean nothing to the user: keep only the message after them.
    detail = re.sub(r"file:\S+?: ", "", detail)
    detail = re.sub(r"(/[^\s:]+)+: ", "", detail)
    return MediaError(name, f"not a readable media file ({detail[:300]})")


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
        settings.ffprobe_binary,
        "-v",
        "error",
        *[a for k, v in _input_args().items() for a in (f"-{k}", v)],
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        f"file:{path}",
    ]
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            timeout=settings.ffprobe_timeout_s,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolTimeoutError(f"{name}: ffprobe ran over {settings.ffprobe_timeout_s} s") from exc
    except OSError as exc:
        raise ConfigurationError(f"cannot run {settings.ffprobe_binary!r}: {exc}") from exc
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise _tool_error(name, stderr)
    data: dict[str, Any] = json.loads(proc.stdout or b"{}")
    info = _media_info(data)
    if not info.streams:
        raise MediaError(name, "no audio or video streams")
    if info.duration <= 0:
        raise MediaError(name, "no duration: empty or truncated")
    if info.duration > settings.max_media_duration_s:
        raise MediaError(
            name,
            f"claims a duration of {info.duration:.0f} s, over the "
            f"{settings.max_media_duration_s:.0f} s limit",
        )
    return info


def _num(value: Any, cast: type[int] | type[float]) -> Any:
    try:
        return cast(value) if value not in (None, "N/A") else None
    except (TypeError, ValueError):
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
    args: list[str] = out.compile(cmd=settings.ffmpeg_binary, overwrite_output=True)
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
    timeout = timeout if timeout is not None else get_settings().ffmpeg_timeout_s
    try:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise ConfigurationError(f"cannot run {args[0]!r}: {exc} (install ffmpeg)") from exc
    stderr_tail: deque[bytes] = deque(maxlen=200)
    assert proc.stdout is not None and proc.stderr is not None
    stderr = proc.stderr
    err_reader = threading.Thread(target=lambda: stderr_tail.extend(stderr), daemon=True)
    err_reader.start()
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        proc.kill()

    watchdog = threading.Timer(timeout, _kill)
    watchdog.daemon = True
    watchdog.start()
    written = 0.0
    untrack = cancel.track(proc)  # cancelling the run kills it
    try:
        for raw in proc.stdout:
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            if key == "out_time_us":
                written = max(written, (_num(value, int) or 0) / 1e6)
                if on_progress and duration > 0:
                    on_progress(min(max(written / duration, 0.0), 1.0))
        proc.wait()
    finally:
        untrack()
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err_reader.join(timeout=5)
    cancel.check()
    if timed_out.is_set():
        raise ToolTimeoutError(f"{name}: ffmpeg ran over {timeout:.0f} s and was stopped")
    if proc.returncode != 0:
        raise _tool_error(name, b"".join(stderr_tail).decode(errors="replace"))
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
    started = time.monotonic()
    written = run_ffmpeg(
        conversion_args(src, dst, plan, settings),
        name,
        source.duration,
        on_progress,
        settings.ffmpeg_timeout_s,
    )
    if source.duration - written > max(1.0, 0.02 * source.duration):
        dst.unlink(missing_ok=True)
        raise MediaError(
            name,
            f"truncated or corrupt: only {written:.1f} s of {source.duration:.1f} s could be "
            f"read (after {time.monotonic() - started:.1f} s)",
        )
    return written


def convert_output_id(
    source_sha256: str, request: ConvertRequest, settings: Settings | None = None
) -> str:
    """The deterministic id of the MP4 made from this content with these options and this ffmpeg."""
    settings = settings or get_settings()
    tool = ffmpeg_version(settings.ffmpeg_binary)
    return output_file_id(source_sha256, "convert", request.model_dump(mode="json"), tool)


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
        tool=ffmpeg_version(settings.ffmpeg_binary),
    )
