"""The one error tree of mediaflows.

The class of an error decides what happens to the run that raised it:

* :class:`InputError` — the input is wrong (bad id, corrupt or unsafe media, invalid SRT). Retrying
  cannot help, so tasks fail at once and nothing is stored.
* :class:`TransientError` — the world hiccuped (S3 5xx, a timeout, a reset connection). Tasks retry
  these with backoff.
* :class:`ResourceError` — the machine ran short (memory, disk). Not retried as is; callers may
  retry with a smaller setting.

Anything else is a bug or a configuration problem and is not retried either.
"""

from __future__ import annotations

import errno
import socket
from typing import Any
from uuid import UUID


class MediaflowsError(Exception):
    """Base class of every error mediaflows raises on purpose."""


class InputError(MediaflowsError):
    """The request or the input file is wrong; retrying cannot help."""


class InvalidIdError(InputError, ValueError):
    """A profile name or file id is malformed (checked before any I/O)."""


class ProfileFileNotFoundError(InputError):
    """No file with this id exists in the profile."""

    def __init__(self, profile: str, file_id: str) -> None:
        super().__init__(f"no file {file_id!r} in profile {profile!r}")
        self.profile = profile
        self.file_id = file_id

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Persisted as a failed run's result, read back by another process (pickle).
        return (type(self), (self.profile, self.file_id))


class MediaError(InputError):
    """The media file cannot be used: empty, not media, truncated, unsupported."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.name, self.reason))


class UnsafeMediaError(MediaError):
    """The file is an indirection (playlist, concat list) that would make ffmpeg open other URLs."""


class ConfigurationError(MediaflowsError):
    """mediaflows is set up wrongly (missing tool, bad credentials); fix the setup, then re-run."""


class EndpointRejectedError(ConfigurationError):
    """An OpenAI-compatible endpoint refused the request (400, 401, 403, 404, 413, 422): wrong
    URL, key or model name, or a server without the needed features. Retrying cannot help, and
    the endpoint's other requests of the run are not sent."""


class EndpointUnreachableError(ConfigurationError):
    """Nothing answers at an endpoint's address (connection refused): almost always a wrong base
    URL or a server that is not started. The run stops at once."""


class LLMRejectedError(EndpointRejectedError):
    """The LLM endpoint refused the request (400, 401, 403, 404, 422, or a 5xx naming an
    unsupported parameter)."""


class LLMUnreachableError(EndpointUnreachableError):
    """Nothing answers at ``MEDIAFLOWS_LLM__BASE_URL`` (connection refused)."""


class ASRRejectedError(EndpointRejectedError):
    """The speech endpoint refused the request (400, 401, 403, 404, 413): an upload limit set
    above the endpoint's among the usual causes."""


class ASRUnreachableError(EndpointUnreachableError):
    """Nothing answers at the speech endpoint's address (connection refused)."""


class LLMOutputError(MediaflowsError):
    """The model's answers were refused for too much of the file (see the run's report): change
    the model, the response format or the chunk size, not the input."""


class ChunkRefusedError(MediaflowsError):
    """One chunk got no valid answer: it keeps its original text (``fix``). Raised by the chunk
    task so that the refused answer is not cached and a re-run asks again."""

    def __init__(self, message: str, fix: Any) -> None:
        super().__init__(message)
        self.fix = fix

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.fix))


class InvalidAnswerError(ValueError):
    """A model's answer does not fit its chunk (bad JSON, other ids, other count, an empty cue):
    the chunk is asked again. Never leaves the chunk's request loop."""


class RunCancelledError(MediaflowsError):
    """The run was cancelled (or its process is stopping) while this work was under way."""


class RunFailedError(MediaflowsError):
    """A run ended in a state other than Completed (its result, if any, is attached)."""

    def __init__(self, run_id: UUID, state: str, message: str, result: Any = None) -> None:
        super().__init__(f"run {run_id} ended {state}: {message}")
        self.run_id = run_id
        self.state = state
        self.result = result


class TransientError(MediaflowsError):
    """A temporary fault (network, S3 5xx, timeout); tasks retry these with backoff."""


class UnavailableError(TransientError):
    """An external service is busy or down (429, 5xx, timeout, reset connection).

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.retry_after))


class EndpointUnavailableError(UnavailableError):
    """An OpenAI-compatible endpoint is busy or down (429, 5xx, timeout, reset connection, a
    malformed answer)."""


class LLMUnavailableError(EndpointUnavailableError):
    """The LLM endpoint is busy or down."""


class ASRUnavailableError(EndpointUnavailableError):
    """The speech endpoint is busy or down."""


class ASRTimeoutError(ASRUnavailableError):
    """A speech request got no answer within its timeout: its piece is cut in half and sent
    again as two (:mod:`mediaflows.speech.pacing`), never whole."""


class PieceTooLargeError(MediaflowsError):
    """A piece of audio encoded larger than the speech endpoint's upload limit: it is cut in
    half before it is sent (:mod:`mediaflows.speech.pacing`)."""


class StoreUnavailableError(TransientError):
    """The profile store did not answer properly this time."""


class ResourceError(MediaflowsError):
    """The machine ran short of memory or disk."""


class ToolTimeoutError(ResourceError):
    """An external tool (ffmpeg) ran past its time limit."""


_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EAGAIN,
    }
)


def is_transient(exc: BaseException) -> bool:
    """Tell whether retrying the operation that raised ``exc`` may succeed.

    Our own tree answers for itself; foreign exceptions (sockets, botocore, aiohttp) are judged by
    their type, so that a task never retries a corrupt file but does retry a reset connection.
    """
    if isinstance(exc, MediaflowsError):
        return isinstance(exc, TransientError)
    if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    name = type(exc).__name__
    # botocore / aiohttp / httpx connection-level failures, matched by name to avoid importing them.
    return name in {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ServerDisconnectedError",
        "ClientConnectorError",
        "ClientOSError",
        "ResponseStreamingError",
        "IncompleteReadError",
    }


class ReviewRefusedError(InputError):
    """A reviewer's answer that cannot be taken (a cue that was not asked about, lost markup,
    text that cannot fit the line rules, a run not waiting, a review past its time): nothing is
    changed, and a waiting run goes on waiting."""


class ReviewTimedOutError(MediaflowsError):
    """Nobody answered a review in time and the request said ``review_timeout: fail``."""
