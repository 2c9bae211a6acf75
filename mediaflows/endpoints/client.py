"""One client for every OpenAI-compatible endpoint, chat or speech: a connection pool per endpoint
and process, one table that maps the ``openai`` package's errors onto mediaflows' error tree,
and one request loop that retries what is transient.

The two kinds of endpoint differ only in what their errors are called and what a message tells
the user to check (:class:`EndpointKind`); the ladder itself is :func:`map_error`:

====================================================  ================  ===========================
what happened                                         error             then
====================================================  ================  ===========================
no answer within the timeout                          ``*Unavailable``  retried (backoff)
connection refused                                    ``*Unreachable``  the run stops at once
other connection failure (reset, DNS, TLS)            ``*Unavailable``  retried
429, 408, 409, 5xx (``Retry-After`` honoured)         ``*Unavailable``  retried
a 5xx whose body names an unsupported parameter       ``*Rejected``     stops (chat endpoints)
401, 403: the key                                     ``*Rejected``     stops
413 and the kind's other own statuses                 ``*Rejected``     stops, with the kind's hint
any other 4xx (404: the model name?)                  ``*Rejected``     stops
a body that is not the JSON it claims                 ``*Unavailable``  retried
====================================================  ================  ===========================

The API key never appears in a message: servers quote keys in their errors, so every body is
redacted first.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr

from mediaflows import cancel
from mediaflows.errors import (
    ASRRejectedError,
    ASRUnavailableError,
    ASRUnreachableError,
    ConfigurationError,
    EndpointRejectedError,
    EndpointUnavailableError,
    EndpointUnreachableError,
    LLMRejectedError,
    LLMUnavailableError,
    LLMUnreachableError,
)
from mediaflows.settings import EndpointSettings

if TYPE_CHECKING:  # imported where used: ~1 s that every flow-run process would pay otherwise
    import openai

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class EndpointKind:
    """What one kind of endpoint's errors are called, and what their messages point at."""

    rejected: type[EndpointRejectedError]
    unreachable: type[EndpointUnreachableError]
    unavailable: type[EndpointUnavailableError]
    #: What to check when the connection is refused.
    address_hint: str
    #: Appended when the key is refused.
    key_hint: str
    #: Appended when the server says 404.
    model_hint: str
    #: Statuses this kind explains itself (status → the message after ``where:``).
    own_statuses: Mapping[int, str] = field(default_factory=dict)
    #: A 5xx whose body names an unsupported parameter is a refusal, not a hiccup.
    unsupported_5xx_rejected: bool = False
    #: The first retry's wait (doubled each time, jittered) when the server names none.
    first_backoff_s: float = 1.0


#: Chat completions (fix_srt, translate_srt): one endpoint, ``MEDIAFLOWS_LLM__*``.
CHAT = EndpointKind(
    LLMRejectedError, LLMUnreachableError, LLMUnavailableError,
    address_hint="is MEDIAFLOWS_LLM__BASE_URL right, and the server started?",
    key_hint="; set MEDIAFLOWS_LLM__API_KEY",
    model_hint=" (is the model name right? MEDIAFLOWS_LLM__MODELS)",
    unsupported_5xx_rejected=True, first_backoff_s=0.5,
)  # fmt: skip
#: Audio transcriptions: the endpoints of ``MEDIAFLOWS_ASR__ENDPOINTS``, by name.
SPEECH = EndpointKind(
    ASRRejectedError, ASRUnreachableError, ASRUnavailableError,
    address_hint="is its base_url right in MEDIAFLOWS_ASR__ENDPOINTS, and the server started?",
    key_hint="", model_hint=" (is the model name right?)",
    own_statuses={413: "the upload was too large (413); lower its max_upload_mb"},
)  # fmt: skip


_clients: dict[tuple[str, str, float], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def openai_client(settings: EndpointSettings) -> openai.OpenAI:
    """One client (one connection pool) per endpoint and process, shared by every request
    thread. ``max_retries=0``: retries are :func:`send`'s, so that Retry-After and our error
    tree decide."""
    import openai

    key = (settings.base_url, settings.api_key.get_secret_value(), settings.timeout_s)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = openai.OpenAI(
                base_url=settings.base_url,
                api_key=settings.api_key.get_secret_value(),
                timeout=settings.timeout_s,
                max_retries=0,
            )
        return _clients[key]


def redact(text: str, secret: SecretStr) -> str:
    """``text`` with the secret's value replaced by ``***`` (servers quote keys in errors)."""
    value = secret.get_secret_value()
    return text.replace(value, "***") if value else text


def retry_after_of(response: Any) -> float | None:
    """The seconds a response's ``Retry-After`` (or ``retry-after-ms``) header asks for."""
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


def refused_connection(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a refused connection: nothing listens there."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


#: A 4xx/5xx body that names a parameter the server does not take: a configuration error.
_UNSUPPORTED = re.compile(
    r"not supported|unsupported|should be|unknown (?:parameter|field|argument)|"
    r"extra (?:inputs|fields)|not permitted|invalid (?:value|parameter)",
    re.IGNORECASE,
)


def body_of(exc: openai.APIStatusError, secret: SecretStr) -> str:
    """What the server said, redacted and cut to 300 characters."""
    return redact(str(getattr(exc, "message", "") or exc), secret)[:300]


def map_error(
    exc: openai.OpenAIError, kind: EndpointKind, where: str, settings: EndpointSettings
) -> Exception:
    """The mediaflows error for a failed request (the table in this module's docstring);
    ``where`` names the endpoint and model in the message."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return kind.unavailable(f"{where}: no answer within {settings.timeout_s:g} s")
    if isinstance(exc, openai.APIConnectionError):
        if refused_connection(exc):
            return kind.unreachable(
                f"{where}: connection refused: nothing listens there ({kind.address_hint})"
            )
        return kind.unavailable(f"{where}: cannot connect ({type(exc.__cause__).__name__})")
    if isinstance(exc, openai.APIStatusError):
        status, body = exc.status_code, body_of(exc, settings.api_key)
        if kind.unsupported_5xx_rejected and status >= 500 and _UNSUPPORTED.search(body):
            return kind.rejected(f"{where}: the server cannot take this request ({status}): {body}")
        if status == 429 or status >= 500 or status in (408, 409):
            return kind.unavailable(f"{where}: busy or failing ({status})",
                                    retry_after=retry_after_of(exc.response))  # fmt: skip
        if status in (401, 403):
            # The server's own words may quote the key (partly masked): leave them out.
            return kind.rejected(f"{where}: the API key was refused ({status}){kind.key_hint}")
        if status in kind.own_statuses:
            return kind.rejected(f"{where}: {kind.own_statuses[status]}")
        hint = kind.model_hint if status == 404 else ""
        return kind.rejected(f"{where}: request refused ({status}){hint}: {body}")
    detail = redact(str(exc), settings.api_key)[:300]
    return kind.rejected(f"{where}: {type(exc).__name__}: {detail}")


def cancellable(call: Callable[[], T]) -> T:
    """``call()`` (a blocking HTTP request) in a daemon thread, waited for until the run is
    cancelled: then :class:`~mediaflows.errors.RunCancelledError` is raised at once and the
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

    threading.Thread(target=run, name="mediaflows-endpoint-request", daemon=True).start()
    while not done.wait(0.1):
        cancel.check()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    result: T = outcome[0]
    return result


def send(
    request: Callable[[], T],
    kind: EndpointKind,
    where: str,
    settings: EndpointSettings,
    sleep: Callable[[float], None] = cancel.sleep,
    before_attempt: Callable[[], None] | None = None,
    ask_again_now: Callable[[openai.OpenAIError], bool] | None = None,
    on_refusal: Callable[[ConfigurationError], None] | None = None,
    timeout: tuple[float, type[EndpointUnavailableError]] | None = None,
) -> T:
    """``request()`` (one HTTP request to the endpoint) until it answers.

    429/5xx/timeouts/resets and malformed answers are tried ``settings.http_attempts`` times in
    all, waiting what the server's ``Retry-After`` asks (at most ``max_retry_after_s``) or else
    ``kind.first_backoff_s`` doubled each time, with jitter; the last failure is raised as the
    kind's ``Unavailable`` error for the caller's own retries. A refusal (configuration error)
    is raised at once, after ``on_refusal``. ``before_attempt`` runs before each try (a circuit
    breaker may raise there); ``ask_again_now(exc)`` True sends the request again at once,
    uncounted (a chat server that refused the structured-output mode). A cancelled run stops
    waiting for the request in flight at once. ``timeout``: ``(seconds, error class)``: a
    request that got no answer in that time raises that error at once, not tried again (the
    caller sends something else: half of a speech piece); the client closes its connection.
    """
    import openai

    attempt = 1
    while True:
        cancel.check()
        if before_attempt is not None:
            before_attempt()
        try:
            return cancellable(request)
        except openai.OpenAIError as exc:
            if ask_again_now is not None and ask_again_now(exc):
                continue
            if timeout is not None and isinstance(exc, openai.APITimeoutError):
                raise timeout[1](f"{where}: no answer within {timeout[0]:.0f} s") from None
            error = map_error(exc, kind, where, settings)
        except ValueError as exc:  # a body that is not the JSON it claims (a proxy's hiccup)
            error = kind.unavailable(f"{where}: malformed answer ({exc})")
        if isinstance(error, ConfigurationError):
            if on_refusal is not None:
                on_refusal(error)
            raise error from None
        if not isinstance(error, EndpointUnavailableError) or attempt >= settings.http_attempts:
            raise error from None
        wait = error.retry_after
        if wait is None:
            wait = kind.first_backoff_s * 2 ** (attempt - 1) * (1 + 0.25 * random.random())
        wait = min(wait, settings.max_retry_after_s)
        log.warning("%s; trying again in %.1f s", error, wait)
        sleep(wait)
        attempt += 1
