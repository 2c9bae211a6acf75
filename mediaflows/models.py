"""Typed requests and results: flow parameters, flow results and store metadata."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mediaflows.ids import FileId, ProfileName

FileKind = Literal["video", "audio", "subtitle", "transcript", "other"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProfileFile(_Frozen):
    """Metadata of one file in a profile (stored beside it as JSON)."""

    id: FileId
    profile: ProfileName
    name: str = Field(description="Original or generated file name, for downloads.")
    kind: FileKind
    content_type: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created: datetime
    source_file_id: FileId | None = None
    operation: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    tools: dict[str, str] = Field(default_factory=dict, description="Tool and model versions.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="What the operation found or decided (mode, duration)."
    )

    @property
    def suffix(self) -> str:
        """The file name's extension, lower case, with the dot ('' if none)."""
        dot = self.name.rfind(".")
        return self.name[dot:].lower() if dot > 0 else ""


class StoredFile(_Frozen):
    """A profile file together with a fresh URL to fetch its content."""

    file: ProfileFile
    media_url: str


class MediaStream(_Frozen):
    """One stream of a probed media file."""

    index: int
    type: Literal["video", "audio", "subtitle", "data", "attachment", "unknown"]
    codec: str
    width: int | None = None
    height: int | None = None
    channels: int | None = None
    sample_rate: int | None = None


class MediaInfo(_Frozen):
    """What ffprobe found in a media file."""

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


class ConvertRequest(_Frozen):
    """How to turn a video into a web-ready MP4 (H.264/AAC or remuxed, moov atom first)."""

    codec: Literal["auto", "copy", "transcode"] = Field(
        default="auto",
        description="auto: remux when the codecs fit MP4 (H.264/HEVC + AAC/MP3), else transcode; "
        "copy: always remux (fails if the codecs do not fit); transcode: always re-encode.",
    )
    crf: int = Field(default=23, ge=0, le=51, description="x264 quality (lower is better).")
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"
    ] = Field(default="veryfast", description="x264 speed/size trade-off.")
    max_height: int | None = Field(
        default=None, ge=144, le=4320, description="Scale down taller videos (forces transcode)."
    )
    audio_bitrate: str = Field(
        default="128k", pattern=r"^[1-9][0-9]{1,2}k$", description="AAC bitrate when transcoding."
    )


class ConvertResult(_Frozen):
    """The stored MP4."""

    file_id: FileId
    media_url: str
    profile: ProfileName
    source_file_id: FileId
    mode: Literal["remux", "transcode"]
    duration: float
    size: int
    cached: bool = Field(description="True when the output already existed and nothing ran.")


class ConvertedMedia(_Frozen):
    """An MP4 made in a run's workspace, not yet stored."""

    path: Path
    mode: Literal["remux", "transcode"]
    reason: str
    duration: float = Field(ge=0)
    tool: str = Field(description="The ffmpeg that made it, e.g. 'ffmpeg 5.1.9'.")
