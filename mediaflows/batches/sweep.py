"""The sweep's decisions, in plain Python: which files of a watch folder to import, which inputs
still lack the requested output, which outputs are past the retention period."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel

from mediaflows.ids import content_file_id
from mediaflows.media.tracks import import_details
from mediaflows.models import ProfileFile
from mediaflows.operations import get_operation
from mediaflows.settings import Settings, get_settings
from mediaflows.store import ProfileStore, guess_content_type, guess_kind, sha256_of

#: A watch-folder file modified more recently than this may still be being copied: next sweep.
SETTLE_S = 10.0
#: Run scratch directories older than this belong to runs that died without cleaning up.
STALE_WORKSPACE_S = 24 * 3600.0
#: ... and those of runs that are over, once they are this old.
ENDED_GRACE_S = 60.0


def import_folder(
    store: ProfileStore,
    profile: str,
    folder: Path,
    operation: str,
    settle_s: float = SETTLE_S,
) -> list[str]:
    """Import the files of ``folder`` that ``operation`` takes and the profile lacks; their ids.

    Hidden files and files modified in the last ``settle_s`` seconds are left for a later sweep.
    Ids derive from content, so a file imported before is found, not imported again.
    """
    kinds = get_operation(operation).input_kinds
    now = time.time()
    known = {f.id for f in store.list_files(profile)}
    imported = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if now - path.stat().st_mtime < settle_s:
            continue
        if guess_kind(guess_content_type(path.name)) not in kinds:
            continue
        if content_file_id(sha256_of(path)) in known:
            continue  # imported by an earlier sweep: no probe, no copy
        file = store.import_file(profile, path, details=import_details(path))
        known.add(file.id)
        imported.append(file.id)
    return imported


def pending_inputs(
    files: Sequence[ProfileFile],
    operation: str,
    request: BaseModel,
    now: datetime,
    settings: Settings | None = None,
) -> list[str]:
    """Ids of the imported files that ``operation`` takes and whose output is not stored.

    With a retention period, inputs older than it are not swept: their output, if any, has
    expired on purpose and is not made again.
    """
    settings = settings or get_settings()
    spec = get_operation(operation)
    request = spec.parse_request(request)
    stored = {f.id for f in files}
    retention = settings.store.output_retention_s
    pending = []
    for file in files:
        if file.operation is not None or file.kind not in spec.input_kinds:
            continue
        if retention is not None and now - file.created > timedelta(seconds=retention):
            continue
        if spec.output_id(file, request, settings) not in stored:
            pending.append(file.id)
    return pending


def expired_outputs(
    files: Sequence[ProfileFile], retention_s: float | None, now: datetime
) -> list[ProfileFile]:
    """Outputs (files an operation made) created more than ``retention_s`` ago."""
    if retention_s is None:
        return []
    cutoff = now - timedelta(seconds=retention_s)
    return [f for f in files if f.operation is not None and f.created < cutoff]


def remove_stale_workspaces(
    settings: Settings | None = None,
    ended: Callable[[list[str]], set[str]] | None = None,
) -> list[str]:
    """Delete run scratch directories left by runs that died (a killed worker cannot clean up).

    A directory is named after its flow run: ``ended(names)`` says which of those runs are over
    (the Prefect server knows; a Crashed run's directory goes at the next sweep). Without it, or
    for runs it does not know, a directory untouched for a day is taken as abandoned.
    """
    settings = settings or get_settings()
    runs = settings.work_path / "runs"
    if not runs.is_dir():
        return []
    now = time.time()
    ages = {}
    for path in runs.iterdir():
        with contextlib.suppress(FileNotFoundError):  # its run removed it meanwhile
            ages[path.name] = now - path.stat().st_mtime
    # Not the directory of a run that ends this very moment and is removing it itself.
    over = ended([n for n, age in ages.items() if age > ENDED_GRACE_S]) if ended else set()
    removed = []
    for name, age in ages.items():
        if name in over or age > STALE_WORKSPACE_S:
            shutil.rmtree(runs / name, ignore_errors=True)
            removed.append(name)
    return removed
