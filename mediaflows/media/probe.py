"""What a media file holds, by ffprobe: its streams and durations; and the guards every ffmpeg
and ffprobe call puts before its input.

Every call goes through :mod:`mediaflows.media.tools` with ``-protocol_whitelist file`` and a
demuxer whitelist, so an input can never make ffmpeg open another file or a URL: HLS playlists,
concat lists and other indirections are rejected, also when named ``.mp4``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mediaflows.errors import MediaError, UnsafeMediaError
from mediaflows.media.tools import run_tool
from mediaflows.settings import Settings, get_settings


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
    language: str | None = Field(
        default=None, description="Its language tag as the container has it (``eng``, ``de``)."
    )
    title: str | None = Field(default=None, description="Its title, where it has one.")


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
    def video_duration(self) -> float:
        """How long the first video stream runs: its own duration where the container records
        one (a subtitle track may run on past the picture), else the container's."""
        video = self.video
        return video.duration if video is not None and video.duration else self.duration

    @property
    def picture_and_sound_duration(self) -> float:
        """How long the first video and audio streams run (the longer of their own durations,
        where recorded; else the container's): what a copy of picture and sound holds, though
        a subtitle track runs on past them."""
        own = [s.duration for s in (self.video, self.audio) if s is not None and s.duration]
        return max(own) if own else self.duration

    @property
    def audio_duration(self) -> float:
        """How long the first audio stream should decode to: its own duration where the
        container records one, else the container's."""
        audio = self.audio
        if audio is not None and audio.duration:
            return audio.duration
        return self.duration


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


def input_options() -> dict[str, str]:
    """The whitelists as ffmpeg-python input options (see :func:`input_flags`)."""
    return {"protocol_whitelist": "file", "format_whitelist": ",".join(ALLOWED_DEMUXERS)}


def input_flags() -> list[str]:
    """The options every ffmpeg/ffprobe call puts before its input: local files only, and only
    demuxers that read one self-contained file."""
    return [a for k, v in input_options().items() for a in (f"-{k}", v)]


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


def _num(value: Any, cast: type[int] | type[float]) -> Any:
    try:
        return cast(value) if value not in (None, "N/A") else None
    except (TypeError, ValueError):
        return None


def _tag(stream: dict[str, Any], name: str) -> str | None:
    value = (stream.get("tags") or {}).get(name)
    return str(value).strip() or None if value is not None else None


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
                language=_tag(s, "language"),
                title=_tag(s, "title"),
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


def check_complete(name: str, read_s: float, expected_s: float) -> None:
    """Raise :class:`MediaError` when a tool read clearly less of a file than it claims to hold:
    the file was cut short (a partial upload or copy) or is corrupt mid-way. ffmpeg reads what it
    can of such a file and still exits 0."""
    if expected_s - read_s > max(1.0, 0.02 * expected_s):
        raise MediaError(
            name,
            f"truncated or corrupt: only {read_s:.1f} s of {expected_s:.1f} s could be read",
        )
