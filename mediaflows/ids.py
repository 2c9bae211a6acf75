"""Validated identifiers and deterministic output ids.

Profile names and file ids become storage keys, so they are checked against a strict pattern before
any I/O: no separators, no dots at the start, no percent-escapes, no control characters.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator

from mediaflows.errors import InvalidIdError

_PROFILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_FILE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def _check(kind: str, value: object, pattern: re.Pattern[str], max_len: int) -> str:
    if not isinstance(value, str):
        raise InvalidIdError(f"{kind} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidIdError(f"{kind} must not be empty")
    if len(value) > max_len:
        raise InvalidIdError(f"{kind} is longer than {max_len} characters")
    if pattern.fullmatch(value) is None:
        raise InvalidIdError(
            f"invalid {kind} {value[:80]!r}: use letters, digits, '-', '_'"
            + (" and '.'" if kind == "profile name" else "")
            + ", starting with a letter or digit"
        )
    return value


def check_profile(value: object) -> str:
    """Return ``value`` if it is a valid profile name, else raise :class:`InvalidIdError`."""
    return _check("profile name", value, _PROFILE_RE, 64)


def check_file_id(value: object) -> str:
    """Return ``value`` if it is a valid file id, else raise :class:`InvalidIdError`."""
    return _check("file id", value, _FILE_ID_RE, 128)


ProfileName = Annotated[str, AfterValidator(check_profile)]
"""A profile (a user's library) name."""

FileId = Annotated[str, AfterValidator(check_file_id)]
"""The id of a file in a profile."""


def content_file_id(sha256: str) -> str:
    """The id of an imported file: derived from its content, so importing twice is a no-op."""
    return sha256[:32]


def output_file_id(
    source_sha256: str, operation: str, options: dict[str, Any], tool: str, variant: str = ""
) -> str:
    """The id of an operation's output.

    Derived from everything that determines the output, so that a re-run (after a crash, or on
    purpose) finds the existing output instead of creating a second one.
    """
    key = json.dumps(
        {"in": source_sha256, "op": operation, "opts": options, "tool": tool, "var": variant},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(key.encode()).hexdigest()[:32]
