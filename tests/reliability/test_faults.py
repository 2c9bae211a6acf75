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

import pytest

from mediaflows.batches.sweep import STALE_WORKSPACE_S
from mediaflows.files import temp_writer
from mediaflows.models import BatchResult
from tests.flows.test_batch import distinct_clips
from tests.postgres import PostgresCluster
from tests.stack import BIN, Stack, Worker, descendants

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


def test_a_worker_killed_mid_batch_and_mid_run_each_input_gets_exactly_one_output(
    pg_stack: Stack, tmp_path: Path
) -> None:
    """Two warm workers run the children of a distributed batch of 24 and one lone deployment
    run (a slow transcode); kill -9 the worker running the lone run (with the flow runs it holds
    and the tools they started) once it also runs batch children: the server marks those runs
    Crashed (no heartbeat); the batch submits its files again, the other worker schedules the
    lone run again, and every input has exactly one output.

    One kill for both: the wait for the missed heartbeats (45-75 s) is paid once; they were two
    tests, each paying it (83 + 95 s of the suite)."""
    from tests.media_factory import VIDEOS, make_video

    started = time.monotonic()
    ids = [pg_stack.store.import_file("kay", clip).id for clip in distinct_clips(tmp_path, 24)]
    # 20 s at x264's "slower" stays Running for seconds after it starts, time enough to kill
    # its worker.
    clip = make_video(tmp_path / "long.mkv", VIDEOS["h264_aac.mkv"][1], 20.0, "640x360")
    lone = pg_stack.store.import_file("lou", clip)
    workers = [pg_stack.start_worker(limit=4), pg_stack.start_worker(limit=4)]
    # Transcoded at x264's "slower": each child's run stays Running a little longer.
    batch = _batch(pg_stack, "kay", ids, "--mode", "distributed", "--in-flight", "7",
                   "--codec", "transcode", "--preset", "slower")  # fmt: skip
    submit = pg_stack.run(
        sys.executable, "-c",
        "import sys; from deployments import client; print(client.submit('convert', 'lou', "
        "sys.argv[1], {'codec': 'transcode', 'preset': 'slower'}, via='deployment'))",
        lone.id,
    )  # fmt: skip
    assert submit.returncode == 0, submit.stderr[-3000:]
    run_id = submit.stdout.strip().splitlines()[-1]

    ran_on: dict[int, set[str]] = {w.proc.pid: set() for w in workers}
    doomed: list[Worker] = []

    def lone_and_children_running() -> bool:
        """The lone run is Running on a worker that also runs batch children, and both workers
        have run children (the pool spreads them)."""
        runs = pg_stack.flow_runs("convert")
        for worker in workers:
            # A warm worker runs them in its own process; Prefect's process worker in children.
            pids = {str(pid) for pid in (worker.proc.pid, *descendants(worker.proc.pid))}
            ran_on[worker.proc.pid] |= {
                str(r.id) for r in runs if str(r.infrastructure_pid).rsplit(":", 1)[-1] in pids
            }
        running = {str(r.id) for r in runs if r.state is not None and r.state.is_running()}
        if run_id not in running or not all(ran_on.values()):
            return False
        (host,) = [w for w in workers if run_id in ran_on[w.proc.pid]]
        doomed[:] = [host]
        return bool((running - {run_id}) & ran_on[host.proc.pid])

    _wait_for(lone_and_children_running, 300, "the lone run and children on one worker")
    (victim,) = doomed
    killed = victim.kill()
    killed_at = time.monotonic() - started
    # The worker, with the runs it held (in its own process) and the tools they ran.
    assert killed >= 1 and victim.proc.wait(timeout=10) == -9
    survivor = next(w for w in workers if w is not victim)

    result = _result(batch, timeout=600)
    assert (result.total, result.succeeded, result.failed) == (24, 24, 0), result
    resubmitted = [c for c in result.children if c.attempts > 1]

    def lone_state() -> str:
        with pg_stack.client() as client:
            run = client.read_flow_run(run_id)
        return run.state.type.value if run.state else ""

    _wait_for(lambda: lone_state() == "COMPLETED", 400, "the lone run scheduled again")
    crashed = [r for r in pg_stack.flow_runs("convert") if r.state and r.state.is_crashed()]
    with pg_stack.client() as client:
        lone_run = client.read_flow_run(run_id)
    print(f"children seen on each worker before the kill: "
          f"{ {k: len(v) for k, v in ran_on.items()} }")  # fmt: skip
    print(f"killed {killed} processes at {killed_at:.0f} s; {len(crashed)} child runs Crashed, "
          f"{len(resubmitted)} files submitted again; all done at "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip
    assert crashed and resubmitted, victim.killed
    assert all("heartbeat" in (r.state.message or "") for r in crashed)
    assert lone_run.run_count >= 2, lone_run  # it ran twice: on the dead worker, then again
    assert "scheduled again" in survivor.log.read_text()
    assert survivor.proc.poll() is None
    _exactly_one_output_each(pg_stack, "kay", ids, victim.killed_pids)
    assert len(pg_stack.outputs_by_source("lou").get(lone.id, [])) == 1
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
