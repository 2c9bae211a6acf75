"""Speech recognition: the model in this process (faster-whisper) or any OpenAI-compatible speech
endpoint, both handing on the same records and both checked by the same hallucination guard.

* :mod:`.records`: :class:`Word`, :class:`Segment`, :class:`Transcription` (what subtitles are
  built from; the unit Prefect caches).
* :mod:`.guard`: the hallucination guard.
* :mod:`.whisper`: which model a request runs on, loading it once per process, guarded
  transcription of long files window by window.
* :mod:`.endpoint`: a file's audio cut into pieces for an endpoint, each piece's answer, the
  pieces merged into one transcription in one language.
* :mod:`.alignment`: word times for an endpoint's text that came without them, from the
  bundled model on the same audio.
* :mod:`.pacing`: the pieces sent at the endpoint's measured speed and parallelism, a piece that
  timed out cut in half, answers cached by span.
* :mod:`.windows`: a long file's windows (cut at quiet moments), run in the order that detects
  the language once, joined into one transcription; each window a resumable unit of work.
* :mod:`.scripts`: Chinese in the script a request asks for (``zh-Hans``, ``zh-Hant``).
"""

from mediaflows.speech.endpoint import (
    Piece,
    PieceResult,
    cut_pieces,
    heard_elsewhere,
    merge,
    piece_cache_key,
    replace_pieces,
    transcribe_piece,
)
from mediaflows.speech.guard import Guard, is_hallucination
from mediaflows.speech.pacing import Progress as PiecesProgress
from mediaflows.speech.pacing import transcribe_by_endpoint
from mediaflows.speech.records import Heard, Segment, Span, Transcription, Word
from mediaflows.speech.scripts import in_script
from mediaflows.speech.whisper import (
    BUNDLED,
    joined,
    load_model,
    loaded_models,
    model_id,
    model_loads,
    model_name,
    tool_version,
    transcribe,
    transcribe_file,
    transcribe_span,
    unload_idle,
)

__all__ = [
    "BUNDLED",
    "Guard",
    "Heard",
    "Piece",
    "PieceResult",
    "PiecesProgress",
    "Segment",
    "Span",
    "Transcription",
    "Word",
    "cut_pieces",
    "heard_elsewhere",
    "in_script",
    "is_hallucination",
    "joined",
    "load_model",
    "loaded_models",
    "merge",
    "model_id",
    "model_loads",
    "model_name",
    "piece_cache_key",
    "replace_pieces",
    "tool_version",
    "transcribe",
    "transcribe_by_endpoint",
    "transcribe_file",
    "transcribe_piece",
    "transcribe_span",
    "unload_idle",
]
