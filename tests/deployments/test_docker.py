"""The docker work pool, for real: `./dev docker-image` (the engine, the base image made from the
Debian mirror, the wheelhouse, the image, `mediaflows setup`, prefect-docker.yaml's deployments),
then a `mediaflows worker --pool mediaflows-docker` runs flows in containers of the image (host
network, the session's authenticated server) with the store mounted, then on S3 (moto)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from deployments import client
from deployments.setup import DOCKER_IMAGE, DOCKER_POOL
from deployments.worker import REPO_ROOT
from mediaflows.models import BatchResult, ConvertResult, SrtResult
from mediaflows.stages import Stage
from mediaflows.store import ProfileStore
from tests import prefect_api
from tests.conftest import BUCKET, without_prefect_auth
from tests.deployments.test_warm_worker import _clips
from tests.deployments.test_worker import worker_store  # noqa: F401 - a fixture
from tests.docker_pool import RUNTIME_UID, use_store
from tests.flows.test_batch import distinct_clips
from tests.media_factory import SPEECH_TEXT, ffmpeg, make_speech
from tests.subtitle_rules import words
from tests.wer import wer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BIN = Path(sys.executable).parent


def _engine_unavailable() -> str | None:
    """Why no Docker engine can be had here, or None (`./dev` starts one when we are root)."""
    if shutil.which("docker") is None:
        return "no docker CLI installed"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0:
        return None
    if os.getuid() != 0 or shutil.which("dockerd") is None:
        return "no Docker engine answers, and this user cannot start one (not root or no dockerd)"
    return None


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120,
                          check=True)  # fmt: skip
    return done.stdout.strip()


@pytest.fixture(scope="module")
def docker_deployed(worker_store: ProfileStore) -> dict[str, str]:  # noqa: F811
    reason = _engine_unavailable()
    if reason:
        pytest.skip(reason)
    env = without_prefect_auth(dict(os.environ))  # MEDIAFLOWS_SERVER__AUTH only
    started = time.monotonic()
    made = subprocess.run([str(REPO_ROOT / "dev"), "docker-image"], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=3000, check=False)  # fmt: skip
    if made.returncode != 0 and "dockerd did not start" in made.stderr:
        pytest.skip(made.stderr.strip().splitlines()[-1])
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    print(f"./dev docker-image: {time.monotonic() - started:.1f} s")
    assert prefect_api.deployments()["convert/docker"].work_pool_name == DOCKER_POOL
    return env


@pytest.fixture(scope="module")
def docker_worker(
    docker_deployed: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    cwd = tmp_path_factory.mktemp("docker-worker")
    env = {**docker_deployed, "PREFECT_WORKER_QUERY_SECONDS": "1",
           "PREFECT_WORKER_PREFETCH_SECONDS": "1"}  # fmt: skip
    name = f"test-docker-{uuid.uuid4().hex[:6]}"
    args = [str(BIN / "mediaflows"), "worker", "--pool", DOCKER_POOL, "--name", name]
    with prefect_api.running_worker(args, DOCKER_POOL, name, env, cwd):
        yield cwd / "worker.log"


def _run(name: str, parameters: dict[str, Any]) -> UUID:
    from prefect.deployments import run_deployment

    return run_deployment(name=name, parameters=parameters, timeout=0).id


def _logs(run_id: UUID) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as prefect:
        logs = prefect.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
        )
    return [log.message for log in logs]


def test_the_image_runs_as_a_user_who_cannot_write_the_code(
    docker_deployed: dict[str, str],
) -> None:
    check = ("id -u; test -w /app && echo app-writable; test -w /app/.venv/lib && echo venv;"
             " test -w /data && echo data-writable; fc-list | grep -c WenQuanYi;"
             " find /data ! -user $(id -u) | wc -l")  # fmt: skip
    out = _docker(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", DOCKER_IMAGE, "-c", check
    )
    lines = out.splitlines()
    assert lines[0] == str(RUNTIME_UID) and lines[1] == "data-writable", out
    assert int(lines[2]) >= 1  # the CJK font for burnt-in subtitles
    assert lines[3] == "0", out  # nothing under /data the build left to root (PREFECT_HOME)
    size = int(_docker("image", "inspect", "-f", "{{.Size}}", DOCKER_IMAGE))
    print(f"{DOCKER_IMAGE}: {size / 1e9:.2f} GB")


def test_convert_runs_in_a_container_and_its_result_is_read_here(
    docker_worker: Path,
    worker_store: ProfileStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    source = worker_store.import_file("hana", distinct_clips(tmp_path, 1)[0])
    use_store(worker_store.url)
    run_id = _run("convert/docker", {"profile": "hana", "file_id": source.id,
                                     "request": {"crf": 27}})  # fmt: skip
    result = client.wait(run_id, timeout=300)
    assert isinstance(result, ConvertResult)
    assert result.source_file_id == source.id and not result.cached
    stored = worker_store.get("hana", result.file_id)
    assert stored.tools["ffmpeg"].startswith("ffmpeg ")  # the container's ffmpeg
    flow_run = prefect_api.flow_run(run_id)
    assert flow_run.work_pool_name == DOCKER_POOL and flow_run.infrastructure_pid


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_generate_srt_and_a_batch_of_ten_run_in_containers(
    backend: str,
    docker_worker: Path,
    worker_store: ProfileStore,  # noqa: F811
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One generate_srt, then a distributed batch_generate_srt of 10 files with 4 in flight, all
    in containers (the batch's children in their own, on the docker pool too): each output
    stored once, the runs' logs and progress on the server."""
    from mediaflows.settings import get_settings

    if backend == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        url = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"
        monkeypatch.setenv("MEDIAFLOWS_STORE__URL", url)
        monkeypatch.setenv("MEDIAFLOWS_STORE__S3_ENDPOINT_URL", endpoint)
        get_settings.cache_clear()
        store = ProfileStore.from_settings()
    else:
        endpoint, store = None, worker_store
    clips = _clips(tmp_path, 11, salt=5 if backend == "s3" else 6)
    ids = [store.import_file("kai", c).id for c in clips]
    use_store(store.url, endpoint)
    try:
        one = _run("generate_srt/docker", {"profile": "kai", "file_id": ids[0],
                                           "request": {"language": "en"}})  # fmt: skip
        result = client.wait(one, timeout=300)
        assert isinstance(result, SrtResult) and not result.cached
        assert wer(SPEECH_TEXT, " ".join(words(result.content))) <= 0.3
        assert prefect_api.flow_run(one).work_pool_name == DOCKER_POOL
        status = client.status(one)
        assert (status.stage, status.progress) == (Stage.SUCCEEDED, 100.0)
        # The run's story on the server: the engine's logs from inside the container, and its
        # task runs (the model's included) with their states.
        logs = _logs(one)
        assert any("Finished in state Completed" in m for m in logs), logs[-20:]
        prefect_api.task_runs(one, expect=2, named="transcribe_media")

        parameters = {"profile": "kai", "file_ids": ids[1:], "request": {"language": "en"},
                      "mode": "distributed", "in_flight": 4}  # fmt: skip
        batch = _run("batch_generate_srt/docker", parameters)
        done = client.wait(batch, timeout=900)
        assert isinstance(done, BatchResult), done
        assert [c.status for c in done.children] == ["completed"] * 10, done.children
        spans = []
        for child in done.children:
            assert child.run_id is not None
            child_run = prefect_api.flow_run(UUID(str(child.run_id)))
            assert child_run.work_pool_name == DOCKER_POOL
            assert child_run.start_time and child_run.end_time
            spans.append((child_run.start_time, child_run.end_time))
        # At most 4 children in their containers at once; more than one at a time.
        at_once = max(sum(s <= start < e for s, e in spans) for start, _ in spans)
        assert 2 <= at_once <= 4, spans
        assert client.status(batch).progress == 100.0
        outputs = [f.source_file_id for f in store.list_files("kai") if f.source_file_id in ids]
        assert sorted(str(i) for i in outputs) == sorted(ids)  # once each
    finally:
        get_settings.cache_clear()


def test_a_killed_container_crashes_its_run_and_the_batch_submits_it_again(
    docker_worker: Path,
    worker_store: ProfileStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    long = tmp_path / "long.flac"
    ffmpeg("-stream_loop", "8", "-i", str(make_speech(tmp_path)), str(long))  # ~1 min of speech
    source = worker_store.import_file("lee", long)
    use_store(worker_store.url)
    batch = _run("batch_generate_srt/docker", {"profile": "lee", "file_ids": [source.id],
                                               "request": {"language": "en"},
                                               "mode": "distributed"})  # fmt: skip
    deadline = time.monotonic() + 300
    child = ""
    while not child:
        assert time.monotonic() < deadline, "the child's container never started"
        running = _docker("ps", "--filter", "label=io.prefect.deployment-name=docker",
                          "--filter", "label=io.prefect.flow-name=generate_srt", "-q")  # fmt: skip
        child = running.splitlines()[0] if running else ""
        time.sleep(0.5)
    child_run = UUID(_docker("inspect", "-f", '{{index .Config.Labels "io.prefect.flow-run-id"}}',
                             child))  # fmt: skip
    while "transcribing" not in (client.status(child_run).detail or ""):
        assert time.monotonic() < deadline, client.status(child_run)
        time.sleep(0.3)
    _docker("kill", child)
    killed_at = time.monotonic()
    done = client.wait(batch, timeout=600)
    assert isinstance(done, BatchResult)
    (only,) = done.children
    assert only.status == "completed" and only.attempts == 2, only
    assert prefect_api.flow_run(child_run).state_type.value == "CRASHED"
    outputs = [f for f in worker_store.list_files("lee") if f.source_file_id == source.id]
    assert len(outputs) == 1
    print(f"killed → batch done in {time.monotonic() - killed_at:.1f} s")


def test_a_killed_container_crashes_a_single_run_and_the_worker_submits_it_again(
    docker_worker: Path,
    worker_store: ProfileStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    """No batch around it: the docker worker marks the run Crashed (its container exited 137),
    the crash watcher beside it schedules it again, a new container finishes it, stored once."""
    long = tmp_path / "long.flac"
    # ~1 min of speech, not the batch test's (whose transcription would be a cache hit here)
    ffmpeg("-stream_loop", "9", "-i", str(make_speech(tmp_path)), str(long))
    source = worker_store.import_file("lia", long)
    use_store(worker_store.url)
    run_id = _run("generate_srt/docker", {"profile": "lia", "file_id": source.id,
                                          "request": {"language": "en"}})  # fmt: skip
    deadline = time.monotonic() + 300
    while "transcribing" not in (client.status(run_id).detail or ""):
        assert time.monotonic() < deadline, client.status(run_id)
        time.sleep(0.3)
    (container,) = _docker("ps", "-q", "--filter", f"label=io.prefect.flow-run-id={run_id}").split()
    _docker("kill", container)
    killed_at = time.monotonic()
    while prefect_api.flow_run(run_id).state_type.value != "COMPLETED":
        assert time.monotonic() < killed_at + 300, prefect_api.flow_run(run_id).state
        time.sleep(0.3)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        history = [s.type.value for s in prefect.read_flow_run_states(run_id)]
    print(f"killed → completed in {time.monotonic() - killed_at:.1f} s: {' → '.join(history)}")
    crashed = history.index("CRASHED")
    assert history[crashed + 1] == "SCHEDULED" and history[-1] == "COMPLETED", history
    assert prefect_api.flow_run(run_id).run_count == 2
    result = client.wait(run_id, timeout=60)
    assert isinstance(result, SrtResult)
    assert "scheduled again" in docker_worker.read_text()
    outputs = [f for f in worker_store.list_files("lia") if f.source_file_id == source.id]
    assert len(outputs) == 1, outputs
