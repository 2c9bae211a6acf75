"""OpenAI-compatible endpoints, chat and speech, hosted or self-hosted (OpenAI, Groq, Ollama,
vLLM, llama.cpp, speaches, a faster-whisper server): one client, one error table, one retry
loop, one request window. The ``openai`` package speaks the protocol.

* :mod:`.client`: the connection pool per endpoint, the error table (:func:`map_error`), the
  retry loop (:func:`send`), cancellable requests, key redaction.
* :mod:`.window`: requests in flight fitted to the endpoint's real parallelism.
* :mod:`.chat`: chat completions with structured JSON answers (output mode learnt, breaker).
* :mod:`.audio`: audio transcriptions and translations.
"""

from mediaflows.endpoints.audio import transcribe
from mediaflows.endpoints.chat import Completion, complete, forget_endpoints, response_format
from mediaflows.endpoints.client import (
    CHAT,
    SPEECH,
    EndpointKind,
    cancellable,
    map_error,
    redact,
    send,
)
from mediaflows.endpoints.window import Window, window

__all__ = [
    "CHAT",
    "SPEECH",
    "Completion",
    "EndpointKind",
    "Window",
    "cancellable",
    "complete",
    "forget_endpoints",
    "map_error",
    "redact",
    "response_format",
    "send",
    "transcribe",
    "window",
]
