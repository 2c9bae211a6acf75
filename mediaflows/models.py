"""The public contract: what a run takes (requests), what it returns (results), and what the store
records about each file. These are the flows' parameters and results, the Python API's types and
the JSON the CLI prints; the Prefect UI builds its run forms from them.

Records that only one part of mediaflows uses live next to that code (``media.MediaInfo``,
``speech.Transcription``, ``subtitles.TimedCue``, ``subtitles.SrtChunk``). This module imports only
the ground beside it (ids, languages, settings), so every package can use it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mediaflows.errors import InputError
from mediaflows.ids import FileId, ProfileName
from mediaflows.languages import language_tags, same_language
from mediaflows.settings import get_settings

FileKind = Literal["video", "audio", "subtitle", "transcript", "other"]
#: Which subtitle track of a video an operation reads: a language or a number (fix_srt and
#: translate_srt's ``track``).
TrackChoice = Annotated[
    str | None,
    Field(
        max_length=20,
        pattern=r"^(\d{1,3}|[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*)$",
        description="When the input is a video: its subtitle track to use, by language (eng, "
        "en, de: the first text track in it) or number (0: its first subtitle track). The "
        "`import` lists a video's tracks.",
    ),
]
#: Subtitle formats an operation can store besides SRT (mediaflows.subtitles.formats).
ExtraFormat = Literal["vtt", "ass", "ssa", "ttml", "sbv"]
#: What generate_srt can store besides SRT: those, and the transcript as JSON (segments and
#: words with their times).
GenerateFormat = Literal["vtt", "ass", "ssa", "ttml", "sbv", "json"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---- a reviewer in the loop --------------------------------------------------------------------

#: When a translation or repair waits for a person: never, when cues are flagged, or always.
ReviewPolicy = Literal["never", "flagged", "always"]
#: What a review nobody answers in time becomes: the automatic text delivered, or a failed run.
ReviewTimeoutRule = Literal["deliver", "fail"]


#: The review fields of translate_srt, fix_srt and generate_srt (declared last in each request,
#: so that the UI's run form starts with the operation's own fields).
ReviewField = Annotated[
    ReviewPolicy,
    Field(
        description="After the LLM pass, wait for a reviewer: never; flagged (only when cues "
        "are flagged: refused answers kept as source text, over the reading speed or the line "
        "rules after condensing, glossary terms missing); always (the flagged cues, or none, "
        "and the reviewer's go). The run shows stage awaiting_review; under a deployment it is "
        "suspended (its worker slot freed), in-process it pauses.",
    ),
]
ReviewTimeoutField = Annotated[
    int,
    Field(
        ge=1,
        le=30 * 86_400,
        description="Seconds the run waits for the reviewer before its review_timeout rule.",
    ),
]
ReviewRuleField = Annotated[
    ReviewTimeoutRule,
    Field(description="Nobody answered in time: deliver the automatic text, or fail the run."),
]
#: The fields that never enter output ids: how long a run waits does not change what it makes.
REVIEW_WAIT_FIELDS = frozenset({"review_timeout_s", "review_timeout"})


class ReviewOptions(Protocol):
    """A request with a reviewer in the loop (translate_srt, fix_srt, generate_srt)."""

    review: ReviewPolicy
    review_timeout_s: int
    review_timeout: ReviewTimeoutRule


def review_dropped(options: ReviewOptions) -> set[str]:
    """The review fields output ids leave out: the wait always, ``review`` when it is never (a
    reviewed file is another file than the automatic one)."""
    return set(REVIEW_WAIT_FIELDS) | (set() if options.review != "never" else {"review"})


class ReviewCue(_Frozen):
    """One cue a reviewer is asked about: where it is, what it says, why it was flagged, and
    the rules its text must keep."""

    key: str = Field(description='How the answer names it: "12", or "de:12" in a translation.')
    field: str = Field(description="Its field in the resume form (cue_12, de_12).")
    language: str = Field(default="", description="The translation's language ('' repair).")
    number: int
    start: str = Field(description="SRT time, never changed.")
    end: str
    duration: float
    source: str = Field(description="The source cue's text.")
    current: str = Field(description="The text the run would deliver.")
    reasons: tuple[str, ...]
    max_lines: int
    max_line_chars: int
    max_cps: float


class ReviewChange(_Frozen):
    """A cue a reviewer changed."""

    key: str
    language: str = ""
    number: int
    before: str
    after: str
    cps: float = Field(description="Characters a second of the new text (reported, not refused).")


class ReviewRecord(_Frozen):
    """What the reviewer did, as the output's details and the manifest record it."""

    reviewer: str = Field(default="", description="Who answered (as they gave their name).")
    answered_at: datetime | None = Field(default=None, description="When the answer came in.")
    timed_out: bool = Field(
        default=False, description="Nobody answered in time: the automatic text was delivered."
    )
    flagged: tuple[str, ...] = Field(default=(), description="The cues asked about.")
    changed: tuple[ReviewChange, ...] = ()
    accepted: tuple[str, ...] = Field(default=(), description="Cues accepted as they were.")
    too_fast: tuple[str, ...] = Field(
        default=(), description="Changed cues read faster than their language's limit."
    )
    refused: int = Field(default=0, description="Answers refused before this one.")


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
        default=None,
        pattern=r"^[a-z]{2,3}(-Hans|-Hant)?$",
        description="Spoken language (`en`, `ja`); None detects it. Chinese: `zh-Hans` for "
        "Simplified characters, `zh-Hant` for Traditional (converted with OpenCC), `zh` as the "
        "model writes it.",
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
    provider: str = Field(
        default="local",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Where speech is recognised: `local` (the model in the worker) or the name "
        "of an endpoint of MEDIAFLOWS_ASR__ENDPOINTS (its model then; `model` is ignored).",
        json_schema_extra=lambda schema: _provider_choices(schema),
    )


def _provider_choices(schema: dict[str, Any]) -> None:
    """The run form offers the configured endpoints' names (read when the schema is made)."""
    try:
        names = list(get_settings().asr.endpoints)
    except ValueError:  # a setting that does not parse (pydantic's ValidationError, or
        # pydantic-settings' SettingsError) fails the run with its own error, not the schema
        names = []
    schema["enum"] = ["local", *names]


class ProviderUsage(_Frozen):
    """Where speech was recognised, and what was sent there (what a hosted API bills)."""

    provider: str = Field(default="local", description="`local`, or the endpoint's name.")
    provider_model: str = Field(default="", description="The endpoint's model ('' locally).")
    audio_sent_s: float = Field(default=0.0, ge=0, description="Seconds of audio uploaded.")
    pieces: int = Field(default=0, ge=0, description="Requests it took (pieces of audio).")
    words_estimated: bool = Field(
        default=False,
        description="The endpoint gave segment times only: word times were estimated in each.",
    )
    word_times: Literal["endpoint", "aligned", "estimated"] = Field(
        default="endpoint",
        description="Where word times came from: the endpoint; the bundled model on the same "
        "audio (`aligned`: the endpoint gave none); or spread evenly in each segment.",
    )
    language_check: str | None = Field(
        default=None,
        description="With no language requested: what the bundled model heard in 30 s of the "
        "file, e.g. `de 0.97 (agrees)`.",
    )


#: The language fields of a transcript or an SRT made from speech.
PROBABILITY = (
    "How sure a model that listened was of the detected language: the local model's, or for a "
    "speech endpoint the bundled model's check when it agrees. None: nobody measured it (the "
    "language was requested, or the endpoint gives no probability and no check ran)."
)
DOUBTFUL = (
    "The language was detected, not requested, and the detection is doubtful: under 0.5 sure, "
    "or not measured at all. Pass the spoken language (language) to be sure."
)


class TranscriptDetails(_Frozen):
    """What ``transcribe`` records about its transcript."""

    language: str
    language_probability: float | None = Field(default=None, ge=0, le=1, description=PROBABILITY)
    language_doubtful: bool = Field(default=False, description=DOUBTFUL)
    duration: float = Field(ge=0)
    segments: int = Field(ge=0)
    dropped_segments: int = Field(default=0, ge=0)
    asr: ProviderUsage = Field(default_factory=ProviderUsage)


class TranscribeResult(OperationResult):
    """A stored transcript (text + segments JSON in the profile)."""

    transcript_id: FileId
    text: str
    language: str
    language_probability: float | None = Field(default=None, ge=0, le=1, description=PROBABILITY)
    language_doubtful: bool = Field(default=False, description=DOUBTFUL)
    duration: float
    segments: int
    asr: ProviderUsage = Field(default_factory=ProviderUsage)

    @property
    def output_id(self) -> str:
        return self.transcript_id


# ---- subtitles -------------------------------------------------------------------------------


class CueRules(_Frozen):
    """Readability rules for subtitle cues (defaults follow common broadcast guidelines)."""

    max_line_chars: int = Field(default=42, ge=10, le=80)
    max_lines: int = Field(default=2, ge=1, le=3)
    max_cps: float = Field(default=20.0, ge=3, le=40, description="Characters per second.")
    min_duration: float = Field(default=0.83, ge=0.3, le=3)
    max_duration: float = Field(default=7.0, ge=2, le=15)
    min_gap: float = Field(default=0.08, ge=0, le=1, description="Seconds between two cues.")
    pause_split: float = Field(
        default=0.9, ge=0.2, le=5, description="A silence this long between words ends a cue."
    )


class GenerateSrtRequest(TranscribeRequest):
    """Transcription options, cue rules and output formats."""

    rules: CueRules = Field(default_factory=CueRules)
    vtt: bool = Field(
        default=False, description="Also store a WebVTT file (the same as vtt in `formats`)."
    )
    json_output: bool = Field(
        default=False,
        description="Also store segments + words as JSON (the same as json in `formats`).",
    )
    formats: tuple[GenerateFormat, ...] = Field(
        default=(),
        max_length=6,
        description="Formats stored besides SRT: vtt (web players, YouTube; its Language "
        "header), ass and ssa (editors, styled players: the style package burns in), ttml (the "
        "IMSC1 text profile broadcasters and platforms take), sbv (YouTube), each for the "
        "translations too; json: the transcript, segments and words with their times.",
    )
    target_languages: tuple[str, ...] = Field(
        default=(),
        max_length=20,
        description="Also translate the subtitles into these languages (BCP-47: de, pt-BR, "
        "zh-Hans), one SRT each, by a child translate_srt run.",
    )
    translation: Literal["llm", "whisper"] = Field(
        default="llm",
        description="llm: translate_srt (any target); whisper: the model's own translate task "
        "(English only, a multilingual model).",
    )
    translation_model: str | None = Field(
        default=None,
        max_length=200,
        description="The LLM for translations (one of MEDIAFLOWS_LLM__MODELS).",
    )
    bilingual: bool = Field(
        default=False, description="Translations show the original line above the translation."
    )
    package: bool = Field(
        default=False,
        description="Also package the video with the translations and the SRT: one MP4 with a "
        "subtitle track per language (the first target the default), by a child package run.",
    )
    review: ReviewField = "never"
    review_timeout_s: ReviewTimeoutField = 86_400
    review_timeout: ReviewRuleField = "deliver"

    #: The fields that only shape the translations, not the source-language subtitles.
    TRANSLATION_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"target_languages", "translation", "translation_model", "bilingual", "package",
         "review", "review_timeout_s", "review_timeout"}
    )  # fmt: skip

    @field_validator("target_languages")
    @classmethod
    def _known_languages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _language_tags(value)

    @model_validator(mode="after")
    def _whisper_translates_to_english(self) -> GenerateSrtRequest:
        if self.translation == "whisper" and self.target_languages not in ((), ("en",)):
            raise ValueError("translation 'whisper' makes English only: target_languages ['en']")
        if self.package and not self.target_languages:
            raise ValueError("package needs target_languages (for the SRT alone: run package)")
        if self.review != "never" and (not self.target_languages or self.translation == "whisper"):
            raise ValueError(
                "review is of LLM translations: it needs target_languages (and "
                "translation 'llm'); for the SRT itself, run fix_srt with review"
            )
        if self.language and any(same_language(self.language, t) for t in self.target_languages):
            raise ValueError(f"a target language is the spoken language {self.language!r}")
        return self

    def transcribe_request(self) -> TranscribeRequest:
        """The transcription part alone (what the cached model run depends on)."""
        fields = TranscribeRequest.model_fields
        return TranscribeRequest(**{k: v for k, v in self.model_dump().items() if k in fields})

    def extra_formats(self) -> tuple[str, ...]:
        """The formats stored besides SRT, in the order asked (``vtt`` and ``json`` first
        when asked by their flags)."""
        flags = (("vtt",) if self.vtt else ()) + (("json",) if self.json_output else ())
        return tuple(dict.fromkeys(flags + self.formats))

    def subtitle_formats(self) -> tuple[str, ...]:
        """The subtitle formats among them (not the JSON transcript): the translations are
        stored in these too."""
        return tuple(f for f in self.extra_formats() if f != "json")

    def id_options(self, exclude: set[str] | None = None) -> dict[str, Any]:
        """The request as output ids take it: WebVTT and JSON as their flags say, whichever
        way they were asked for, the other formats (sorted) only when there are any, so that
        ``--vtt`` and ``--formats vtt`` name the same files and the ids of files made before
        ``formats`` existed stay theirs."""
        dropped = (exclude or set()) | {"formats"} | review_dropped(self)
        data = self.model_dump(mode="json", exclude=dropped)
        extra = self.extra_formats()
        data["vtt"], data["json_output"] = "vtt" in extra, "json" in extra
        if others := sorted(f for f in extra if f not in ("vtt", "json")):
            data["formats"] = others
        return data

    def subtitle_options(self) -> dict[str, Any]:
        """The options the source-language subtitles depend on (their output ids): the
        translation fields left out, so that adding a language later finds them again."""
        return self.id_options(exclude=set(self.TRANSLATION_FIELDS))


def _language_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    """Each tag parsed and written canonically (de-at → de-AT); a tag given twice refused."""
    try:
        return language_tags(tags)
    except InputError as exc:
        raise ValueError(str(exc)) from None


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
    track: TrackChoice = None

    formats: tuple[ExtraFormat, ...] = Field(
        default=(),
        max_length=5,
        description="Formats the repaired file is also stored in besides SRT (vtt, ass, ssa, "
        "ttml, sbv). A subtitle file that is not SRT also gets its own format back, cue "
        "settings, speakers and styles kept.",
    )
    review: ReviewField = "never"
    review_timeout_s: ReviewTimeoutField = 86_400
    review_timeout: ReviewRuleField = "deliver"

    def id_options(self) -> dict[str, Any]:
        """The request as output ids take it: ``track`` and ``formats`` only when given, so
        that the ids of repairs made before they existed stay theirs."""
        dropped = (set() if self.track else {"track"}) | (set() if self.formats else {"formats"})
        return self.model_dump(mode="json", exclude=dropped | review_dropped(self))


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
    """What ``generate_srt``, ``fix_srt`` and ``translate_srt`` record about an SRT (and
    generate_srt about its manifest)."""

    language: str = ""
    language_probability: float | None = Field(default=None, ge=0, le=1, description=PROBABILITY)
    language_doubtful: bool = Field(default=False, description=DOUBTFUL)
    duration: float | None = None
    qa: QAReport
    vtt_file_id: FileId | None = None
    json_file_id: FileId | None = None
    files: dict[str, FileId] = Field(
        default_factory=dict,
        description="The file in the other formats, by format (vtt, ass, ttml, json …): "
        "generate_srt's asked for, fix_srt's repaired file in them.",
    )
    dropped_segments: int = 0
    asr: ProviderUsage | None = Field(
        default=None, description="generate_srt: where speech was recognised."
    )
    fix: FixReport | None = None
    translation: TranslationReport | None = Field(
        default=None, description="translate_srt: what the translation into this language did."
    )
    srt_file_id: FileId | None = Field(
        default=None,
        description="Set on generate_srt's translation manifest: the source-language SRT.",
    )
    translations: tuple[TranslationRef, ...] = Field(
        default=(), description="The translations made with the SRT (generate_srt --to)."
    )
    package_file_id: FileId | None = Field(
        default=None, description="generate_srt --package: the MP4 with a track per language."
    )
    review: ReviewRecord | None = Field(
        default=None, description="With a reviewer in the loop: what they did (fix_srt)."
    )


class SrtResult(OperationResult):
    """A stored SRT (and optional VTT/JSON) with its QA report."""

    file_id: FileId
    content: str
    language: str
    language_probability: float | None = Field(default=None, ge=0, le=1, description=PROBABILITY)
    language_doubtful: bool = Field(default=False, description=DOUBTFUL)
    qa: QAReport
    vtt_file_id: FileId | None = None
    json_file_id: FileId | None = None
    files: dict[str, FileId] = Field(
        default_factory=dict,
        description="The subtitles in the other formats, by format: those asked for (`formats`, "
        "`vtt`, `json_output`); fix_srt's also in the input's own format when it is not SRT.",
    )
    urls: dict[str, str] = Field(
        default_factory=dict, description="Fresh URLs of those files, by format."
    )
    fix: FixReport | None = Field(default=None, description="What fix_srt changed (fix_srt only).")
    asr: ProviderUsage | None = Field(
        default=None, description="Where speech was recognised (generate_srt only)."
    )
    translations: tuple[Translation, ...] = Field(
        default=(), description="One per target language (generate_srt with target_languages)."
    )
    manifest_id: FileId | None = Field(
        default=None,
        description="With translations: the stored manifest that lists the SRT and them.",
    )
    package_file_id: FileId | None = Field(
        default=None, description="With package: the MP4 with a subtitle track per language."
    )
    package_url: str | None = Field(default=None, description="A fresh URL of that MP4.")
    review: ReviewRecord | None = Field(
        default=None, description="With a reviewer in the loop: what they did (fix_srt)."
    )

    @property
    def output_id(self) -> str:
        return self.manifest_id or self.file_id


# ---- translation -----------------------------------------------------------------------------


class TranslateSrtRequest(_Frozen):
    """Which languages to translate an SRT into, and how. Cue count and times never change.

    The endpoint and its API key come from settings (``MEDIAFLOWS_LLM__*``), never from here.
    """

    target_languages: tuple[str, ...] = Field(
        min_length=1,
        max_length=20,
        description="BCP-47 codes (de, fr, pt-BR, zh-Hans): one SRT each.",
    )
    source_language: str | None = Field(
        default=None, description="The SRT's language; None: guessed from its text."
    )
    model: str | None = Field(
        default=None, max_length=200, description="One of MEDIAFLOWS_LLM__MODELS; None: the first."
    )
    sys_msg: str | None = Field(
        default=None,
        max_length=4000,
        description="Extra instructions for the model (register, audience, formality).",
    )
    glossary: tuple[str, ...] = Field(
        default=(),
        max_length=500,
        description='Terms kept as they are ("Prefect") or translated as given '
        '("pull request=Pull-Request").',
    )
    bilingual: bool = Field(
        default=False, description="Each cue shows the original line above the translation."
    )
    normalise: bool = Field(
        default=False,
        description="Write LF line ends and no byte-order mark (default: as the source has them).",
    )
    vtt: bool = Field(
        default=False,
        description="Also store a WebVTT file per language (the language in its header), for "
        "web players. The same as listing vtt in `formats`.",
    )
    formats: tuple[ExtraFormat, ...] = Field(
        default=(),
        max_length=5,
        description="Formats each language is also stored in besides SRT: vtt (web players, "
        "YouTube; its Language header), ass and ssa (editors, styled players), ttml (the "
        "IMSC1 text profile broadcasters and streaming platforms take), sbv (YouTube).",
    )
    condense: bool = Field(
        default=True,
        description="Ask the model once more to condense a cue whose translation is over its "
        "character budget (the language's characters a second × the cue's duration).",
    )
    merge_short: bool = Field(
        default=False,
        description="Translate two short neighbouring cues of one sentence (each at most 2 s) "
        "as one window, its translation cut in two where both read slowest; the times stay the "
        "source's.",
    )
    track: TrackChoice = None
    review: ReviewField = "never"
    review_timeout_s: ReviewTimeoutField = 86_400
    review_timeout: ReviewRuleField = "deliver"

    @field_validator("target_languages")
    @classmethod
    def _known_languages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _language_tags(value)

    @field_validator("source_language")
    @classmethod
    def _known_source(cls, value: str | None) -> str | None:
        return None if value is None else _language_tags((value,))[0]

    @field_validator("glossary")
    @classmethod
    def _glossary_entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            term, _, translation = entry.partition("=")
            if not term.strip() or ("=" in entry and not translation.strip()):
                raise ValueError(f"glossary entry {entry!r}: TERM or TERM=TRANSLATION")
        return tuple(e.strip() for e in value)

    @model_validator(mode="after")
    def _source_is_no_target(self) -> TranslateSrtRequest:
        if self.source_language is not None and self.source_language in self.target_languages:
            raise ValueError(f"{self.source_language!r} is the source language, not a target")
        return self

    def for_language(self, language: str) -> dict[str, Any]:
        """The options one language's SRT depends on (its output id): every field but the
        other targets and the extra formats, so that adding a language (or WebVTT) later finds
        the others again."""
        return {
            **self.id_options(exclude={"target_languages", "vtt", "formats"}),
            "language": language,
        }

    def extra_formats(self) -> tuple[str, ...]:
        """The formats each language is stored in besides SRT, in the order asked (``vtt``
        first when asked by the flag)."""
        return tuple(dict.fromkeys((("vtt",) if self.vtt else ()) + self.formats))

    def id_options(self, exclude: set[str] | None = None) -> dict[str, Any]:
        """The request as output ids take it: ``merge_short`` only when on and ``track`` only
        when given, so that the ids of translations made before they existed stay theirs."""
        dropped = (exclude or set()) | (set() if self.merge_short else {"merge_short"})
        dropped |= set() if self.track else {"track"}
        dropped |= set() if self.formats else {"formats"}
        return self.model_dump(mode="json", exclude=dropped | review_dropped(self))


class ReadingSpeedReport(_Frozen):
    """A translation's reading speed before and after the condense requests: cues read faster
    than the language's limit (``max_cps``), and characters over the cues' budgets (``max_cps``
    × duration, within the line rules)."""

    too_fast_before: int = Field(default=0, description="Cues too fast in the first answers.")
    share_too_fast_before: float = Field(default=0.0, description="Their share of the cues.")
    share_too_fast: float = Field(default=0.0, description="The share in the file stored.")
    chars_over_budget_before: int = 0
    chars_over_budget: int = Field(default=0, description="In the file stored.")
    condense_requests: int = Field(default=0, description="Requests asking to condense cues.")
    condensed: int = Field(default=0, description="Cues a condense request made shorter.")
    windows: int = Field(
        default=0, description="Pairs of short cues translated as one window (merge_short)."
    )


class TranslationReport(_Frozen):
    """What translate_srt did for one language."""

    language: str
    model: str
    source_language: str = Field(description="Given, or guessed from the text ('' unknown).")
    cues: int
    translated: int
    untranslated: tuple[int, ...] = Field(
        default=(), description="Cues left in the source language (refused or failed answers)."
    )
    chunks: int
    fallback_chunks: tuple[int, ...] = Field(
        default=(), description="Chunks (0-based) that got no valid answer: their source text."
    )
    problems: tuple[str, ...] = Field(default=(), description="Every refused answer, and why.")
    retries: int = 0
    too_fast: tuple[int, ...] = Field(
        default=(),
        description="Cues read faster than the language's limit: timing is locked, the text "
        "is longer in this language.",
    )
    unfit: tuple[int, ...] = Field(
        default=(),
        description="Cues over the language's line rules even re-wrapped (more than its lines, "
        "a line longer than its characters a line), fallback cues included.",
    )
    reading: ReadingSpeedReport = Field(default_factory=ReadingSpeedReport)
    response_format: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0


class TranslationRef(_Frozen):
    """One stored translation, as a manifest records it."""

    language: str
    file_id: FileId
    qa: QAReport
    report: TranslationReport | None = Field(
        default=None, description="None when Whisper translated (generate_srt, English)."
    )
    vtt_file_id: FileId | None = Field(
        default=None, description="The language's WebVTT file (requested with vtt)."
    )
    files: dict[str, FileId] = Field(
        default_factory=dict,
        description="The language's files in the other formats asked for (`formats`), by "
        "format: vtt, ass, ttml …",
    )


class Translation(TranslationRef):
    """One stored translation, with its text and a fresh URL."""

    media_url: str
    content: str
    vtt_url: str | None = Field(default=None, description="A fresh URL of the WebVTT file.")
    urls: dict[str, str] = Field(
        default_factory=dict, description="Fresh URLs of the files in the other formats."
    )


class TranslateSrtDetails(_Frozen):
    """What translate_srt records in its manifest (``<name>.translations.json``)."""

    source_language: str
    translations: tuple[TranslationRef, ...]
    review: ReviewRecord | None = Field(
        default=None, description="With a reviewer in the loop: who answered when, what changed."
    )


class TranslateSrtResult(OperationResult):
    """One stored SRT per target language, and the manifest listing them."""

    file_id: FileId = Field(description="The manifest.")
    source_language: str
    translations: tuple[Translation, ...]
    review: ReviewRecord | None = Field(
        default=None, description="With a reviewer in the loop: who answered when, what changed."
    )

    @property
    def output_id(self) -> str:
        return self.file_id


# ---- package ---------------------------------------------------------------------------------


class PackageRequest(_Frozen):
    """Which subtitles go into the deliverable MP4, and whether one language is burnt in."""

    subtitles: tuple[FileId, ...] = Field(
        min_length=1,
        max_length=20,
        description="SRT outputs of this video (generate_srt, translate_srt, fix_srt), one a "
        "language: a soft track each, in this order; the first is the default track.",
    )
    burn_in: str | None = Field(
        default=None,
        description="A language of the tracks to draw into the picture as well (re-encodes "
        "the video with x264; without it the video and audio are copied).",
    )
    crf: int = Field(default=20, ge=0, le=51, description="x264 quality when burning in.")
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"
    ] = Field(default="veryfast", description="x264 speed/size trade-off when burning in.")

    @field_validator("subtitles")
    @classmethod
    def _once_each(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise InputError(f"a subtitle file is listed twice: {list(value)}")
        return value

    @field_validator("burn_in")
    @classmethod
    def _known_burn_in(cls, value: str | None) -> str | None:
        return None if value is None else _language_tags((value,))[0]


class PackageTrack(_Frozen):
    """One soft subtitle track of a packaged MP4."""

    language: str = Field(description="The SRT's language (BCP-47).")
    file_id: FileId = Field(description="The SRT it was made from.")
    code: str = Field(description="The ISO 639-2/T language tag in the MP4 (deu, fra, zho).")
    title: str = Field(description="The track's name, in its language (Deutsch, Français).")
    default: bool = False


class PackageDetails(_Frozen):
    """What ``package`` records about its MP4."""

    mode: Literal["copy", "burn_in"]
    duration: float = Field(ge=0)
    tracks: tuple[PackageTrack, ...]
    burn_in: str | None = None


class PackageResult(OperationResult):
    """The stored MP4 with its subtitle tracks."""

    file_id: FileId
    mode: Literal["copy", "burn_in"]
    duration: float
    size: int
    tracks: tuple[PackageTrack, ...]
    burn_in: str | None = None

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


SrtDetails.model_rebuild()
SrtResult.model_rebuild()
