"""Deployments on a real process worker: `mediaflows setup` makes the pools, `prefect deploy --all`
applies prefect.yaml, a `prefect worker start` subprocess runs what the Python API submits, and
the typed result is read back in this process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments import client
from deployments.review import resume
from deployments.setup import PROCESS_POOL
from mediaflows.models import ConvertResult, TranslateSrtRequest, TranslateSrtResult
from mediaflows.operations import OPERATIONS
from mediaflows.settings import get_settings
from mediaflows.stages import Stage
from mediaflows.store import ProfileStore
from mediaflows.subtitles import read_srt
from tests import prefect_api
from tests.conftest import without_prefect_auth
from tests.deployments.conftest import pool_worker_env, until_awaiting_review
from tests.flows.test_batch import distinct_clips
from tests.llm_server import LLMServer
from tests.media_factory import VIDEOS, make_video
from tests.runs import wait_for
from tests.srt_samples import RELAXED_TRANSLATION_CUES, messy_srt
from tests.stack import descendants

#: One test worker runs the modules of the group: they share the deployments (made once), the
#: module's tests its store and process worker.
pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.xdist_group("pool")]

BIN = Path(sys.executable).parent
#: Every flow prefect.yaml deploys: each operation's, its batch's, the sweep, the window of a
#: long file (read from the registry: a new operation is checked without an edit here).
FLOWS = (*OPERATIONS, *(spec.batch_name for spec in OPERATIONS.values()), "sweep",
         "transcribe_window")  # fmt: skip


@pytest.fixture(scope="module")
def worker_store(
    tmp_path_factory: pytest.TempPathFactory, prefect_server: str
) -> Iterator[ProfileStore]:
    """One local store for this process and the worker's runs (the session's server up first:
    module fixtures are made before the autouse one that starts it)."""
    url = str(tmp_path_factory.mktemp("worker") / "store")
    previous = os.environ.get("MEDIAFLOWS_STORE__URL")
    os.environ["MEDIAFLOWS_STORE__URL"] = url
    get_settings.cache_clear()
    yield ProfileStore.from_settings()
    if previous is None:
        os.environ.pop("MEDIAFLOWS_STORE__URL", None)
    else:
        os.environ["MEDIAFLOWS_STORE__URL"] = previous
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def deployed(deployments: None, worker_store: ProfileStore) -> dict[str, str]:
    """The environment of this module's workers and CLIs: the deployments made (once per test
    worker, tests/deployments/conftest.py), this module's store."""
    return without_prefect_auth(dict(os.environ))  # MEDIAFLOWS_SERVER__AUTH only


@pytest.fixture(scope="module")
def worker(
    deployed: dict[str, str],
    llm_server_session: LLMServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """`mediaflows worker --kind process` (= `prefect worker start --pool mediaflows-process`),
    polling every second, started outside the checkout: the runs find it through
    MEDIAFLOWS_REPO. (The warm worker, the default, is tests/deployments/test_warm_worker.py.)"""
    cwd = tmp_path_factory.mktemp("worker-cwd")
    env = {
        **deployed,
        **pool_worker_env(llm_server_session),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
    }
    env.pop("MEDIAFLOWS_REPO", None)
    name = f"test-worker-{uuid.uuid4().hex[:6]}"
    args = [str(BIN / "mediaflows"), "worker", "--kind", "process", "--name", name]
    with prefect_api.running_worker(args, PROCESS_POOL, name, env, cwd):
        yield


def test_deploy_all_applies_one_deployment_per_flow(deployed: dict[str, str]) -> None:
    deployments = prefect_api.deployments()
    for flow in FLOWS:
        deployment = deployments[f"{flow}/{flow}"]
        assert deployment.work_pool_name == PROCESS_POOL
        # The UI's run form is typed: the request parameter is the pydantic model's schema.
        if flow != "sweep":
            assert "request" in deployment.parameter_openapi_schema["properties"]
    sweep = deployments["sweep/sweep"]
    assert [s.schedule.interval.total_seconds() for s in sweep.schedules] == [600]
    assert not sweep.schedules[0].active  # paused until someone resumes it (UI or CLI)
    assert prefect_api.work_pool(PROCESS_POOL).type == "process"


def test_worker_runs_the_submitted_deployment_run_once_per_key(
    worker: None, worker_store: ProfileStore, tmp_path: Path
) -> None:
    source = worker_store.import_file("dave", distinct_clips(tmp_path, 1)[0])
    key = f"worker-{uuid.uuid4()}"
    run_id = client.submit("convert", "dave", source.id, {"crf": 28}, idempotency_key=key)
    assert client.submit("convert", "dave", source.id, {"crf": 28}, idempotency_key=key) == run_id

    run = prefect_api.flow_run(run_id)
    assert run.deployment_id is not None  # through the deployment, not in this process
    result = client.wait(run_id, timeout=120)
    assert isinstance(result, ConvertResult)
    assert result.source_file_id == source.id and not result.cached
    assert worker_store.find("dave", result.file_id) is not None
    assert [r.id for r in prefect_api.flow_runs_with_key(key)] == [run_id]
    assert prefect_api.flow_run(run_id).infrastructure_pid  # a worker subprocess ran it
    status = client.status(run_id)
    assert (status.stage, status.progress) == (Stage.SUCCEEDED, 100.0)


def _is_prefect_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "prefect worker start" in cmdline


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and text in cmdline:
            found.append(cmdline)
    return found


def test_a_cancelled_run_stops_ffmpeg_and_leaves_no_work_files(
    worker: None, worker_store: ProfileStore, tmp_path: Path
) -> None:
    """Cancel a convert (a slow transcode) from the API while ffmpeg runs: the run ends
    Cancelled, its ffmpeg is gone, its work directory removed, nothing stored."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    video = make_video(tmp_path / "long.avi", VIDEOS["mpeg4_mp3.avi"][1], 60.0, "1280x720")
    source = worker_store.import_file("ivy", video)
    run_id = client.submit("convert", "ivy", source.id, {"preset": "slower"}, via="deployment")
    deadline = time.monotonic() + 120
    while not (client.status(run_id).detail or "").startswith("converting"):
        assert time.monotonic() < deadline and not client.status(run_id).finished
        time.sleep(0.5)
    workspace = get_settings().work_path / "runs" / str(run_id)
    assert _processes_mentioning(str(workspace)), "ffmpeg runs in the run's work directory"
    assert any(workspace.iterdir())

    with get_client(sync_client=True) as prefect:
        prefect.set_flow_run_state(run_id, Cancelling(message="test: cancel"))
    deadline = time.monotonic() + 90
    while not client.status(run_id).finished:
        assert time.monotonic() < deadline, client.status(run_id)
        time.sleep(0.5)
    assert client.status(run_id).state == "CANCELLED"
    time.sleep(1)
    assert _processes_mentioning(str(workspace)) == []
    assert not workspace.exists()
    assert [f.id for f in worker_store.list_files("ivy")] == [source.id]


def test_a_run_whose_process_is_killed_is_scheduled_again_and_the_worker_stops_on_sigterm(
    deployed: dict[str, str], worker_store: ProfileStore, tmp_path: Path
) -> None:
    """A worker of its own: kill -9 the process of its convert run; Prefect's process worker
    marks the run Crashed, the crash watcher beside it (`mediaflows worker`) schedules it again,
    the worker runs it again, one output. Then SIGTERM to `mediaflows worker` alone: it and
    Prefect's worker end, exit status 0."""
    import signal

    from prefect.client.orchestration import get_client

    cwd = tmp_path / "own-worker"
    cwd.mkdir()
    env = {**deployed, "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
    name = f"test-crash-{uuid.uuid4().hex[:6]}"
    args = [str(BIN / "mediaflows"), "worker", "--kind", "process", "--name", name, "--limit", "1"]
    log = cwd / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not prefect_api.worker_online(PROCESS_POOL, name):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        video = make_video(tmp_path / "clip.avi", VIDEOS["mpeg4_mp3.avi"][1], 20.0, "640x360")
        source = worker_store.import_file("kit", video)
        run_id = client.submit("convert", "kit", source.id, {"preset": "slower"},
                               via="deployment")  # fmt: skip
        deadline = time.monotonic() + 120
        while not (client.status(run_id).detail or "").startswith("converting"):
            assert time.monotonic() < deadline and not client.status(run_id).finished
            time.sleep(0.3)
        where = str(prefect_api.flow_run(run_id).infrastructure_pid)  # host:pid of the run
        os.kill(int(where.rsplit(":", 1)[-1]), signal.SIGKILL)
        killed_at = time.monotonic()
        result = None
        while result is None:
            assert time.monotonic() < killed_at + 180, prefect_api.flow_run(run_id).state
            if prefect_api.flow_run(run_id).state_type.value == "COMPLETED":
                result = client.wait(run_id, timeout=30)
            time.sleep(0.5)
        with get_client(sync_client=True) as prefect:
            history = [s.type.value for s in prefect.read_flow_run_states(run_id)]
        print(f"killed → completed in {time.monotonic() - killed_at:.1f} s: {history}")
        assert isinstance(result, ConvertResult)
        crashed = history.index("CRASHED")
        assert history[crashed + 1] == "SCHEDULED", history
        # (The module's worker of the pool, when up, may take the run or watch too: either
        # watcher's step is the one under test, no other code sets a Crashed run Scheduled.)
        outputs = [f for f in worker_store.list_files("kit") if f.source_file_id == source.id]
        assert len(outputs) == 1, outputs

        # Prefect's worker dying under `mediaflows worker` (Prefect 3.8's limiter race does
        # that on a loaded machine): it is started again, and comes back online.
        (first,) = [pid for pid in descendants(proc.pid) if _is_prefect_worker(pid)]
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: [p for p in descendants(proc.pid) if _is_prefect_worker(p)
                          and p != first], 30, "Prefect's worker started again")  # fmt: skip
        assert "started again" in log.read_text()
        wait_for(lambda: prefect_api.worker_online(PROCESS_POOL, name), 90, "the worker online")

        os.kill(proc.pid, signal.SIGTERM)  # the supervisor only: it hands the signal on
        stopped_at = time.monotonic()
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
        print(f"SIGTERM → stopped in {time.monotonic() - stopped_at:.1f} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    time.sleep(0.5)
    assert _processes_mentioning(name) == []  # Prefect's worker ended with it


def test_prefects_process_worker_suspends_and_resumes_a_review_too(
    worker: None, worker_store: ProfileStore, refusing: LLMServer, tmp_path: Path
) -> None:
    """Suspended, the run's process ends; the worker must not call it crashed; resumed, a new
    process finishes it from the cached chunks."""
    llm_server = refusing
    (tmp_path / "d.srt").write_bytes(messy_srt(RELAXED_TRANSLATION_CUES[:6]))
    source = worker_store.import_file("dave", tmp_path / "d.srt")
    request = TranslateSrtRequest(target_languages=("de",), review="flagged")
    run_id = client.submit("translate_srt", "dave", source.id, request, via="deployment")
    status = until_awaiting_review(run_id)
    assert status.state_name == "Suspended"
    time.sleep(2)  # the run's process ends; the worker must not call it crashed
    assert client.status(run_id).state == "PAUSED"
    asked = len(llm_server.requests)
    resume(run_id, {"de:5": "Wir brauchen getrennte Zimmer."}, reviewer="p")
    result = client.wait(run_id, timeout=120)
    assert isinstance(result, TranslateSrtResult)
    assert len(llm_server.requests) == asked
    content = result.translations[0].content.lstrip("\ufeff").replace("\r\n", "\n")
    assert [c.text for c in read_srt(content.encode()).cues][4] == "Wir brauchen getrennte Zimmer."
