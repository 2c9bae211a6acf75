"""Batch flows: bounded fan-out of child subflows, partial failure, re-runs that redo only what
failed, the `gpu` limit across processes."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import State

from flows.batch import batch_convert
from mediaflows.models import BatchResult
from mediaflows.store import ProfileStore
from tasks.prefect_adapter import state_of
from tests import prefect_api
from tests.media_factory import VIDEOS, ffmpeg, make_speech, make_video


def distinct_clips(directory: Path, n: int) -> list[Path]:
    """``n`` different 1 s H.264/AAC MKVs (each remuxes in a few tens of ms)."""
    base = make_video(directory / "base.mkv", VIDEOS["h264_aac.mkv"][1], 1.0, "160x120")
    clips = []
    for i in range(n):
        clip = directory / f"clip{i:03}.mkv"
        ffmpeg("-i", str(base), "-c", "copy", "-metadata", f"title=clip {i}", str(clip))
        clips.append(clip)
    return clips


def run_batch(profile: str, file_ids: list[str], **options: Any) -> tuple[State[Any], Any]:
    state = asyncio.run(state_of(batch_convert, profile=profile, file_ids=file_ids, **options))
    result = state.result(raise_on_failure=False)
    assert isinstance(result, BatchResult), state.message
    return state, result


def test_bad_files_fail_alone_and_a_rerun_redoes_only_them(
    local_store: ProfileStore,
    tmp_path: Path,
    bad_inputs: dict[str, Path],
    ffmpeg_calls: Path,
) -> None:
    good = [local_store.import_file("bob", p).id for p in distinct_clips(tmp_path, 17)]
    bad = [
        local_store.import_file("bob", bad_inputs[name]).id
        for name in ("empty.mp4", "text.mp4", "truncated.mkv")
    ]
    ids = good[:8] + bad + good[8:]
    state, result = run_batch("bob", ids)

    assert state.is_failed()
    assert all(file_id in (state.message or "") for file_id in bad), state.message
    assert (result.total, result.succeeded, result.failed, result.cached) == (20, 17, 3, 0)
    assert [c.file_id for c in result.children] == ids  # in the order given
    assert set(result.failed_files) == set(bad)
    for child in result.children:
        assert child.run_id is not None
        if child.file_id in bad:
            assert child.error and child.output_id is None
        else:
            assert child.status == "completed" and local_store.find("bob", child.output_id or "")
    conversions = len(ffmpeg_calls.read_text().splitlines())
    # Empty and text files fail at the probe; the truncated one only in its conversion.
    bad_conversions = conversions - 17
    assert bad_conversions in (0, 1)
    # Input errors are not retried: each bad child ran its tasks once.
    for child in result.children:
        if child.file_id in bad:
            runs = prefect_api.task_runs(UUID(child.run_id or ""), failed=1)
            assert all(r.run_count <= 1 for r in runs), [(r.name, r.run_count) for r in runs]
    # Every child is a subflow of the batch.
    batch_id = state.state_details.flow_run_id
    for child in result.children[:3]:
        assert prefect_api.flow_run(UUID(child.run_id or "")).parent_task_run_id is not None
    assert any(a.key == "batch-result" for a in prefect_api.artifacts(batch_id))

    again_state, again = run_batch("bob", ids)
    assert again_state.is_failed()
    assert (again.succeeded, again.failed, again.cached) == (17, 3, 17)
    # Nothing is converted again but what failed.
    assert len(ffmpeg_calls.read_text().splitlines()) == conversions + bad_conversions
    assert [c.output_id for c in again.children] == [c.output_id for c in result.children]


def test_missing_files_are_named_without_a_child_run(
    local_store: ProfileStore, tmp_path: Path
) -> None:
    clip = local_store.import_file("carol", distinct_clips(tmp_path, 1)[0]).id
    state, result = run_batch("carol", [clip, "f" * 64])
    assert state.is_failed() and ("f" * 64) in (state.message or "")
    missing = result.children[1]
    assert (
        missing.status == "failed" and missing.run_id is None and "no file" in (missing.error or "")
    )
    assert result.children[0].status == "completed"


def test_many_children_never_flood_the_server(local_store: ProfileStore, tmp_path: Path) -> None:
    """100 children with 8 in flight on the embedded SQLite server: all Completed, and the
    client never had to back off (no 503, no 'database is locked')."""
    ids = [local_store.import_file("dave", p).id for p in distinct_clips(tmp_path, 100)]
    with prefect_api.ClientBackoffs() as backoffs:
        state, result = run_batch("dave", ids, in_flight=8)
    assert state.is_completed(), state.message
    assert (result.succeeded, result.failed) == (100, 0)
    assert backoffs.messages == []
    runs = {UUID(c.run_id or "") for c in result.children}
    assert len(runs) == 100
    for run_id in list(runs)[:10]:
        assert prefect_api.flow_run(run_id).state_type.value == "COMPLETED"


SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Every morning we walk to the market and buy fresh bread.",
    "Please call me when you arrive at the station.",
    "She reads a book while the children play in the garden.",
    "My brother builds small wooden boats in his garage.",
    "We watched the sun go down behind the hills.",
]


def test_gpu_limit_holds_across_two_worker_processes(
    local_store: ProfileStore, tmp_path: Path
) -> None:
    """Two processes each run a batch_transcribe at the same time; with the `gpu` limit at 1 the
    model task runs, read back from the Prefect API, never overlap."""
    ids = []
    for i, text in enumerate(SENTENCES):
        (tmp_path / str(i)).mkdir()
        ids.append(local_store.import_file("eve", make_speech(tmp_path / str(i), text)).id)
    env = {**os.environ, "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"}

    def batch(half: list[str]) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "deployments.cli", "batch", "transcribe",
                   "--profile", "eve", *half, "--json", "--language", "en"]  # fmt: skip
        return subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    procs = [batch(ids[:3]), batch(ids[3:])]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    results = [BatchResult.model_validate_json(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert all(r.succeeded == 3 and r.cached == 0 for r in results)

    spans: list[tuple[float, float, int]] = []
    child_start = {0: float("inf"), 1: float("inf")}
    for which, result in enumerate(results):
        for child in result.children:
            run_id = UUID(child.run_id or "")
            started = prefect_api.flow_run(run_id).start_time
            assert started is not None
            child_start[which] = min(child_start[which], started.timestamp())
            runs = prefect_api.task_runs(run_id, expect=4, named="transcribe_media")
            model_runs = [r for r in runs if r.name.startswith("transcribe_media")]
            assert len(model_runs) == 1 and model_runs[0].start_time and model_runs[0].end_time
            run = model_runs[0]
            spans.append((run.start_time.timestamp(), run.end_time.timestamp(), which))
    spans.sort()
    # The two batches really ran at the same time: the one whose model ran second already had a
    # child running (waiting for the slot) before the other's last model run ended ...
    first, second = spans[0][2], 1 - spans[0][2]
    last_end_of_first = max(end for _, end, which in spans if which == first)
    assert child_start[second] < last_end_of_first, (child_start, spans)
    # ... and no two model runs overlapped.
    for (_, end, _), (start, _, _) in itertools.pairwise(spans):
        assert start >= end, spans
