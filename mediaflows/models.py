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


# ---- transcription ---------------------------------------------------------------------------


class TranscribeRequest(_Frozen):
    """How to transcribe: passed to faster-whisper."""

    language: str | None = Field(
        default=None, pattern=r"^[a-z]{2,3}$", description="Spoken language; None detects it."
    )
    task: Literal["transcribe", "translate"] = Field(
        default="transcribe", description="translate: English text from any language."
    )
    beam_size: int = Field(default=5, ge=1, le=10)
    vad: bool = Field(default=True, description="Skip non-speech (Silero VAD).")
    initial_prompt: str | None = Field(default=None, max_length=1000)
    hotwords: str | None = Field(
        default=None, max_length=1000, description="Names and terms to favour (a glossary)."
    )
    word_timestamps: bool = Field(default=True, description="Times per word (needed for cues).")
    model: str | None = Field(
        default=None,
        max_length=300,
        description="Model name or local path; None uses MEDIAFLOWS_WHISPER__MODEL.",
    )


class Word(_Frozen):
    """One recognised word with its times in seconds."""

    start: float
    end: float
    text: str
    probability: float = 1.0


class Segment(_Frozen):
    """One Whisper segment."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0


class Transcription(_Frozen):
    """What the model heard: the unit Prefect caches (keyed by content, options and model)."""

    language: str
    language_probability: float
    duration: float
    segments: tuple[Segment, ...]
    model: str
    dropped: int = Field(default=0, description="Segments dropped by the hallucination guard.")

    @property
    def text(self) -> str:
        """The segments' text joined with single spaces."""
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


class TranscribeResult(_Frozen):
    """A stored transcript (text + segments JSON in the profile)."""

    transcript_id: FileId
    profile: ProfileName
    source_file_id: FileId
    text: str
    language: str
    duration: float
    segments: int
    media_url: str
    cached: bool


# ---- subtitles -------------------------------------------------------------------------------


class CueRules(_Frozen):
    """Readability rules for subtitle cues (defaults follow common broadcast guidelines)."""

    max_line_chars: int = Field(default=42, ge=16, le=80)
    max_lines: int = Field(default=2, ge=1, le=3)
    max_cps: float = Field(default=20.0, gt=5, le=40, description="Characters per second.")
    min_duration: float = Field(default=0.83, ge=0.3, le=3)
    max_duration: float = Field(default=7.0, ge=2, le=15)
    min_gap: float = Field(default=0.08, ge=0, le=1, description="Seconds between two cues.")
    pause_split: float = Field(
        default=0.9, ge=0.2, le=5, description="A silence this long between words ends a cue."
    )


class GenerateSrtRequest(TranscribeRequest):
    """Transcription options, cue rules and output formats."""

    rules: CueRules = Field(default_factory=CueRules)
    vtt: bool = Field(default=False, description="Also store a WebVTT file.")
    json_output: bool = Field(default=False, description="Also store segments + words as JSON.")

    def transcribe_request(self) -> TranscribeRequest:
        """The transcription part alone (what the cached model run depends on)."""
        fields = TranscribeRequest.model_fields
        return TranscribeRequest(**{k: v for k, v in self.model_dump().items() if k in fields})


class Cue(_Frozen):
    """One subtitle: times in seconds and up to ``max_lines`` lines."""

    index: int
    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def chars(self) -> int:
        """Characters a viewer reads (line breaks not counted)."""
        return sum(len(line) for line in self.lines)

    @property
    def duration(self) -> float:
        return self.end - self.start


class QAReport(_Frozen):
    """How well the cues follow the rules."""

    cues: int
    violations: dict[str, int] = Field(description="Cues breaking each rule.")
    mean_cps: float
    max_cps: float
    max_line_chars: int
    examples: dict[str, list[int]] = Field(
        default_factory=dict, description="Up to 5 cue numbers per violated rule."
    )

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())


class SrtResult(_Frozen):
    """A stored SRT (and optional VTT/JSON) with its QA report."""

    file_id: FileId
    media_url: str
    profile: ProfileName
    source_file_id: FileId
    content: str
    language: str
    qa: QAReport
    vtt_file_id: FileId | None = None
    json_file_id: FileId | None = None
    cached: bool
    fix: FixReport | None = Field(default=None, description="What fix_srt changed (fix_srt only).")


# ---- LLM subtitle repair ---------------------------------------------------------------------


class FixSrtRequest(_Frozen):
    """How to repair an SRT with an LLM: which configured model, extra instructions, a glossary.

    The endpoint and its API key come from settings (``MEDIAFLOWS_LLM__*``), never from here.
    """

    model: str | None = Field(
        default=None,
        max_length=200,
        description="One of MEDIAFLOWS_LLM__MODELS; None picks the first.",
    )
    sys_msg: str | None = Field(
        default=None,
        max_length=4000,
        description="Extra instructions for the model (style, language, what to leave alone).",
    )
    glossary: tuple[str, ...] = Field(
        default=(),
        max_length=500,
        description="Names and terms spelled exactly as given.",
    )


class CueText(_Frozen):
    """What the model sees of a cue: its number and its text, never its times."""

    id: int
    text: str


class SrtChunk(_Frozen):
    """Cues sent to the model in one request, with read-only neighbours for context."""

    index: int = Field(ge=0)
    cues: tuple[CueText, ...]
    before: tuple[CueText, ...] = ()
    after: tuple[CueText, ...] = ()


class ChunkFix(_Frozen):
    """The model's repair of one chunk, validated, or the original text when it failed."""

    index: int
    texts: tuple[CueText, ...] = Field(description="The text to keep for each cue of the chunk.")
    fallback: bool = Field(description="True: no valid answer, the original text was kept.")
    attempts: int
    rejected: tuple[int, ...] = Field(
        default=(), description="Cues whose answer was refused (a rewrite, not a repair)."
    )
    problems: tuple[str, ...] = Field(default=(), description="Why answers were refused.")
    prompt_tokens: int = 0
    completion_tokens: int = 0


class FixReport(_Frozen):
    """What fix_srt did."""

    model: str
    encoding: str = Field(description="The source's text encoding, as detected.")
    cues: int
    changed: int
    kept: int
    chunks: int
    fallback_chunks: tuple[int, ...] = Field(description="Chunks (0-based) that kept their text.")
    rejected_cues: tuple[int, ...] = ()
    prompt_tokens: int
    completion_tokens: int


class RenderedSubtitles(_Frozen):
    """Cues in every requested format, with their QA report."""

    cues: tuple[Cue, ...]
    srt: str
    vtt: str | None = None
    json_text: str | None = None
    qa: QAReport


FanOut = Literal["in-process", "distributed"]
ChildStatus = Literal["completed", "cached", "failed"]


class BatchChild(_Frozen):
    """One file of a batch: its child run and what came of it."""

    file_id: str
    status: ChildStatus
    run_id: str | None = Field(default=None, description="The child flow run (a subflow).")
    output_id: str | None = Field(default=None, description="The stored output, on success.")
    error: str | None = Field(default=None, description="Why it failed, on failure.")
    attempts: int = Field(
        default=1, description="Child runs it took (more than one when a worker died under one)."
    )


class BatchResult(_Frozen):
    """Outcome of a batch: counts, and one entry per file in the order given."""

    operation: str
    profile: ProfileName
    total: int
    succeeded: int = Field(description="Completed children, cached ones included.")
    failed: int
    cached: int = Field(description="Children whose output existed already (no work done).")
    children: tuple[BatchChild, ...]

    @property
    def failed_files(self) -> list[str]:
        return [child.file_id for child in self.children if child.status == "failed"]


class SweepResult(_Frozen):
    """What one sweep of a profile found and did."""

    profile: ProfileName
    operation: str
    imported: tuple[str, ...] = Field(
        default=(), description="Files of the watch folder new to the profile."
    )
    pending: tuple[str, ...] = Field(
        description="Inputs without the requested output: the batch's files (none: no batch)."
    )
    batch: BatchResult | None = Field(default=None, description="The batch run, if any.")
    removed: tuple[str, ...] = Field(
        default=(), description="Outputs older than the retention period, removed."
    )


class BatchPlan(_Frozen):
    """The pre-flight summary of a batch, before any work starts."""

    files: int
    known_duration_s: float = Field(description="Total media duration where it is known.")
    unknown_duration: int = Field(description="Files whose duration is not recorded.")
    total_bytes: int
    estimated_s: float | None = Field(
        default=None, description="known duration ÷ the operation's measured realtime factor."
    )


class TimedCue(_Frozen):
    """A cue of a parsed SRT: its number, times in milliseconds as in the file, and raw text
    (tags kept, lines joined with ``\\n``)."""

    id: int = Field(ge=1)
    start_ms: int
    end_ms: int
    text: str


class ParsedSrt(_Frozen):
    """An SRT file as read: its cues in file order and the encoding it was written in."""

    cues: tuple[TimedCue, ...]
    encoding: str


SrtResult.model_rebuild()
