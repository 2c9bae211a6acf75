"""Settings, read once from the environment: prefix ``MEDIAFLOWS_``, one group per subsystem,
nested with ``__`` (``MEDIAFLOWS_STORE__URL``, ``MEDIAFLOWS_WHISPER__MODEL``).

Secrets are ``SecretStr``: they are never flow parameters and never logged. Rules that tie one
field to another are checked here, when the settings are read, not where they are used.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from mediaflows.errors import InputError

Device = Literal["auto", "cpu", "cuda"]
ResponseFormat = Literal["json_schema", "json_object"]


def _default_home() -> Path:
    return Path.home() / ".mediaflows"


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StoreSettings(_Group):
    """Where profiles live (``MEDIAFLOWS_STORE__*``)."""

    url: str = Field(
        default="",
        description="A local directory (default `HOME/store`) or `s3://bucket/prefix`.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint for MinIO or other S3-compatible stores."
    )
    s3_region: str | None = Field(default=None, description="S3 region (else boto3's default).")
    s3_access_key_id: SecretStr | None = Field(
        default=None, description="S3 key id (else the standard AWS environment/config chain)."
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret key (else the standard AWS environment/config chain)."
    )
    media_url_expiry_s: int = Field(
        default=3600, ge=60, le=7 * 24 * 3600, description="Lifetime of presigned S3 media URLs."
    )
    output_retention_s: float | None = Field(
        default=None,
        gt=0,
        description="Outputs older than this are removed by the sweep (and inputs older than "
        "this are no longer swept); default: keep outputs.",
    )

    @model_validator(mode="after")
    def _check(self) -> StoreSettings:
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("set both s3_access_key_id and s3_secret_access_key, or neither")
        if "://" in self.url and not self.url.startswith(("s3://", "file://")):
            raise ValueError(f"unsupported store URL {self.url!r} (use a path or s3://)")
        return self


class MediaSettings(_Group):
    """ffmpeg and ffprobe (``MEDIAFLOWS_MEDIA__*``)."""

    ffmpeg_binary: str = Field(default="ffmpeg", description="ffmpeg executable.")
    ffprobe_binary: str = Field(default="ffprobe", description="ffprobe executable.")
    ffmpeg_timeout_s: float = Field(
        default=6 * 3600,
        gt=0,
        description="Longest an ffmpeg conversion may run (decoding: longest it may produce "
        "nothing).",
    )
    ffprobe_timeout_s: float = Field(default=60, gt=0, description="Longest a probe may run.")
    max_media_duration_s: float = Field(
        default=12 * 3600, gt=0, description="Inputs claiming a longer duration are refused."
    )


class WhisperSettings(_Group):
    """The speech model (``MEDIAFLOWS_WHISPER__*``)."""

    model: str | None = Field(
        default=None,
        description="Model name or CTranslate2 model directory. Bundled, offline: `tiny.en` "
        "(English) and `base` (multilingual). Default: `tiny.en` for English requests, `base` "
        "for any other language, for detection and for `translate`.",
    )
    device: Device = Field(default="auto", description="auto: CUDA when present, else CPU.")
    compute_type: str = Field(
        default="auto", description="auto: float16 on CUDA, int8 on CPU; or any CTranslate2 type."
    )
    cpu_threads: int = Field(default=0, ge=0, description="0: CTranslate2's default.")
    num_workers: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Model runs one process makes at once (CTranslate2 replicas; they share the "
        "weights): two windows or files given to one warm worker run in parallel, not one after "
        "the other. 0: the `gpu` limit, at most 4.",
    )
    batched: bool = Field(
        default=False, description="Use BatchedInferencePipeline (GPU throughput)."
    )
    batch_size: int = Field(default=8, ge=1, le=64)
    window_s: float = Field(
        default=300.0,
        ge=30.0,
        description="Audio is decoded and transcribed this many seconds at a time, cut at the "
        "quietest moment near the end of each window: memory stays bounded on long files.",
    )
    spread_windows: bool = Field(
        default=True,
        description="A long file's windows, when its run came from a deployment, run as child "
        "runs (`transcribe_window`) on whichever workers of the pool are free; false: all in the "
        "run's own process.",
    )
    download_root: Path | None = Field(
        default=None, description="Where named models are downloaded (when a hub is reachable)."
    )
    idle_unload_s: float = Field(
        default=900,
        ge=0,
        description="A warm worker drops a model no run used for this long (its GPU memory goes "
        "back); 0: keep models loaded.",
    )


class EndpointSettings(_Group):
    """What every OpenAI-compatible endpoint is told: where it is, its key, and how long and how
    often a request may try. The chat endpoint (``llm``) and each speech endpoint
    (``asr.endpoints``) extend it."""

    base_url: str = Field(description="Base URL (`https://api.openai.com/v1`).")
    api_key: SecretStr = Field(
        default=SecretStr("not-needed"),
        description="API key (a secret: never a flow parameter, never logged). Local servers "
        "ignore it.",
    )
    timeout_s: float = Field(default=120, gt=0, description="Longest one request may take.")
    http_attempts: int = Field(
        default=4, ge=1, le=10, description="Tries per request on 429/5xx/timeouts/resets."
    )
    max_retry_after_s: float = Field(
        default=60, ge=0, description="Longest wait honoured from a `Retry-After` header."
    )


class LLMSettings(EndpointSettings):
    """The OpenAI-compatible chat endpoint fix_srt and translate_srt talk to
    (``MEDIAFLOWS_LLM__*``): OpenAI, Ollama, vLLM, LM Studio, llama.cpp, or anything else that
    speaks chat completions."""

    base_url: str = Field(
        default="http://127.0.0.1:11434/v1",
        description="Chat-completions base URL (default: a local Ollama); "
        "`https://api.openai.com/v1` for OpenAI, `http://host:8000/v1` for vLLM.",
    )
    models: tuple[str, ...] = Field(
        default=("llama3.2",),
        min_length=1,
        description='Models a run may pick, as JSON (`["gpt-4o-mini","gpt-4o"]`); the first '
        "is the default.",
    )
    response_format: ResponseFormat = Field(
        default="json_schema",
        description="Structured output: a strict JSON schema, or plain JSON mode for servers "
        "without schema support.",
    )
    chunk_cues: int = Field(default=30, ge=1, le=200, description="Cues sent per request.")
    context_cues: int = Field(
        default=2, ge=0, le=20, description="Neighbouring cues sent (read-only) on each side."
    )
    chunk_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Tries per chunk when an answer is invalid (ids, count, empty cue); then "
        "the chunk keeps its original text.",
    )
    min_similarity: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="A corrected cue less similar than this to the original (difflib ratio) "
        "is refused: a repair, not a rewrite.",
    )
    temperature: float = Field(
        default=0.0, ge=0, le=2, description="Sampling temperature of the first try of a chunk."
    )
    max_fallback_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="A run in which more chunks than this share got no valid answer (or that "
        "changed nothing while answers were refused) fails, storing nothing.",
    )

    def resolve_model(self, selector: str | None) -> str:
        """The configured model a request picks (the first one when ``selector`` is None);
        :class:`InputError` for a model that is not configured."""
        if selector is None:
            return self.models[0]
        if selector not in self.models:
            raise InputError(
                f"model {selector!r} is not configured; choose one of: {', '.join(self.models)} "
                "(MEDIAFLOWS_LLM__MODELS)"
            )
        return selector


class ASREndpoint(EndpointSettings):
    """One OpenAI-compatible speech-to-text endpoint (``POST /audio/transcriptions``): OpenAI,
    Groq, speaches, vLLM, LocalAI, a faster-whisper server on a GPU box."""

    model: str = Field(description="The model it runs (`whisper-1`, `whisper-large-v3`).")
    timeout_s: float = Field(default=600, gt=0, description="Longest one request may take.")
    max_upload_mb: float = Field(
        default=25.0, gt=0, description="Largest upload it takes (OpenAI: 25 MB)."
    )
    word_timestamps: bool = Field(
        default=True,
        description="It returns word times (`timestamp_granularities[]=word`); else word times "
        "are estimated inside each segment.",
    )
    response_format: Literal["verbose_json", "json"] = Field(
        default="verbose_json",
        description="verbose_json: segments (and words) with times; json: text only (OpenAI's "
        "gpt-4o-transcribe): each piece is then one segment, its word times estimated, so keep "
        "`max_piece_s` short (e.g. 30).",
    )
    max_piece_s: float = Field(
        default=600,
        ge=10,
        description="Longest piece of audio sent in one request (pieces go out concurrently, "
        "within the `asr` limit and the endpoint's measured parallelism).",
    )
    align_words: bool = Field(
        default=True,
        description="When it gives no word times (segments or text only), take them from the "
        "bundled model on the same audio, matched word by word (a local model run of the "
        "audio); false: spread each segment's words evenly over it.",
    )
    first_piece_s: float = Field(
        default=60,
        ge=10,
        description="Length of the first pieces sent to an endpoint whose speed is not known "
        "yet; later pieces grow with its measured speed (one piece takes at most a third of "
        "`timeout_s`), up to `max_piece_s`.",
    )
    bitrate_kbps: int = Field(
        default=32, ge=8, le=128, description="Opus bitrate of the audio sent (16 kHz mono)."
    )


class ASRSettings(_Group):
    """Speech recognition by an external endpoint (``MEDIAFLOWS_ASR__*``); a request's
    ``provider`` names one of ``endpoints`` (``local``: the model in the worker)."""

    endpoints: dict[str, ASREndpoint] = Field(
        default_factory=dict,
        description='Endpoints by name, as JSON: `{"groq": {"base_url": "https://api.groq.com/'
        'openai/v1", "model": "whisper-large-v3", "api_key": "gsk_…"}}`; optional fields: '
        "`max_upload_mb`, `word_timestamps`, `timeout_s`, `http_attempts`, `max_piece_s`, "
        "`bitrate_kbps`, `first_piece_s`.",
    )
    check_language: bool = Field(
        default=True,
        description="When a request names no language, the bundled multilingual model also "
        "listens to 30 s of the file: a confident disagreement with the endpoint's detected "
        "language (or a language mediaflows does not know) fails the run with an input error "
        "naming both, instead of subtitles in the wrong language.",
    )
    check_language_confidence: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="How sure the local model must be of another language to fail the run.",
    )

    @model_validator(mode="after")
    def _check(self) -> ASRSettings:
        if "local" in self.endpoints:
            raise ValueError("'local' names the model in the worker: choose another name")
        return self

    def endpoint(self, name: str) -> ASREndpoint:
        """The endpoint a request's ``provider`` names; :class:`InputError` for another name."""
        if name not in self.endpoints:
            known = ", ".join(["local", *self.endpoints])
            raise InputError(
                f"provider {name!r} is not configured; choose one of: {known} "
                "(MEDIAFLOWS_ASR__ENDPOINTS)"
            )
        return self.endpoints[name]


class ServerSettings(_Group):
    """The embedded Prefect server, and how runs show they are alive (``MEDIAFLOWS_SERVER__*``).
    ``PREFECT_API_URL``, when set, names another server and nothing is started."""

    host: str = Field(
        default="127.0.0.1",
        description="Host of the embedded Prefect server. Anything but a loopback address needs "
        "`auth` (or `mediaflows server start --insecure`).",
    )
    port: int = Field(default=4200, ge=1, le=65535, description="Its port.")
    auth: SecretStr | None = Field(
        default=None,
        description="A secret: the HTTP Basic auth string of the Prefect server (any string, e.g. "
        "`admin:` and a long random password). The embedded server then requires it "
        "(`PREFECT_SERVER_API_AUTH_STRING`), and every process mediaflows starts or configures "
        "sends it (`PREFECT_API_AUTH_STRING`): workers, flow runs, the CLI, the Python API; also "
        "to a server `PREFECT_API_URL` names. Never a flow parameter, never logged.",
    )
    heartbeat_s: int = Field(
        default=30,
        ge=30,
        description="Seconds between the heartbeats of every mediaflows flow run (Prefect's "
        "minimum is 30); they let the server tell a dead worker's runs from slow ones.",
    )
    zombie_after_s: int = Field(
        default=200,
        ge=45,
        description="A flow run that sent no heartbeat (or, once Pending, no news) for this long "
        "is marked Crashed by the server (the `mediaflows-crashed-runs` automation). Above "
        "Prefect's default heartbeat (180 s), so runs started by code that did not set "
        "`heartbeat_s` are not taken for dead either. At least `heartbeat_s` + 15.",
    )

    @model_validator(mode="after")
    def _check(self) -> ServerSettings:
        if self.auth is not None and not self.auth.get_secret_value().strip():
            raise ValueError("auth is empty: set a long random string, or unset it")
        if self.zombie_after_s < self.heartbeat_s + 15:
            raise ValueError(
                f"zombie_after_s ({self.zombie_after_s}) must exceed heartbeat_s "
                f"({self.heartbeat_s}) by 15 s at least, or busy runs are taken for dead"
            )
        return self


class OrchestrationSettings(_Group):
    """How much runs at once, across workers and inside one (``MEDIAFLOWS_ORCHESTRATION__*``)."""

    gpu_limit: int = Field(
        default=1, ge=1, description="Model runs at once across all workers (limit `tag:gpu`)."
    )
    llm_limit: int = Field(
        default=4, ge=1, description="LLM requests at once across all workers (limit `tag:llm`)."
    )
    asr_limit: int = Field(
        default=4,
        ge=1,
        description="Requests to speech endpoints at once across all workers (limit `tag:asr`).",
    )
    batch_in_flight: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Child runs a batch keeps in flight (bounded so the Prefect server is never "
        "flooded; the `gpu`/`llm` limits bound the heavy parts).",
    )
    review_poll_s: float = Field(
        default=2.0,
        ge=0.1,
        le=60,
        description="Seconds between looks, by a run paused for a review in-process, for the "
        "reviewer's answer (a suspended run is scheduled again by the server instead).",
    )
    in_process_runs: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Runs the Python API executes at once in the submitting process when no "
        "worker is online (the others wait Pending).",
    )
    worker_poll_s: float = Field(
        default=0.25,
        gt=0,
        le=30,
        description="How often a warm worker (`mediaflows worker`) asks the server for runs to "
        "start: the most a submitted run waits for an idle worker.",
    )
    housekeeping_s: float = Field(
        default=10.0,
        ge=1,
        le=600,
        description="Seconds between a worker's looks for crashed runs to resubmit and reviews "
        "past their deadline to end (and, in a warm worker, idle models to drop).",
    )
    batch_resubmits: int = Field(
        default=2,
        ge=0,
        le=10,
        description="How often a distributed batch submits a file again whose child run Crashed "
        "(its worker died); outputs are written once whatever the number of runs.",
    )
    docker_gpus: str = Field(
        default="",
        pattern=r"^(|all|\d+(,\d+)*)$",
        description="GPUs the docker pool's containers get, as `docker run --gpus` names them: "
        "empty (none: the CPU image), `all`, or device ids `0,1`. Read when `mediaflows setup` "
        "creates the `mediaflows-docker` pool.",
    )


#: Flat names of earlier releases → the grouped field they now set. Still read (with a warning),
#: so that a deployment configured for an earlier release does not silently lose its store.
LEGACY_ENV: dict[str, tuple[str, str]] = {
    "MEDIAFLOWS_STORE_URL": ("store", "url"),
    "MEDIAFLOWS_S3_ENDPOINT_URL": ("store", "s3_endpoint_url"),
    "MEDIAFLOWS_S3_REGION": ("store", "s3_region"),
    "MEDIAFLOWS_S3_ACCESS_KEY_ID": ("store", "s3_access_key_id"),
    "MEDIAFLOWS_S3_SECRET_ACCESS_KEY": ("store", "s3_secret_access_key"),
    "MEDIAFLOWS_MEDIA_URL_EXPIRY_S": ("store", "media_url_expiry_s"),
    "MEDIAFLOWS_OUTPUT_RETENTION_S": ("store", "output_retention_s"),
    "MEDIAFLOWS_FFMPEG_BINARY": ("media", "ffmpeg_binary"),
    "MEDIAFLOWS_FFPROBE_BINARY": ("media", "ffprobe_binary"),
    "MEDIAFLOWS_FFMPEG_TIMEOUT_S": ("media", "ffmpeg_timeout_s"),
    "MEDIAFLOWS_FFPROBE_TIMEOUT_S": ("media", "ffprobe_timeout_s"),
    "MEDIAFLOWS_MAX_MEDIA_DURATION_S": ("media", "max_media_duration_s"),
    "MEDIAFLOWS_SERVER_HOST": ("server", "host"),
    "MEDIAFLOWS_SERVER_PORT": ("server", "port"),
    "MEDIAFLOWS_HEARTBEAT_S": ("server", "heartbeat_s"),
    "MEDIAFLOWS_ZOMBIE_AFTER_S": ("server", "zombie_after_s"),
    "MEDIAFLOWS_GPU_LIMIT": ("orchestration", "gpu_limit"),
    "MEDIAFLOWS_LLM_LIMIT": ("orchestration", "llm_limit"),
    "MEDIAFLOWS_BATCH_IN_FLIGHT": ("orchestration", "batch_in_flight"),
    "MEDIAFLOWS_IN_PROCESS_RUNS": ("orchestration", "in_process_runs"),
    "MEDIAFLOWS_BATCH_RESUBMITS": ("orchestration", "batch_resubmits"),
}


class _LegacyEnv(PydanticBaseSettingsSource):
    """The flat variables of :data:`LEGACY_ENV`, below the grouped ones in priority."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole mapping

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, (group, field) in LEGACY_ENV.items():
            value = os.environ.get(name)
            if value is None:
                continue
            warnings.warn(
                f"{name} is deprecated; use MEDIAFLOWS_{group.upper()}__{field.upper()}",
                FutureWarning,
                stacklevel=2,
            )
            found.setdefault(group, {})[field] = value
        return found


class Settings(BaseSettings):
    """Everything mediaflows can be told from outside, one group per subsystem."""

    model_config = SettingsConfigDict(
        env_prefix="MEDIAFLOWS_",
        env_nested_delimiter="__",
        env_file=None,
        extra="ignore",
        frozen=True,
    )

    home: Path = Field(
        default_factory=_default_home,
        description="Directory for the local store, work files, results and the embedded server.",
    )
    work_dir: Path | None = Field(
        default=None, description="Scratch space for runs (default `HOME/work`); emptied per run."
    )
    store: StoreSettings = Field(default_factory=StoreSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    whisper: WhisperSettings = Field(default_factory=WhisperSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    asr: ASRSettings = Field(default_factory=ASRSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _LegacyEnv(settings_cls), file_secret_settings

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        # Frozen: derived defaults are filled once, at construction.
        if not self.store.url:
            object.__setattr__(
                self, "store", self.store.model_copy(update={"url": str(self.home / "store")})
            )
        if self.work_dir is None:
            object.__setattr__(self, "work_dir", self.home / "work")
        return self

    @property
    def work_path(self) -> Path:
        """The scratch directory (``work_dir`` resolved)."""
        assert self.work_dir is not None
        return self.work_dir


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
