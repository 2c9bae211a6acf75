"""The subtitle tracks a video already carries: listed when it is imported, one chosen by its
language or number, and taken out as a text subtitle file by ffmpeg (SubRip, ASS and WebVTT as
they are; MP4's mov_text as SubRip). Picture tracks (Blu-ray PGS, DVD VobSub, DVB) hold images,
not text: they are refused, since reading them needs OCR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mediaflows.errors import InputError, MediaflowsError
from mediaflows.ids import output_file_id
from mediaflows.languages import same_language
from mediaflows.media.package import TRACK_LANGUAGES
from mediaflows.media.probe import MediaInfo, input_flags, probe
from mediaflows.media.tools import run_tool
from mediaflows.settings import Settings, get_settings

#: Text subtitle codecs ffmpeg decodes → the format a track is written out in (its own where
#: mediaflows reads it, SubRip for MP4's mov_text and plain text).
TEXT_CODECS: dict[str, str] = {
    "subrip": "srt", "srt": "srt", "ass": "ass", "ssa": "ass", "webvtt": "vtt",
    "mov_text": "srt", "text": "srt",
}  # fmt: skip
#: How ffmpeg writes each format: (encoder, muxer).
_WRITERS = {"srt": ("srt", "srt"), "ass": ("ass", "ass"), "vtt": ("webvtt", "webvtt")}
#: Picture subtitle codecs, named as a user knows them.
PICTURE_CODECS: dict[str, str] = {
    "hdmv_pgs_subtitle": "Blu-ray PGS", "dvd_subtitle": "DVD VobSub",
    "dvb_subtitle": "DVB", "xsub": "DivX XSUB", "dvb_teletext": "teletext",
}  # fmt: skip
#: ISO 639-2 bibliographic codes (Matroska files often carry them) → the BCP-47 base.
_BIBLIOGRAPHIC = {
    "ger": "de", "fre": "fr", "chi": "zh", "dut": "nl", "cze": "cs", "gre": "el", "per": "fa",
    "rum": "ro", "slo": "sk", "ice": "is", "baq": "eu", "wel": "cy", "may": "ms",
}  # fmt: skip
_BY_ISO639 = {code: base for base, (code, _) in TRACK_LANGUAGES.items()} | _BIBLIOGRAPHIC


def language_tag(code: str | None) -> str | None:
    """The BCP-47 tag of a container's language code (``eng`` → ``en``, ``ger`` → ``de``,
    ``pt-BR`` as it is); None for none or ``und``."""
    if not code or code.lower() in ("und", "unk", "mis", "mul", "zxx"):
        return None
    return _BY_ISO639.get(code.lower(), code)


class SubtitleTrack(BaseModel):
    """One subtitle stream of a media file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    track: int = Field(ge=0, description="Its number among the file's subtitle streams, from 0.")
    stream: int = Field(ge=0, description="Its stream index in the file (ffprobe's).")
    codec: str
    language: str | None = Field(default=None, description="BCP-47 (from the container's code).")
    title: str | None = None

    @property
    def format(self) -> str | None:
        """The text format it is written out in; None for a picture track."""
        return TEXT_CODECS.get(self.codec)

    def describe(self) -> str:
        what = ", ".join(x for x in (self.language, self.title, self.codec) if x)
        return f"track {self.track} ({what})"


def subtitle_tracks(info: MediaInfo) -> list[SubtitleTrack]:
    """The subtitle streams of a probed file, in file order."""
    streams = [s for s in info.streams if s.type == "subtitle"]
    return [
        SubtitleTrack(
            track=n, stream=s.index, codec=s.codec, language=language_tag(s.language), title=s.title
        )
        for n, s in enumerate(streams)
    ]


def import_details(path: Path) -> dict[str, Any] | None:
    """What an import records about a media file: its duration (batch estimates use it) and the
    subtitle tracks it carries (``subtitle_tracks``: number, language, title, codec, text or
    pictures); None when it is no readable media (the operation refuses it later with a clear
    error)."""
    try:
        info = probe(path, path.name)
    except MediaflowsError:
        return None
    return {
        "duration": info.content_duration or info.duration,
        "subtitle_tracks": [
            {**t.model_dump(exclude_none=True), "text": t.format is not None}
            for t in subtitle_tracks(info)
        ],
    }


def choose_track(tracks: list[SubtitleTrack], wanted: str, name: str) -> SubtitleTrack:
    """The track ``wanted`` names: its number (``0``: the first subtitle track) or a language
    (``eng``, ``en``, ``de``: the first text track in it). :class:`InputError`, in one line, for
    a file without subtitle tracks, a number or language it does not have, or a picture track.
    """
    if not tracks:
        raise InputError(f"{name} has no subtitle tracks")
    listed = "; ".join(t.describe() for t in tracks)
    wanted = wanted.strip()
    if wanted.isdigit():
        chosen = next((t for t in tracks if t.track == int(wanted)), None)
        if chosen is None:
            raise InputError(f"{name} has no subtitle track {wanted}: it has {listed}")
    else:
        language = language_tag(wanted) or wanted
        same = [t for t in tracks if t.language and same_language(t.language, language)]
        if not same:
            raise InputError(f"{name} has no subtitle track in {wanted}: it has {listed}")
        chosen = next((t for t in same if t.format), same[0])
    if chosen.format is None:
        kind = PICTURE_CODECS.get(chosen.codec, chosen.codec)
        raise InputError(
            f"{name}: {chosen.describe()} is {kind} pictures, not text; mediaflows reads text "
            "tracks (SubRip, ASS, WebVTT, mov_text) — make one by OCR first"
        )
    return chosen


def extract_track(
    path: Path, track: SubtitleTrack, out_dir: Path, name: str, settings: Settings | None = None
) -> Path:
    """Write ``track`` of the media file ``path`` out as a subtitle file in ``out_dir`` (in its
    :attr:`~SubtitleTrack.format`); its path."""
    settings = settings or get_settings()
    if track.format is None:
        raise InputError(f"{name}: {track.describe()} is not a text track")
    encoder, muxer = _WRITERS[track.format]
    out = out_dir / f"track-{track.track}.{track.format}"
    args = [
        settings.media.ffmpeg_binary, "-nostdin", "-v", "error", "-y", *input_flags(),
        "-i", f"file:{path}", "-map", f"0:{track.stream}", "-c:s", encoder, "-f", muxer,
        f"file:{out}",
    ]  # fmt: skip
    run_tool(args, name, settings.media.ffmpeg_timeout_s)
    return out


def listed_tracks(details: dict[str, object]) -> list[SubtitleTrack] | None:
    """The subtitle tracks an import listed in a file's details (:func:`import_details`); None
    when it listed none (an older import, or a file imported without probing)."""
    listed = details.get("subtitle_tracks")
    if not isinstance(listed, list):
        return None
    fields = set(SubtitleTrack.model_fields)
    return [SubtitleTrack(**{k: v for k, v in t.items() if k in fields}) for t in listed]


def track_file_id(video_sha256: str, options: dict[str, object]) -> str:
    """The id of a track taken out of a video: from the video's content and the stream."""
    return output_file_id(video_sha256, "extract_track", dict(options), "ffmpeg")
