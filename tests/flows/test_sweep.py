"""The sweep flow: imports a watch folder, runs the batch on exactly the inputs without their
output, does nothing the second time, removes outputs past the retention period."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.objects import State

from flows.sweep import sweep
from mediaflows.models import SweepResult
from mediaflows.settings import get_settings
from mediaflows.store import ProfileStore
from tasks.prefect_adapter import state_of
from tests.flows.test_batch import distinct_clips


def run_sweep(**params: Any) -> SweepResult:
    state = asyncio.run(state_of(sweep, **params))
    assert state.is_completed(), state.message
    result = state.result()
    assert isinstance(result, SweepResult)
    return result


def outputs(store: ProfileStore, profile: str) -> list[str]:
    return sorted(f.id for f in store.list_files(profile) if f.operation is not None)


def settled(path: Path) -> Path:
    """Make a file look copied a minute ago (the sweep leaves files still being written)."""
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def test_first_sweep_finds_exactly_the_new_files_and_the_second_nothing(
    local_store: ProfileStore, tmp_path: Path, ffmpeg_calls: Path
) -> None:
    (tmp_path / "clips").mkdir()
    clips = distinct_clips(tmp_path / "clips", 4)
    done = local_store.import_file("erin", clips[0]).id
    asyncio.run(sweep(profile="erin", operation="convert", watch_folder=None))  # done[0] now
    assert len(outputs(local_store, "erin")) == 1
    new_in_profile = local_store.import_file("erin", clips[1]).id
    local_store.put_text("erin", "notes", "not a video", name="notes.txt", kind="other")
    watch = tmp_path / "watch"
    watch.mkdir()
    from_folder = settled(Path(shutil.copy(clips[2], watch / "talk.mkv")))
    settled(Path(shutil.copy(clips[0], watch / "again.mkv")))  # in the profile already
    settled(Path(shutil.copy(clips[3], watch / ".partial.mkv")))  # hidden: being uploaded
    (watch / "readme.txt").write_text("not media")
    conversions_before = len(ffmpeg_calls.read_text().splitlines())

    first = run_sweep(profile="erin", operation="convert", watch_folder=str(watch))
    assert len(first.imported) == 1
    assert local_store.get("erin", first.imported[0]).name == from_folder.name
    assert set(first.pending) == {new_in_profile, first.imported[0]}
    assert done not in first.pending
    assert first.batch is not None
    assert (first.batch.total, first.batch.succeeded, first.batch.cached) == (2, 2, 0)
    assert first.removed == ()  # no retention period: outputs are kept
    assert len(outputs(local_store, "erin")) == 3
    assert len(ffmpeg_calls.read_text().splitlines()) - conversions_before == 2

    second = run_sweep(profile="erin", operation="convert", watch_folder=str(watch))
    assert (second.imported, second.pending, second.batch) == ((), (), None)
    assert len(outputs(local_store, "erin")) == 3  # no duplicate
    assert len(ffmpeg_calls.read_text().splitlines()) - conversions_before == 2  # no work

    # Other options are another output: the same files are pending for them.
    other = run_sweep(profile="erin", operation="convert", request={"crf": 30})
    assert other.batch is not None and other.batch.succeeded == 3


def _age(store_root: Path, profile: str, file_id: str, by: timedelta) -> None:
    meta = store_root / "profiles" / profile / "files" / f"{file_id}.json"
    data = json.loads(meta.read_text())
    data["created"] = (datetime.now(UTC) - by).isoformat()
    meta.write_text(json.dumps(data))


def test_outputs_past_the_retention_period_are_removed_and_not_made_again(
    local_store: ProfileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_clip, new_clip = distinct_clips(tmp_path, 2)
    old = local_store.import_file("finn", old_clip).id
    run_sweep(profile="finn", operation="convert")
    [old_output] = outputs(local_store, "finn")
    root = Path(local_store.url)
    _age(root, "finn", old, timedelta(hours=2))
    _age(root, "finn", old_output, timedelta(hours=2))
    new = local_store.import_file("finn", new_clip).id

    monkeypatch.setenv("MEDIAFLOWS_STORE__OUTPUT_RETENTION_S", "3600")
    get_settings.cache_clear()
    result = run_sweep(profile="finn", operation="convert")
    assert result.removed == (old_output,)
    assert local_store.find("finn", old_output) is None
    assert local_store.find("finn", old) is not None  # inputs are never removed
    assert result.pending == (new,)  # the expired one's input is older than retention: not new
    [new_output] = outputs(local_store, "finn")
    assert local_store.get("finn", new_output).source_file_id == new
    again = run_sweep(profile="finn", operation="convert")
    assert (again.removed, again.pending) == ((), ())


def test_sweep_sees_the_outputs_of_the_flows_themselves(
    local_store: ProfileStore, jfk: Path
) -> None:
    """The flows and the sweep derive output ids with one function: a file done by the
    generate_srt flow is not pending for generate_srt, but is for transcribe."""
    from flows.generate_srt import generate_srt

    source = local_store.import_file("ivan", jfk)
    asyncio.run(generate_srt(profile="ivan", file_id=source.id))
    assert run_sweep(profile="ivan", operation="generate_srt").pending == ()
    transcribed = run_sweep(profile="ivan", operation="transcribe")
    assert transcribed.pending == (source.id,)
    assert transcribed.batch is not None and transcribed.batch.succeeded == 1
    assert run_sweep(profile="ivan", operation="transcribe").pending == ()


def test_work_files_of_ended_runs_are_removed_those_of_live_runs_kept(
    local_store: ProfileStore,
) -> None:
    """A killed worker's runs leave their scratch directories; once the server holds those runs
    Crashed, the sweep removes them. A running run's directory and a directory too fresh to
    judge are kept."""
    from prefect import flow as prefect_flow
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed, Running

    from tasks.store import remove_stale_workspaces

    @prefect_flow(name="sweep-workspace-probe")
    def probe() -> None: ...

    runs_dir = get_settings().work_path / "runs"
    dirs = {}
    with get_client(sync_client=True) as client:
        states: list[tuple[str, State[Any]]] = [
            ("crashed", Crashed()),
            ("running", Running()),
            ("fresh-crashed", Crashed()),
        ]
        for name, state in states:
            run = client.create_flow_run(probe, state=state)
            dirs[name] = runs_dir / str(run.id)
            (dirs[name] / "part").mkdir(parents=True)
            (dirs[name] / "part" / "out.mp4").write_bytes(b"half")
    for name in ("crashed", "running"):
        settled(dirs[name] / "part" / "out.mp4")
        settled(dirs[name])
    removed = remove_stale_workspaces.fn()
    assert removed == [dirs["crashed"].name]
    assert not dirs["crashed"].exists()
    assert dirs["running"].exists() and dirs["fresh-crashed"].exists()
    for path in (dirs["running"], dirs["fresh-crashed"]):
        shutil.rmtree(path)
