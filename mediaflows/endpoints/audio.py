"""Audio transcriptions (``POST /audio/transcriptions``, or ``/audio/translations`` for English
text from any language) on an OpenAI-compatible speech endpoint, through the one client and its
error table (:mod:`mediaflows.endpoints.client`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mediaflows import cancel
from mediaflows.endpoints.client import SPEECH, openai_client, send
from mediaflows.errors import ASRTimeoutError
from mediaflows.settings import ASREndpoint


def transcribe(
    audio: Path,
    name: str,
    endpoint: ASREndpoint,
    options: dict[str, Any],
    translate: bool = False,
    sleep: Callable[[float], None] = cancel.sleep,
    timeout_s: float | None = None,
) -> Any:
    """The endpoint's answer for one Ogg Opus file (a verbose-JSON object, or the text for a
    server that ignored the format). ``name`` is the endpoint's configured name, for messages;
    ``options`` go to the request as they are (model, language, prompt, granularities).
    ``timeout_s``: this request's own timeout; past it :class:`ASRTimeoutError` is raised at
    once (no retry: the caller cuts the piece in half)."""
    client = openai_client(endpoint)
    if timeout_s is not None:
        client = client.with_options(timeout=timeout_s)
    create = client.audio.translations.create if translate else client.audio.transcriptions.create

    def request() -> Any:
        data = audio.read_bytes()  # read again for each try: the upload consumes it
        return create(file=(audio.name, data, "audio/ogg"), **options)

    where = f"speech endpoint {name!r} ({endpoint.base_url}, model {endpoint.model!r})"
    timeout = None if timeout_s is None else (timeout_s, ASRTimeoutError)
    return send(request, SPEECH, where, endpoint, sleep=sleep, timeout=timeout)
