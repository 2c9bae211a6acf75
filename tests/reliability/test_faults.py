"""Faults on a PostgreSQL-backed Prefect server with process workers: a worker killed mid-batch,
the server restarted mid-batch. Each input must end with exactly one output, nothing partial.

The stack (tests/stack.py) is a second installation: its own server on its own PostgreSQL
cluster, store and workers; the batches run as `mediaflows batch` subprocesses against it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest

from mediaflows.batches.sweep import STALE_WORKSPACE_S
from mediaflows.files import temp_writer
from mediaflows.models import BatchResult
from tests.flows.test_batch import distinct_clips
from tests.postgres import PostgresCluster
from tests.stack import BIN, Stack, descendants

#: One test worker runs the module: its tests share one stack (server, PostgreSQL, workers).
pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.reliability,
              pytest.mark.xdist_group("pg-stack")]  # fmt: skip


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    cluster = PostgresCluster()
    url = cluster.start()
    # Crash detection as fast as Prefect allows: heartbeats every 30 s, silent 45 s → Crashed.
    stack = Stack(
        tmp_path_factory.mktemp("pg-stack"),
        url,
        server__heartbeat_s="30",
        server__zombie_after_s="45",
    )
    try:
        stack.start_server()
        stack.setup_and_deploy("convert")
        yield stack
    finally:
        stack.close()
        cluster.stop()


def _batch(stack: Stack, profile: str, ids: list[str], *options: str) -> subprocess.Popen[str]:
    args = [str(BIN / "mediaflows"), "batch", "convert", "--profile", profile, *ids, "--json",
            *options]  # fmt: skip
    return subprocess.Popen(args, env=stack.env, cwd=stack.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _result(proc: subprocess.Popen[str], timeout: float) -> BatchResult:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-4000:]
    return BatchResult.model_validate_json(out.strip().splitlines()[-1])


def _exactly_one_output_each(
    stack: Stack, profile: str, ids: list[str], killed: Collection[int] = ()
) -> None:
    outputs = stack.outputs_by_source(profile)
    assert {i: len(outputs.get(i, [])) for i in ids} == dict.fromkeys(ids, 1)
    # A write cut short by kill -9 leaves its hidden temp file, naming its (killed) writer; the
    # sweep's clean-up removes those. (Killed runs' scratch directories are checked apart.)
    runs = stack.settings.work_path / "runs"
    temps = [p for p in stack.stray_files() if p.suffix == ".tmp" and not p.is_relative_to(runs)]
    assert all((temp_writer(p) or ("", 0))[1] in killed for p in temps), temps
    removed = stack.store.remove_abandoned_temp_files(grace_s=0, stale_s=STALE_WORKSPACE_S)
    assert sorted(removed) == sorted(temps)


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_worker_killed_mid_batch_each_file_gets_exactly_one_output(
    pg_stack: Stack, tmp_path: Path
) -> None:
    """Two workers; kill -9 one of them (and the flow runs it started) while it runs children:
    the server marks those runs Crashed (no heartbeat), the batch submits those files again, the
    other worker runs them, and every one of the 24 inputs has exactly one output (24: both
    workers busy with 4 children each and more queued when the kill comes; it was 50, 7 minutes
    of the suite's 18)."""
    started = time.monotonic()
    ids = [pg_stack.store.import_file("kay", clip).id for clip in distinct_clips(tmp_path, 24)]
    doomed, survivor = pg_stack.start_worker(limit=4), pg_stack.start_worker(limit=4)
    # Transcoded at x264's "slower": each child's run stays Running a little longer.
    batch = _batch(pg_stack, "kay", ids, "--mode", "distributed", "--in-flight", "8",
                   "--codec", "transcode", "--preset", "slower")  # fmt: skip

    ran_on: dict[str, set[str]] = {"doomed": set(), "survivor": set()}

    def doomed_busy() -> bool:
        """Some children finished, the doomed worker's flow runs are Running, and both workers
        have run children (the pool spreads them)."""
        runs = pg_stack.flow_runs("convert")
        done = sum(1 for r in runs if r.state is not None and r.state.is_completed())
        for name, worker in (("doomed", doomed), ("survivor", survivor)):
            # A warm worker runs them in its own process; Prefect's process worker in children.
            pids = {str(pid) for pid in (worker.proc.pid, *descendants(worker.proc.pid))}
            ran_on[name] |= {
                str(r.id) for r in runs if str(r.infrastructure_pid).rsplit(":", 1)[-1] in pids
            }
        running = [r for r in runs if r.state is not None and r.state.is_running()
                   and str(r.id) in ran_on["doomed"]]  # fmt: skip
        return done >= 8 and len(running) >= 1 and all(ran_on.values())

    # Kill it while its flow runs are busy, once some children have finished.
    _wait_for(doomed_busy, 300, "children running on the doomed worker")
    killed = doomed.kill()
    killed_at = time.monotonic() - started
    # The worker, with the runs it held (in its own process) and the tools they ran.
    assert killed >= 1 and doomed.proc.wait(timeout=10) == -9

    result = _result(batch, timeout=600)
    assert (result.total, result.succeeded, result.failed) == (24, 24, 0), result
    resubmitted = [c for c in result.children if c.attempts > 1]
    crashed = [r for r in pg_stack.flow_runs("convert") if r.state and r.state.is_crashed()]
    print(f"children seen on each worker before the kill: "
          f"{ {k: len(v) for k, v in ran_on.items()} }")  # fmt: skip
    print(f"killed {killed} processes at {killed_at:.0f} s; {len(crashed)} child runs Crashed, "
          f"{len(resubmitted)} files submitted again; batch done at "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip
    assert crashed and resubmitted, doomed.killed
    assert all("heartbeat" in (r.state.message or "") for r in crashed)
    assert survivor.proc.poll() is None
    _exactly_one_output_each(pg_stack, "kay", ids, doomed.killed_pids)
    # Work files left behind are those of the killed runs only (the sweep removes them).
    left = {p.name for p in (pg_stack.settings.work_path / "runs").glob("*")}
    assert left <= {str(r.id) for r in crashed}, left


def test_server_restarted_mid_batch_loses_and_duplicates_nothing(
    pg_stack: Stack, tmp_path: Path
) -> None:
    """An in-process batch of 20 while the Prefect server is stopped and started again: the
    clients retry until it is back, the batch completes, each input has exactly one output."""
    ids = [pg_stack.store.import_file("ray", clip).id for clip in distinct_clips(tmp_path, 20)]
    batch = _batch(pg_stack, "ray", ids, "--in-flight", "2")
    _wait_for(lambda: len(pg_stack.outputs_by_source("ray")) >= 4, 300, "the first outputs")
    pg_stack.stop_server()
    down = time.monotonic()
    assert len(pg_stack.outputs_by_source("ray")) < 20, "the batch was over before the restart"
    time.sleep(3)
    pg_stack.start_server()
    print(f"server down for {time.monotonic() - down:.1f} s")
    result = _result(batch, timeout=600)
    assert (result.total, result.succeeded, result.failed) == (20, 20, 0), result
    _exactly_one_output_each(pg_stack, "ray", ids)


def test_a_single_run_whose_warm_worker_dies_is_resubmitted_and_finishes_once(
    pg_stack: Stack, tmp_path: Path
) -> None:
    """One convert run (a slow transcode) through the deployment; kill -9 the warm worker
    running it: the crash automation marks it Crashed (no heartbeat), the other warm worker
    schedules it again and runs it, and the input has exactly one output."""
    from tests.media_factory import VIDEOS, make_video

    # 20 s at x264's "slower" stays Running for seconds after it starts, time enough to kill
    # its worker (it was 60 s: two of those transcodes were 60 of this test's 85 CPU-seconds).
    clip = make_video(tmp_path / "long.mkv", VIDEOS["h264_aac.mkv"][1], 20.0, "640x360")
    source = pg_stack.store.import_file("lou", clip)
    pg_stack.start_worker(limit=2)  # (the module's earlier tests may have left a worker up)
    pg_stack.start_worker(limit=2)
    submit = pg_stack.run(
        sys.executable, "-c",
        "import sys; from deployments import client; print(client.submit('convert', 'lou', "
        "sys.argv[1], {'codec': 'transcode', 'preset': 'slower'}, via='deployment'))",
        source.id,
    )  # fmt: skip
    assert submit.returncode == 0, submit.stderr[-3000:]
    run_id = submit.stdout.strip().splitlines()[-1]

    def read() -> Any:
        with pg_stack.client() as client:
            return client.read_flow_run(run_id)

    def state() -> str:
        run = read()
        return run.state.type.value if run.state else ""

    _wait_for(lambda: state() == "RUNNING", 120, "the run to start on a worker")
    pid = int(str(read().infrastructure_pid).rsplit(":", 1)[-1])  # the warm worker's host:pid
    (doomed,) = [w for w in pg_stack.workers if w.proc.pid == pid]
    doomed.kill()
    alive = [w for w in pg_stack.workers if w.proc.poll() is None]
    _wait_for(lambda: state() == "COMPLETED", 400, "the run resubmitted and completed")
    with pg_stack.client() as client:
        run = client.read_flow_run(run_id)
    assert run.run_count >= 2, run  # it ran twice: on the dead worker, then again
    assert any("scheduled again" in w.log.read_text() for w in alive)
    _exactly_one_output_each(pg_stack, "lou", [source.id], doomed.killed_pids)
