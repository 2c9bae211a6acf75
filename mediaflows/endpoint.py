"""One OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM, LM Studio, llama.cpp), as the
LLM operations use it: structured JSON answers, faults mapped onto the error tree, and what the
endpoint can do learnt per process, not assumed.

* **Output mode**: a server that refuses ``json_schema`` output is asked again at once in JSON mode
  (remembered per endpoint and model, and reported by the caller).
* **Requests in flight** follow the server's real parallelism (:class:`Window`), and a request's
  timeout allows for those queued before it: a single-slot server is not flooded into timeouts.
* **Faults**: 429, 5xx and timeouts are :class:`LLMUnavailableError` (transient), retried here
  with backoff that honours ``Retry-After``; 400/401/403/404/422, a 5xx whose body names an
  unsupported parameter, and a refused connection are configuration errors
  (:class:`LLMRejectedError`, :class:`LLMUnreachableError`): never retried, and the endpoint's
  circuit breaker fails the run's other requests without sending them.
* **Stopping**: a cancelled run stops waiting for its requests at once.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # imported where used: ~1 s that every flow-run process would pay otherwise
    import openai

from pydantic import SecretStr

from mediaflows import cancel
from mediaflows.errors import (
    ConfigurationError,
    LLMRejectedError,
    LLMUnavailableError,
    LLMUnreachableError,
)
from mediaflows.settings import LLMSettings, get_settings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Completion:
    """One chat completion's text and token counts."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"
    response_format: str = ""


_clients: dict[tuple[str, str, float], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def openai_client(base_url: str, api_key: str, timeout_s: float) -> openai.OpenAI:
    """One client (one connection pool) per endpoint and process, shared by every request
    thread (chat or speech). ``max_retries=0``: retries are the caller's, so that Retry-After
    and our error tree decide."""
    import openai

    key = (base_url, api_key, timeout_s)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = openai.OpenAI(
                base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0
            )
        return _clients[key]


def _client(settings: LLMSettings) -> openai.OpenAI:
    return openai_client(settings.base_url, settings.api_key.get_secret_value(), settings.timeout_s)


def retry_after_of(response: Any) -> float | None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(parsed.timestamp() - time.time(), 0.0)


def redact(text: str, secret: SecretStr) -> str:
    """``text`` with the secret's value replaced by ``***`` (servers quote keys in errors)."""
    value = secret.get_secret_value()
    return text.replace(value, "***") if value else text


def _redact(text: str, settings: LLMSettings) -> str:
    return redact(text, settings.api_key)


#: A 4xx/5xx body that names a parameter the server does not take: a configuration error.
_UNSUPPORTED = re.compile(
    r"not supported|unsupported|should be|unknown (?:parameter|field|argument)|"
    r"extra (?:inputs|fields)|not permitted|invalid (?:value|parameter)",
    re.IGNORECASE,
)
#: ... and one that is about the structured-output mode: asked again in JSON mode.
_FORMAT = re.compile(r"response_format|json_schema|json_object|grammar", re.IGNORECASE)


def _body(exc: openai.APIStatusError, settings: LLMSettings) -> str:
    return _redact(str(getattr(exc, "message", "") or exc), settings)[:300]


def _refuses_schema(exc: openai.OpenAIError) -> bool:
    """The server refused the ``json_schema`` output mode (llama.cpp: HTTP 500, "Input should
    be 'text' or 'json_object'")."""
    import openai

    if not isinstance(exc, openai.APIStatusError) or exc.status_code in (401, 403, 404, 429):
        return False
    text = f"{getattr(exc, 'message', '')} {getattr(exc, 'body', '')}"
    return bool(_FORMAT.search(text))


def refused_connection(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _map_error(exc: openai.OpenAIError, settings: LLMSettings, model: str) -> Exception:
    import openai

    where = f"LLM endpoint {settings.base_url} (model {model!r})"
    if isinstance(exc, openai.APITimeoutError):
        return LLMUnavailableError(f"{where}: no answer within {settings.timeout_s:g} s")
    if isinstance(exc, openai.APIConnectionError):
        if refused_connection(exc):
            return LLMUnreachableError(
                f"{where}: connection refused: nothing listens there "
                "(is MEDIAFLOWS_LLM__BASE_URL right, and the server started?)"
            )
        return LLMUnavailableError(f"{where}: cannot connect ({type(exc.__cause__).__name__})")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status >= 500 and _UNSUPPORTED.search(_body(exc, settings)):
            return LLMRejectedError(
                f"{where}: the server cannot take this request ({status}): {_body(exc, settings)}"
            )
        if status == 429 or status >= 500 or status in (408, 409):
            return LLMUnavailableError(f"{where}: busy or failing ({status})",
                                       retry_after=retry_after_of(exc.response))  # fmt: skip
        if status in (401, 403):
            # The server's own words may quote the key (partly masked): leave them out.
            return LLMRejectedError(
                f"{where}: the API key was refused ({status}); set MEDIAFLOWS_LLM__API_KEY"
            )
        hint = " (is the model name right? MEDIAFLOWS_LLM__MODELS)" if status == 404 else ""
        body = _body(exc, settings)
        return LLMRejectedError(f"{where}: request refused ({status}){hint}: {body}")
    return LLMRejectedError(f"{where}: {type(exc).__name__}: {_redact(str(exc), settings)[:300]}")


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
        _windows.clear()


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


class Window:
    """How many requests one endpoint gets at once, fitted to its real parallelism.

    A server that queues (llama.cpp with one slot, Ollama with ``OLLAMA_NUM_PARALLEL=1``) answers
    n requests in flight in about n times the time of one: their time in its queue counts against
    the client's timeout, and too many in flight time out while the server still computes them.
    Each answer tells how many requests the server served at once while it waited
    (``in flight × fastest latency ÷ this latency``, per input character); the window follows
    that estimate plus one (to notice more capacity), within ``1..limit``, starting at ``limit``.
    A timeout halves it.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # The first requests go out at the full limit: on a queueing server the queue-aware
        # timeouts (below) keep them alive, and the first answers shrink the window.
        self.size = limit
        self.in_flight = 0
        self._fastest: float | None = None  # seconds per input character, alone on the server
        self._latency: float | None = None  # recent seconds per request (moving average)
        self._lock = threading.Lock()

    def started(self) -> int:
        with self._lock:
            self.in_flight += 1
            return self.in_flight

    def finished(self, in_flight: int, seconds: float, chars: int, ok: bool) -> None:
        with self._lock:
            self.in_flight -= 1
            if not ok:
                self.size = max(1, self.size // 2)
                return
            self._latency = (
                seconds if self._latency is None else 0.7 * self._latency + 0.3 * seconds
            )
            per_char = seconds / max(chars, 1)
            if self._fastest is None or per_char < self._fastest:
                self._fastest = per_char
            served = in_flight * self._fastest / per_char  # requests the server ran at once
            self.size = max(1, min(self.limit, math.floor(served + 0.5) + 1))

    def timeout(self, base: float, in_flight: int) -> float:
        """The timeout of a request sent with ``in_flight`` in flight: ``base`` for its own
        answer, plus a recent request's time for each one a queueing server may serve first
        (time in the queue is no sign of a dead server)."""
        with self._lock:
            latency = base if self._latency is None else self._latency
        return base + max(in_flight - 1, 0) * latency


_windows: dict[tuple[str, str], Window] = {}


def window(settings: LLMSettings, model: str, limit: int) -> Window:
    """The request window of this endpoint and model in this process."""
    with _endpoint_lock:
        key = (settings.base_url, model)
        found = _windows.get(key)
        if found is None or found.limit != limit:
            found = _windows[key] = Window(limit)
        return found


def cancellable(call: Callable[[], T]) -> T:
    """``call()`` (a blocking HTTP request) in a daemon thread, waited for until the run is
    cancelled: then :class:`~mediaflows.cancel.RunCancelledError` is raised at once and the
    request is left behind (a socket blocked in another thread cannot be interrupted from
    Python); its thread never keeps a stopping process alive, and the server sees the
    connection close when the process ends."""
    outcome: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="mediaflows-llm-request", daemon=True).start()
    while not done.wait(0.1):
        cancel.check()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    result: T = outcome[0]
    return result


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
    in JSON mode the prompt must describe it).

    429/5xx/timeouts are tried ``settings.http_attempts`` times in all, waiting what the server's
    ``Retry-After`` asks (at most ``max_retry_after_s``) or else 0.5, 1, 2 … s with jitter; the
    last failure is raised as :class:`LLMUnavailableError` for the caller's own retries. A server
    that refuses ``json_schema`` is asked again at once in JSON mode (remembered). A
    configuration error trips the endpoint's breaker: the run's other requests fail at once.
    A cancelled run stops waiting for the request in flight at once.
    """
    import openai

    settings = settings or get_settings().llm
    client = _client(settings)
    attempt = 1
    while True:
        cancel.check()
        _check_breaker(settings, model)
        mode = response_format(settings, model)
        timeout = timeout_s or settings.timeout_s
        options: dict[str, Any] = {}
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
        request = functools.partial(
            client.with_options(timeout=timeout).chat.completions.create,
            model=model,
            messages=messages,
            response_format=_response_format_param(mode, *schema),
            temperature=settings.temperature if temperature is None else temperature,
            **options,
        )
        try:
            answer = cancellable(request)
        except openai.OpenAIError as exc:
            failure: openai.OpenAIError | None = exc
        else:
            failure = None
        if failure is not None:
            if mode == "json_schema" and _refuses_schema(failure):
                with _endpoint_lock:
                    _formats[(settings.base_url, model)] = "json_object"
                log.warning(
                    "LLM endpoint %s refused json_schema output (%s); using JSON mode",
                    settings.base_url, _redact(str(failure), settings)[:200],
                )  # fmt: skip
                continue
            error = _map_error(failure, settings, model)
            if isinstance(error, ConfigurationError):
                _trip(settings, model, error)
                raise error from None
            if not isinstance(error, LLMUnavailableError) or attempt >= settings.http_attempts:
                raise error from None
            wait = error.retry_after
            if wait is None:
                wait = 0.5 * 2 ** (attempt - 1) * (1 + 0.25 * random.random())
            sleep(min(wait, settings.max_retry_after_s))
            attempt += 1
            continue
        usage = answer.usage
        choice = answer.choices[0] if answer.choices else None
        content = choice.message.content if choice is not None else None
        return Completion(
            content=content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=str(choice.finish_reason) if choice is not None else "",
            response_format=mode,
        )
