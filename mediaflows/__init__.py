"""mediaflows: media processing (conversion, transcription, subtitles, LLM subtitle repair) run as
Prefect flows. This package is the plain-Python core: it never imports Prefect.

What API users work with is exported here: the requests a run takes, the results it returns, the
stage it reports (``deployments.client.submit``/``status``/``wait`` take and return these).
"""

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
    ProfileFile,
    QAReport,
    SrtDetails,
    SrtResult,
    StoredFile,
    SweepResult,
    TranscribeRequest,
    TranscribeResult,
    TranscriptDetails,
)
from mediaflows.stages import Stage

__all__ = [
    "BatchChild",
    "BatchResult",
    "ConvertDetails",
    "ConvertRequest",
    "ConvertResult",
    "CueRules",
    "FixReport",
    "FixSrtRequest",
    "GenerateSrtRequest",
    "OperationResult",
    "ProfileFile",
    "QAReport",
    "SrtDetails",
    "SrtResult",
    "Stage",
    "StoredFile",
    "SweepResult",
    "TranscribeRequest",
    "TranscribeResult",
    "TranscriptDetails",
]
