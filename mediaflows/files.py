"""Atomic writes: a file appears whole under its name, or not at all."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(final: Path, fsync: bool = True) -> Iterator[Path]:
    """A temporary path beside ``final`` to write; when the block ends without an error the file
    is synced to disk and renamed onto ``final`` (one atomic step), else it is removed.

    The temporary name starts with a dot (listings skip it) and ends with ``.tmp``.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        if fsync:
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(final: Path, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``final`` atomically (see :func:`atomic_path`)."""
    with atomic_path(final, fsync) as tmp:
        tmp.write_bytes(data)
