"""Chat completions with structured JSON answers, as the LLM operations use them, and what the
endpoint can do learnt per process, not assumed.

* **Output mode**: a server that refuses ``json_schema`` output is asked again at once in JSON mode
  (remembered per endpoint and model, and reported by the caller).
* **Faults**: the table of :mod:`mediaflows.endpoints.client`; a configuration error trips the
  endpoint's circuit breaker, so that the run's other requests fail without being sent.
* **Requests in flight** follow the server's real parallelism (:mod:`.window`), and a request's
  timeout allows for those queued before it: a single-slot server is not flooded into timeouts.
* **Stopping**: a cancelled run stops waiting for its requests at once.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mediaflows import cancel
from mediaflows.endpoints.client import CHAT, openai_client, redact, send
from mediaflows.endpoints.window import forget_windows
from mediaflows.errors import ConfigurationError
from mediaflows.settings import LLMSettings, get_settings

if TYPE_CHECKING:  # imported where used: ~1 s that every flow-run process would pay otherwise
    import openai

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completion:
    """One chat completion's text and token counts."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"
    response_format: str = ""


#: ... a body about the structured-output mode: asked again in JSON mode.
_FORMAT = re.compile(r"response_format|json_schema|json_object|grammar", re.IGNORECASE)


def _refuses_schema(exc: openai.OpenAIError) -> bool:
    """The server refused the ``json_schema`` output mode (llama.cpp: HTTP 500, "Input should
    be 'text' or 'json_object'")."""
    import openai

    if not isinstance(exc, openai.APIStatusError) or exc.status_code in (401, 403, 404, 429):
        return False
    text = f"{getattr(exc, 'message', '')} {getattr(exc, 'body', '')}"
    return bool(_FORMAT.search(text))


# ---- what the endpoint can do, learnt per process ------------------------------------------

#: (base URL, model) → the structured-output mode the server took.
_formats: dict[tuple[str, str], str] = {}
#: (base URL, model) → (until when, the configuration error): the circuit breaker.
_tripped: dict[tuple[str, str], tuple[float, ConfigurationError]] = {}
_endpoint_lock = threading.Lock()
#: How long a tripped breaker fails requests to its endpoint without sending them.
BREAKER_S = 30.0


def forget_endpoints() -> None:
    """Forget what was learnt about endpoints (output modes, open breakers, windows)."""
    with _endpoint_lock:
        _formats.clear()
        _tripped.clear()
    forget_windows()


def response_format(settings: LLMSettings, model: str) -> str:
    """The structured-output mode requests to this endpoint and model use now."""
    with _endpoint_lock:
        return _formats.get((settings.base_url, model), settings.response_format)


def _trip(settings: LLMSettings, model: str, error: ConfigurationError) -> None:
    with _endpoint_lock:
        _tripped[(settings.base_url, model)] = (time.monotonic() + BREAKER_S, error)


def _check_breaker(settings: LLMSettings, model: str) -> None:
    with _endpoint_lock:
        tripped = _tripped.get((settings.base_url, model))
    if tripped is not None and tripped[0] > time.monotonic():
        error = tripped[1]
        raise type(error)(f"{error} (circuit open: not sent)")


def _response_format_param(mode: str, name: str, schema: dict[str, Any]) -> Any:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }
    return {"type": "json_object"}


def complete(
    messages: list[dict[str, str]],
    model: str,
    schema: tuple[str, dict[str, Any]],
    settings: LLMSettings | None = None,
    sleep: Callable[[float], None] = cancel.sleep,
    max_tokens: int | None = None,
    temperature: float | None = None,
    timeout_s: float | None = None,
) -> Completion:
    """One chat completion with structured JSON output (``schema``: its name and JSON schema;
    in JSON mode the prompt must describe it), through :func:`~.client.send` (its retries and
    error table). A server that refuses ``json_schema`` is asked again at once in JSON mode
    (remembered). A configuration error trips the endpoint's breaker: the run's other requests
    fail at once.
    """
    settings = settings or get_settings().llm
    client = openai_client(settings)
    options: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
    sent_mode = [response_format(settings, model)]

    def request() -> Any:
        sent_mode[0] = mode = response_format(settings, model)
        return client.with_options(timeout=timeout_s or settings.timeout_s).chat.completions.create(
            model=model,
            messages=messages,  # type: ignore[arg-type]
            response_format=_response_format_param(mode, *schema),
            temperature=settings.temperature if temperature is None else temperature,
            **options,
        )

    def json_mode_instead(exc: openai.OpenAIError) -> bool:
        if sent_mode[0] != "json_schema" or not _refuses_schema(exc):
            return False
        with _endpoint_lock:
            _formats[(settings.base_url, model)] = "json_object"
        log.warning(
            "LLM endpoint %s refused json_schema output (%s); using JSON mode",
            settings.base_url, redact(str(exc), settings.api_key)[:200],
        )  # fmt: skip
        return True

    answer = send(
        request,
        CHAT,
        f"LLM endpoint {settings.base_url} (model {model!r})",
        settings,
        sleep=sleep,
        before_attempt=functools.partial(_check_breaker, settings, model),
        ask_again_now=json_mode_instead,
        on_refusal=functools.partial(_trip, settings, model),
    )
    usage = answer.usage
    choice = answer.choices[0] if answer.choices else None
    content = choice.message.content if choice is not None else None
    return Completion(
        content=content or "",
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        finish_reason=str(choice.finish_reason) if choice is not None else "",
        response_format=sent_mode[0],
    )
