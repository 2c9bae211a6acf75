"""The public contract: what a run takes (requests), what it returns (results), and what the store
records about each file. These are the flows' parameters and results, the Python API's types and
the JSON the CLI prints; the Prefect UI builds its run forms from them.

Records that only one part of mediaflows uses live next to that code (``media.MediaInfo``,
``whisper.Transcription``, ``subtitles.Cue``, ``llm.SrtChunk``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mediaflows.ids import FileId, ProfileName

FileKind = Literal["video", "audio", "subtitle", "transcript", "other"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---- the store -------------------------------------------------------------------------------


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
        default_factory=dict,
        description="What the operation found or decided: the operation's details model "
        "(ConvertDetails, TranscriptDetails, SrtDetails) as JSON; the media duration on imports.",
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


class OperationResult(_Frozen):
    """What every single-file operation returns."""

    profile: ProfileName
    source_file_id: FileId
    media_url: str = Field(description="A fresh URL of the main output (presigned on S3).")
    cached: bool = Field(description="True when the output already existed and nothing ran.")

    @property
    def output_id(self) -> str:
        """The id of the main output in the profile."""
        raise NotImplementedError


# ---- convert ---------------------------------------------------------------------------------


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


class ConvertDetails(_Frozen):
    """What ``convert`` records about its MP4."""

    mode: Literal["remux", "transcode"]
    reason: str
    duration: float = Field(ge=0)


class ConvertResult(OperationResult):
    """The stored MP4."""

    file_id: FileId
    mode: Literal["remux", "transcode"]
    duration: float
    size: int

    @property
    def output_id(self) -> str:
        return self.file_id


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
        description="`tiny.en` or `base` (bundled, offline), another name, or a local path; "
        "None: MEDIAFLOWS_WHISPER__MODEL, else tiny.en for English and base otherwise.",
    )


class TranscriptDetails(_Frozen):
    """What ``transcribe`` records about its transcript."""

    language: str
    language_probability: float = Field(
        default=0.0, ge=0, le=1, description="The model's confidence in the language (1: forced)."
    )
    duration: float = Field(ge=0)
    segments: int = Field(ge=0)
    dropped_segments: int = Field(default=0, ge=0)


class TranscribeResult(OperationResult):
    """A stored transcript (text + segments JSON in the profile)."""

    transcript_id: FileId
    text: str
    language: str
    language_probability: float = Field(
        default=0.0, description="The model's confidence in the detected language (1: forced)."
    )
    duration: float
    segments: int

    @property
    def output_id(self) -> str:
        return self.transcript_id


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
    normalise: bool = Field(
        default=False,
        description="Write LF line ends and no byte-order mark (default: as the source has them).",
    )


class FixReport(_Frozen):
    """What fix_srt did."""

    model: str
    encoding: str = Field(description="The source's text encoding, as detected.")
    cues: int
    changed: int
    kept: int
    chunks: int
    fallback_chunks: tuple[int, ...] = Field(description="Chunks (0-based) that kept their text.")
    rejected_cues: tuple[int, ...] = Field(
        default=(), description="Cues whose answer was refused (damage or a rewrite): kept."
    )
    problems: tuple[str, ...] = Field(
        default=(), description="Every refused answer and fallback, with its reason."
    )
    retries: int = Field(default=0, description="Requests beyond the first, over all chunks.")
    response_format: str = Field(
        default="", description="The output mode the endpoint took (json_schema, json_object)."
    )
    prompt_tokens: int
    completion_tokens: int


class SrtDetails(_Frozen):
    """What ``generate_srt`` and ``fix_srt`` record about their SRT."""

    language: str = ""
    language_probability: float = Field(default=0.0, ge=0, le=1)
    duration: float | None = None
    qa: QAReport
    vtt_file_id: FileId | None = None
    json_file_id: FileId | None = None
    dropped_segments: int = 0
    fix: FixReport | None = None


class SrtResult(OperationResult):
    """A stored SRT (and optional VTT/JSON) with its QA report."""

    file_id: FileId
    content: str
    language: str
    language_probability: float = Field(
        default=0.0,
        description="The model's confidence in the detected language (generate_srt; 1: forced).",
    )
    qa: QAReport
    vtt_file_id: FileId | None = None
    json_file_id: FileId | None = None
    fix: FixReport | None = Field(default=None, description="What fix_srt changed (fix_srt only).")

    @property
    def output_id(self) -> str:
        return self.file_id


# ---- batches and the sweep -------------------------------------------------------------------

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
