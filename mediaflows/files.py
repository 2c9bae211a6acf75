"""Atomic writes: a file appears whole under its name, or not at all; and the temporary files a
killed writer leaves behind, found and removed."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Separates the parts of a temporary name; host names and file ids never contain it.
_SEP = "~"


def temp_name(name: str) -> str:
    """A hidden temporary name for ``name`` that names the writing host and process:
    ``.NAME~HOST~PID~RANDOM.tmp`` (a process killed mid-write cannot remove its file;
    :func:`abandoned_temp_files` can tell its writer is dead)."""
    writer = f"{socket.gethostname()}{_SEP}{os.getpid()}"
    return f".{name}{_SEP}{writer}{_SEP}{uuid.uuid4().hex[:12]}.tmp"


@contextmanager
def atomic_path(final: Path, fsync: bool = True) -> Iterator[Path]:
    """A temporary path beside ``final`` to write; when the block ends without an error the file
    is synced to disk and renamed onto ``final`` (one atomic step), else it is removed.

    The temporary name is :func:`temp_name`'s: hidden (listings skip it), naming its writer.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(temp_name(final.name))
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


def temp_writer(path: Path) -> tuple[str, int] | None:
    """The host and process id that :func:`temp_name` wrote into a temporary name, or None."""
    if not (path.name.startswith(".") and path.name.endswith(".tmp")):
        return None
    parts = path.name.removesuffix(".tmp").rsplit(_SEP, 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def abandoned_temp_files(root: Path, grace_s: float, stale_s: float) -> list[Path]:
    """Temporary files under ``root`` whose writer is gone.

    A file is abandoned when its writer was a process of this host that no longer exists and it
    has not changed for ``grace_s`` seconds (a process of another PID namespace sharing the host
    name, e.g. a host-networked container, looks dead from here: an active writer keeps touching
    its file), or when it has not changed for ``stale_s`` seconds whoever wrote it.
    """
    if not root.is_dir():
        return []
    host, now = socket.gethostname(), time.time()
    found = []
    for path in root.rglob(".*.tmp"):
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:
            continue  # its writer finished meanwhile
        writer = temp_writer(path)
        dead = writer is not None and writer[0] == host and not _alive(writer[1])
        if age > stale_s or (dead and age >= grace_s):
            found.append(path)
    return found


def remove_abandoned_temp_files(root: Path, grace_s: float, stale_s: float) -> list[Path]:
    """Delete :func:`abandoned_temp_files`; the paths deleted."""
    removed = []
    for path in abandoned_temp_files(root, grace_s, stale_s):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed
