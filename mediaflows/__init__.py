"""mediaflows: media processing (conversion, transcription, subtitles, LLM subtitle repair and
translation) run as Prefect flows. This package is the plain-Python core: it never imports
Prefect.

What API users work with is exported here: the requests a run takes, the results it returns, the
stage it reports, and the errors it raises (``deployments.submit``/``status``/``wait`` take and
return these).

The core, from the ground up (each layer imports only the ones below it):

* the contract: :mod:`.errors`, :mod:`.ids`, :mod:`.stages`, :mod:`.languages`,
  :mod:`.settings`, :mod:`.models`; and :mod:`.cancel`, :mod:`.files` (stopping work, atomic
  writes);
* the domains: :mod:`.media` (ffmpeg), :mod:`.endpoints` (OpenAI-compatible endpoints),
  :mod:`.speech` (recognition), :mod:`.subtitles` (cues, files, rules, repair, translation),
  :mod:`.store` (profiles on disk or S3);
* :mod:`.operations`: every operation declared once, with its procedure;
* :mod:`.batches`: one operation over many files (batches, the sweep).
"""

from mediaflows.errors import (
    ConfigurationError,
    InputError,
    LLMOutputError,
    MediaflowsError,
    ResourceError,
    RunFailedError,
    TransientError,
)
from mediaflows.models import (
    BatchChild,
    BatchResult,
    ConvertDetails,
    ConvertRequest,
    ConvertResult,
    CueRules,
    FixReport,
    FixSrtRequest,
    GenerateSrtRequest,
    OperationResult,
    PackageDetails,
    PackageRequest,
    PackageResult,
    PackageTrack,
    ProfileFile,
    ProviderUsage,
    QAReport,
    ReadingSpeedReport,
    SrtDetails,
    SrtResult,
    StoredFile,
    SweepResult,
    TranscribeRequest,
    TranscribeResult,
    TranscriptDetails,
    TranslateSrtDetails,
    TranslateSrtRequest,
    TranslateSrtResult,
    Translation,
    TranslationRef,
    TranslationReport,
)
from mediaflows.stages import Stage

__all__ = [
    "BatchChild",
    "BatchResult",
    "ConfigurationError",
    "ConvertDetails",
    "ConvertRequest",
    "ConvertResult",
    "CueRules",
    "FixReport",
    "FixSrtRequest",
    "GenerateSrtRequest",
    "InputError",
    "LLMOutputError",
    "MediaflowsError",
    "OperationResult",
    "PackageDetails",
    "PackageRequest",
    "PackageResult",
    "PackageTrack",
    "ProfileFile",
    "ProviderUsage",
    "QAReport",
    "ReadingSpeedReport",
    "ResourceError",
    "RunFailedError",
    "SrtDetails",
    "SrtResult",
    "Stage",
    "StoredFile",
    "SweepResult",
    "TranscribeRequest",
    "TranscribeResult",
    "TranscriptDetails",
    "TransientError",
    "TranslateSrtDetails",
    "TranslateSrtRequest",
    "TranslateSrtResult",
    "Translation",
    "TranslationRef",
    "TranslationReport",
]
