"""A deliverable MP4 from a video and its subtitles: one soft ``mov_text`` track per language
(ISO 639-2 language tag, a readable track name, the first track the default), the moov atom
first, video and audio copied; or, with a language burnt in, the video re-encoded with that
language drawn by libass (fonts covering its script: CJK from ``fonts-wqy-zenhei``). And a
preview: one frame with every language's cue drawn, stacked, as a reviewer would see it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ffmpeg
from pydantic import BaseModel, ConfigDict, Field

from mediaflows.errors import MediaError
from mediaflows.media.convert import run_ffmpeg
from mediaflows.media.probe import MediaInfo, check_complete, input_options
from mediaflows.media.style import burn_style, font_for
from mediaflows.media.tools import ffmpeg_version, run_tool
from mediaflows.settings import Settings, get_settings

#: Base language (ISO 639-1) → (ISO 639-2/T code, the language's name in itself). MP4 stores a
#: track's language as ISO 639-2/T (``deu``, not the bibliographic ``ger``); the name is the
#: track's title, as a player's menu shows it to a viewer of that language.
TRACK_LANGUAGES: dict[str, tuple[str, str]] = {
    "af": ("afr", "Afrikaans"), "ar": ("ara", "العربية"), "bg": ("bul", "Български"),
    "bn": ("ben", "বাংলা"), "ca": ("cat", "Català"), "cs": ("ces", "Čeština"),
    "cy": ("cym", "Cymraeg"), "da": ("dan", "Dansk"), "de": ("deu", "Deutsch"),
    "el": ("ell", "Ελληνικά"), "en": ("eng", "English"), "es": ("spa", "Español"),
    "et": ("est", "Eesti"), "eu": ("eus", "Euskara"), "fa": ("fas", "فارسی"),
    "fi": ("fin", "Suomi"), "fil": ("fil", "Filipino"), "fr": ("fra", "Français"),
    "ga": ("gle", "Gaeilge"), "gl": ("glg", "Galego"), "he": ("heb", "עברית"),
    "hi": ("hin", "हिन्दी"), "hr": ("hrv", "Hrvatski"), "hu": ("hun", "Magyar"),
    "id": ("ind", "Bahasa Indonesia"), "is": ("isl", "Íslenska"), "it": ("ita", "Italiano"),
    "ja": ("jpn", "日本語"), "ko": ("kor", "한국어"), "lt": ("lit", "Lietuvių"),
    "lv": ("lav", "Latviešu"), "mr": ("mar", "मराठी"), "ms": ("msa", "Bahasa Melayu"),
    "nb": ("nob", "Norsk bokmål"), "nl": ("nld", "Nederlands"), "no": ("nor", "Norsk"),
    "pl": ("pol", "Polski"), "pt": ("por", "Português"), "ro": ("ron", "Română"),
    "ru": ("rus", "Русский"), "sk": ("slk", "Slovenčina"), "sl": ("slv", "Slovenščina"),
    "sr": ("srp", "Српски"), "sv": ("swe", "Svenska"), "sw": ("swa", "Kiswahili"),
    "ta": ("tam", "தமிழ்"), "th": ("tha", "ไทย"), "tr": ("tur", "Türkçe"),
    "uk": ("ukr", "Українська"), "ur": ("urd", "اردو"), "vi": ("vie", "Tiếng Việt"),
    "zh": ("zho", "中文"),
}  # fmt: skip
_CHINESE_SCRIPTS = {"zh-Hans": "简体中文", "zh-Hant": "繁體中文"}

ProgressCallback = Callable[[float], None]


@dataclass(frozen=True)
class Track:
    """One language's subtitles as a soft track: its SRT in the workspace and its language."""

    path: Path
    language: str

    @property
    def iso639(self) -> str:
        """The ISO 639-2/T code MP4 stores (``und`` for a language mediaflows does not know)."""
        return track_language(self.language)[0]

    @property
    def title(self) -> str:
        """The track's name, in its own language (``Deutsch``, ``简体中文``)."""
        return track_language(self.language)[1]


def track_language(tag: str) -> tuple[str, str]:
    """The ISO 639-2/T code and the readable name of a subtitle language (a BCP-47 tag)."""
    base = tag.split("-")[0].lower()
    code, name = TRACK_LANGUAGES.get(base, ("und", tag))
    return code, _CHINESE_SCRIPTS.get(tag, name)


class PackagedMedia(BaseModel):
    """An MP4 made in a run's workspace, not yet stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    mode: Literal["copy", "burn_in"]
    duration: float = Field(ge=0)
    tool: str = Field(description="The ffmpeg that made it, e.g. 'ffmpeg 5.1.9'.")


def _srt_input(track: Track) -> Any:
    return ffmpeg.input(f"file:{track.path}", f="srt", protocol_whitelist="file",
                        format_whitelist="srt")  # fmt: skip


def package_args(
    video: Path,
    tracks: Sequence[Track],
    dst: Path,
    burn_in: Track | None = None,
    *,
    crf: int = 20,
    preset: str = "veryfast",
    settings: Settings | None = None,
) -> list[str]:
    """The ffmpeg argument list: the video's first video and audio stream, one ``mov_text``
    track per language (tagged, named, the first the default), the moov atom first. Video and
    audio are copied unless ``burn_in`` names a track to draw into the picture (the video is
    then encoded with x264 at ``crf``/``preset``; audio is still copied)."""
    settings = settings or get_settings()
    source = ffmpeg.input(f"file:{video}", **input_options())
    picture = source["v:0"]
    options: dict[str, Any] = {"f": "mp4", "movflags": "+faststart", "c:a": "copy",
                               "c:s": "mov_text", "dn": None}  # fmt: skip
    if burn_in is None:
        options["c:v"] = "copy"
    else:
        picture = picture.filter(
            "subtitles", filename=str(burn_in.path), force_style=burn_style(burn_in.language)
        )
        options.update({"c:v": "libx264", "preset": preset, "crf": crf, "pix_fmt": "yuv420p"})
    for i, track in enumerate(tracks):
        options[f"metadata:s:s:{i}"] = f"language={track.iso639}"
        options[f"metadata:s:s:{i} "] = f"handler_name={track.title}"  # a second -metadata
        options[f"disposition:s:{i}"] = "default" if i == 0 else "0"
    subtitles = [_srt_input(track)["s:0"] for track in tracks]
    out = ffmpeg.output(picture, source["a:0?"], *subtitles, f"file:{dst}", **options)
    args: list[str] = out.compile(cmd=settings.media.ffmpeg_binary, overwrite_output=True)
    args = [a.rstrip() if a.startswith("-metadata:") else a for a in args]
    return [args[0], "-nostdin", "-hide_banner", "-v", "error", "-progress", "pipe:1", *args[1:]]


def package(
    video: Path,
    info: MediaInfo,
    tracks: Sequence[Track],
    dst: Path,
    name: str,
    burn_in: Track | None = None,
    *,
    crf: int = 20,
    preset: str = "veryfast",
    on_progress: ProgressCallback | None = None,
    settings: Settings | None = None,
) -> PackagedMedia:
    """Make the MP4 at ``dst`` (see :func:`package_args`).

    Raises:
        MediaError: the video has no video stream, or ffmpeg cannot read it or a subtitle file;
            an output shorter than the input (a truncated input) is removed and refused.
    """
    settings = settings or get_settings()
    if info.video is None:
        raise MediaError(name, "has no video stream to package subtitles with")
    args = package_args(video, tracks, dst, burn_in, crf=crf, preset=preset, settings=settings)
    expected = info.picture_and_sound_duration  # the source's own subtitle tracks are not kept
    written = run_ffmpeg(args, name, expected, on_progress, settings.media.ffmpeg_timeout_s)
    try:
        check_complete(name, written, expected)
    except MediaError:
        dst.unlink(missing_ok=True)
        raise
    mode: Literal["copy", "burn_in"] = "copy" if burn_in is None else "burn_in"
    return PackagedMedia(
        path=dst, mode=mode, duration=written, tool=ffmpeg_version(settings.media.ffmpeg_binary)
    )


# ---- the preview ----------------------------------------------------------------------------


def _ass_text(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("{", "(").replace("}", ")")
    return text.replace("\r", "").replace("\n", "\\N")


def preview_ass(lines: Sequence[tuple[str, str]], width: int, height: int) -> str:
    """An ASS script drawing each ``(language, text)`` at the bottom of a ``width``×``height``
    frame, the first language lowest, the next above it, each in its script's font, prefixed
    with its track name."""
    size = max(12, height // 18)
    header = (
        "[Script Info]\nScriptType: v4.00+\nWrapStyle: 0\n"
        f"PlayResX: {width}\nPlayResY: {height}\n\n[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, OutlineColour, BackColour, Bold, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV\n"
    )
    styles, events = [], []
    margin = size // 2
    for i, (language, text) in enumerate(lines):
        font = font_for(language) or "DejaVu Sans"
        styles.append(f"Style: L{i},{font},{size},&H00FFFFFF,&H00000000,&H80000000,0,1,2,0,2,"
                      f"{size // 2},{size // 2},{margin}")  # fmt: skip
        label = track_language(language)[1]
        body = _ass_text(f"[{label}] {text}")
        events.append(f"Dialogue: 0,0:00:00.00,0:01:00.00,L{i},,0,0,0,,{body}")
        margin += int(size * 1.4) * (body.count("\\N") + 1) + size // 3
    return (
        header + "\n".join(styles) + "\n\n[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        + "\n".join(events) + "\n"
    )  # fmt: skip


def preview_frame(
    video: Path,
    at: float,
    lines: Sequence[tuple[str, str]],
    workspace: Path,
    name: str,
    *,
    width: int = 640,
    settings: Settings | None = None,
) -> bytes:
    """A JPEG of the frame at ``at`` seconds, scaled to ``width``, with each language's line
    drawn over it (:func:`preview_ass`)."""
    settings = settings or get_settings()
    probe_w, probe_h = width, width * 9 // 16
    script = workspace / "preview.ass"
    workspace.mkdir(parents=True, exist_ok=True)
    script.write_text(preview_ass(lines, probe_w, probe_h), encoding="utf-8")
    frame = (
        ffmpeg.input(f"file:{video}", ss=f"{max(at, 0.0):.3f}", **input_options())["v:0"]
        .filter("scale", probe_w, probe_h, force_original_aspect_ratio="decrease")
        .filter("pad", probe_w, probe_h, "(ow-iw)/2", "(oh-ih)/2")
        .filter("ass", filename=str(script))
    )
    out = ffmpeg.output(frame, "pipe:1", vframes=1, f="image2pipe", vcodec="mjpeg",
                        **{"q:v": 4})  # fmt: skip
    args: list[str] = out.compile(cmd=settings.media.ffmpeg_binary)
    data = run_tool(
        [args[0], "-nostdin", "-hide_banner", "-v", "error", *args[1:]],
        name,
        settings.media.ffprobe_timeout_s,
    )
    if not data.startswith(b"\xff\xd8"):
        raise MediaError(name, f"no frame at {at:.1f} s to preview")
    return data
