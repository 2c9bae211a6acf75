"""The warm worker (`mediaflows worker`, the default): deployment runs execute in its own
process, the model loaded once for any number of runs; cancelling a run stops it; a crashed run
is resubmitted. A real server, `prefect deploy --all`, the worker as a subprocess."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments import client
from deployments.setup import PROCESS_POOL
from mediaflows.models import GenerateSrtRequest, SrtResult
from mediaflows.store import ProfileStore
from tests import prefect_api
from tests.deployments.test_worker import BIN
from tests.deployments.test_worker import deployed as deployed  # the module's fixtures
from tests.deployments.test_worker import worker_store as worker_store
from tests.media_factory import SPEECH_TEXT, ffmpeg, join_real_speech, make_speech
from tests.subtitle_rules import words
from tests.wer import wer

#: One test worker runs the module: its tests share the deployments and the warm worker.
pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.xdist_group("pool")]


@pytest.fixture(scope="module")
def warm(deployed: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A warm worker running up to 2 runs at once; its log (model loads are logged there)."""
    cwd = tmp_path_factory.mktemp("warm-cwd")
    name = f"warm-{uuid.uuid4().hex[:6]}"
    args = [str(BIN / "mediaflows"), "worker", "--name", name, "--limit", "2"]
    env = {**deployed, "MEDIAFLOWS_ORCHESTRATION__WORKER_POLL_S": "0.2"}
    with prefect_api.running_worker(args, PROCESS_POOL, name, env, cwd):
        yield cwd / "worker.log"


def _clips(directory: Path, n: int, salt: int) -> list[Path]:
    """``n`` different files of the same ~6 s speech (silence of different lengths after it),
    so that no transcription is answered from another's cache or output; each test its own
    ``salt`` (the tests share one store)."""
    speech = make_speech(directory)
    clips = []
    for i in range(n):
        out = directory / f"clip-{i}.flac"
        pad = 0.1 * (i + 1) + 3.0 * salt
        ffmpeg("-i", str(speech), "-af", f"apad=pad_dur={pad:.1f}", str(out))
        clips.append(out)
    return clips


def test_runs_on_a_warm_worker_load_the_model_once(
    warm: Path,
    worker_store: ProfileStore,
    tmp_path: Path,
) -> None:
    """Four runs, two at a time, one model load: the second pair runs on the model the first
    loaded (it was twenty runs, then eight: 62 CPU-seconds of the suite's 1,270, the same
    property shown by runs 3 to 8 as by runs 3 and 4)."""
    ids = [worker_store.import_file("dave", c).id for c in _clips(tmp_path, 4, salt=0)]
    request = GenerateSrtRequest(language="en")
    runs = [client.submit("generate_srt", "dave", i, request, via="deployment") for i in ids]
    results = [client.wait(r, timeout=300) for r in runs]
    pids: set[str] = set()
    assert all(isinstance(r, SrtResult) and not r.cached for r in results)
    assert all(wer(SPEECH_TEXT, " ".join(words(r.content))) <= 0.3 for r in results)
    for run_id in runs:
        run = prefect_api.flow_run(run_id)
        assert run.deployment_id is not None
        pids.add(str(run.infrastructure_pid).rsplit(":", 1)[-1])
    assert len(pids) == 1  # all in the worker's own process
    loads = [ln for ln in warm.read_text().splitlines() if "loaded Whisper model" in ln]
    assert len(loads) == 1, loads
    assert "load 1 in this process" in loads[0]


def test_a_cancelled_run_stops_and_the_worker_goes_on(
    warm: Path,
    worker_store: ProfileStore,
    tmp_path: Path,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    # ~3 minutes of real speech: one window (a longer file is windows on the pool:
    # tests/deployments/test_windows_on_pool.py cancels those). Not one synthetic sentence
    # looped: the model hears its repeats as a loop and falls back to sampling at every
    # temperature, minutes inside one model call that no cancel can interrupt (108 s measured).
    long, _ = join_real_speech(tmp_path / "long.flac", ["sonnet1", "sonnet2", "sonnet3", "jfk"])
    source = worker_store.import_file("dave", long)
    run_id = client.submit("transcribe", "dave", source.id, {"language": "en"}, via="deployment")
    deadline = time.monotonic() + 120
    while "transcribing" not in (client.status(run_id).detail or ""):
        assert time.monotonic() < deadline, client.status(run_id)
        time.sleep(0.3)
    with get_client(sync_client=True) as prefect:
        prefect.set_flow_run_state(run_id, Cancelling(), force=True)
    deadline = time.monotonic() + 240  # the model's next segment, on a busy CI machine
    while not client.status(run_id).finished:
        assert time.monotonic() < deadline, client.status(run_id)
        time.sleep(0.3)
    assert prefect_api.flow_run(run_id).state.type.value == "CANCELLED"
    assert [f.id for f in worker_store.list_files("dave") if f.source_file_id == source.id] == []
    # The worker is alive and takes the next run.
    (tmp_path / "next").mkdir()
    other = worker_store.import_file("dave", _clips(tmp_path / "next", 1, salt=1)[0])
    result = client.wait(client.submit("transcribe", "dave", other.id, {"language": "en"},
                                       via="deployment"), timeout=120)  # fmt: skip
    assert wer(SPEECH_TEXT, result.text) <= 0.3
    assert "is cancelled: stopping it" in warm.read_text()


def test_two_warm_workers_share_the_gpu_limit(
    warm: Path, deployed: dict[str, str], worker_store: ProfileStore, tmp_path: Path
) -> None:
    """A second warm worker next to the first: runs go to both, and with the `gpu` limit at 1
    their model runs, read back from the Prefect API, never overlap."""
    name = f"warm2-{uuid.uuid4().hex[:6]}"
    args = [str(BIN / "mediaflows"), "worker", "--name", name, "--limit", "2"]
    env = {**deployed, "MEDIAFLOWS_ORCHESTRATION__WORKER_POLL_S": "0.2"}
    ids = [worker_store.import_file("dave", c).id for c in _clips(tmp_path, 8, salt=2)]
    with prefect_api.running_worker(args, PROCESS_POOL, name, env, tmp_path):
        runs = [client.submit("transcribe", "dave", i, {"language": "en"}, via="deployment")
                for i in ids]  # fmt: skip
        for run_id in runs:
            client.wait(run_id, timeout=300)
    where = {str(prefect_api.flow_run(r).infrastructure_pid) for r in runs}
    assert len(where) == 2, where  # both workers took runs
    spans = []
    for run_id in runs:
        task_runs = prefect_api.task_runs(run_id, expect=4, named="transcribe_media")
        (model,) = [r for r in task_runs if r.name.startswith("transcribe_media")]
        assert model.start_time and model.end_time
        spans.append((model.start_time.timestamp(), model.end_time.timestamp()))
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 0.05, spans  # one model run at a time, across both workers
