"""Prefect tasks over the profile store (local disk or S3)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from pydantic import BaseModel

from mediaflows.batches import sweep
from mediaflows.errors import InputError
from mediaflows.models import ProfileFile, StoredFile
from mediaflows.operations import get_operation
from mediaflows.operations.spec import FileOutput, Made, OutputIds, TextOutput
from mediaflows.settings import get_settings
from mediaflows.store import ProfileStore
from tasks.retry import RETRYING

# Store reads and writes are not cached by Prefect: the store itself is the persistent record
# (ids are content-derived), and a cached answer could hide a file deleted since.


@task(name="lookup_batch_files", cache_policy=NONE, **RETRYING)
def lookup_batch_files(profile: str, file_ids: list[str]) -> dict[str, ProfileFile | str]:
    """Each file's metadata, or why it cannot be used (missing: an input error, not retried)."""
    store = ProfileStore.from_settings()
    found: dict[str, ProfileFile | str] = {}
    for file_id in file_ids:
        try:
            found[file_id] = store.get(profile, file_id)
        except InputError as exc:
            found[file_id] = f"{type(exc).__name__}: {exc}"
    return found


@task(name="list_profile_media", cache_policy=NONE, **RETRYING)
def list_profile_media(profile: str, kinds: tuple[str, ...]) -> list[str]:
    """Ids of the imported (not derived) files of these kinds in a profile."""
    return [
        f.id
        for f in ProfileStore.from_settings().list_files(profile)
        if f.kind in kinds and f.operation is None
    ]


@task(name="lookup_input", cache_policy=NONE, **RETRYING)
def lookup_input(
    profile: str, file_id: str, operation: str, request: BaseModel
) -> tuple[ProfileFile, OutputIds, StoredFile | None, dict[str, str]]:
    """An operation's input (fails at once if there is no such file), every id its outputs get,
    the main output if an earlier run stored it already, and fresh URLs of the other files that
    output's result names. One task, not several: a task run costs the Prefect server more than
    these reads (a batch child pays it per file)."""
    store = ProfileStore.from_settings()
    source = store.get(profile, file_id)
    spec = get_operation(operation)
    ids = spec.output_ids(source, request, get_settings())
    existing = _stored(store, profile, ids.main)
    urls = {} if existing is None else _urls(store, profile, spec.links(existing.file))
    return source, ids, existing, urls


def _urls(store: ProfileStore, profile: str, file_ids: tuple[str, ...]) -> dict[str, str]:
    return {i: store.media_url(store.get(profile, i)) for i in file_ids}


@task(name="find_output", cache_policy=NONE, **RETRYING)
def find_output(profile: str, file_id: str) -> StoredFile | None:
    """An operation's output if an earlier run already stored it."""
    return _stored(ProfileStore.from_settings(), profile, file_id)


def _stored(store: ProfileStore, profile: str, file_id: str) -> StoredFile | None:
    found = store.find(profile, file_id)
    return None if found is None else store.stored(found)


def local_profile_file(file: ProfileFile) -> Path | None:
    """The file itself when the store is on this machine's disk (nothing to fetch: no task
    run), else None."""
    return ProfileStore.from_settings().local_file(file)


@task(name="fetch_profile_file", cache_policy=NONE, **RETRYING)
def fetch_profile_file(file: ProfileFile, workspace: Path) -> Path:
    """A local copy of a profile file, for ffmpeg and the model (the file itself when local)."""
    return ProfileStore.from_settings().stage(file, workspace)


def _made(output: Made, source: ProfileFile) -> dict[str, Any]:
    """What the store records of how an output was made."""
    details = output.details.model_dump(mode="json") if output.details is not None else {}
    return {"name": output.name, "source_file_id": source.id, "operation": output.operation,
            "options": output.options, "tools": output.tools, "details": details}  # fmt: skip


@task(name="store_output", cache_policy=NONE, **RETRYING)
def store_output(profile: str, source: ProfileFile, output: FileOutput) -> StoredFile:
    """Store a file an operation made, atomically under its deterministic id (a no-op if it is
    already there); it is moved from the run's workspace, which is removed after the run."""
    store = ProfileStore.from_settings()
    made = store.put_file(profile, output.file_id, output.path, move=True, **_made(output, source))
    return store.stored(made)


@task(name="store_text_output", cache_policy=NONE, **RETRYING)
def store_text_output(profile: str, source: ProfileFile, output: TextOutput) -> StoredFile:
    """Store a text output (subtitles, a transcript, a manifest) atomically under its
    deterministic id (a no-op if it is already there)."""
    store = ProfileStore.from_settings()
    made = store.put_text(
        profile, output.file_id, output.text, kind=output.kind, **_made(output, source)
    )
    return store.stored(made)


@task(name="read_text_output", cache_policy=NONE, **RETRYING)
def read_text_output(file: ProfileFile) -> str:
    """The content of a stored text output (for results served from the store)."""
    return ProfileStore.from_settings().read_text(file)


@task(name="import_watch_folder", cache_policy=NONE, **RETRYING)
def import_watch_folder(profile: str, folder: Path, operation: str) -> list[str]:
    """Import the folder's new files that ``operation`` takes into the profile; their ids."""
    return sweep.import_folder(ProfileStore.from_settings(), profile, folder, operation)


@task(name="find_pending_inputs", cache_policy=NONE, **RETRYING)
def find_pending_inputs(profile: str, operation: str, request: BaseModel) -> list[str]:
    """The profile's inputs for ``operation`` whose output is not stored yet."""
    files = ProfileStore.from_settings().list_files(profile)
    return sweep.pending_inputs(files, operation, request, datetime.now(UTC))


@task(name="remove_expired_outputs", cache_policy=NONE, **RETRYING)
def remove_expired_outputs(profile: str) -> list[str]:
    """Delete the profile's outputs older than MEDIAFLOWS_STORE__OUTPUT_RETENTION_S (none if
    unset)."""
    settings = get_settings()
    store = ProfileStore.from_settings(settings)
    files = store.list_files(profile)
    expired = sweep.expired_outputs(files, settings.store.output_retention_s, datetime.now(UTC))
    for file in expired:
        store.delete(profile, file.id)
    return [f.id for f in expired]


def _ended_runs(names: list[str]) -> set[str]:
    """Which of these flow run ids the server holds in a final state."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    ids = []
    for name in names:
        with contextlib.suppress(ValueError):  # not named after a flow run: not ours to judge
            ids.append(UUID(name))
    ended: set[str] = set()
    with get_client(sync_client=True) as client:
        for start in range(0, len(ids), 200):
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids[start : start + 200])),
                limit=200,
            )
            ended |= {str(r.id) for r in runs if r.state is not None and r.state.is_final()}
    return ended


@task(name="remove_stale_workspaces", cache_policy=NONE)
def remove_stale_workspaces() -> list[str]:
    """Delete scratch directories that runs which died (Crashed: a killed worker) left, and the
    temporary files of writes that a killed process cut short."""
    removed = sweep.remove_stale_workspaces(ended=_ended_runs)
    temps = ProfileStore.from_settings().remove_abandoned_temp_files(
        sweep.ENDED_GRACE_S, sweep.STALE_WORKSPACE_S
    )
    return removed + [str(p) for p in temps]
