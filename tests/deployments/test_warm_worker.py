"""The warm worker (`mediaflows worker`, the default): deployment runs execute in its own
process, the model loaded once for any number of runs; cancelling a run stops it; a crashed run
is resubmitted; a run suspended for a reviewer frees its slot and comes back resumed. A real
server, `prefect deploy --all`, the worker as a subprocess."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments import client
from deployments.review import resume, review
from deployments.setup import PROCESS_POOL
from mediaflows.models import GenerateSrtRequest, SrtResult, TranslateSrtRequest, TranslateSrtResult
from mediaflows.store import ProfileStore
from mediaflows.subtitles import read_srt
from tests import prefect_api
from tests.deployments.conftest import pool_worker_env, until_awaiting_review
from tests.deployments.test_worker import BIN
from tests.deployments.test_worker import deployed as deployed  # the module's fixtures
from tests.deployments.test_worker import worker_store as worker_store
from tests.llm_server import LLMServer
from tests.media_factory import SPEECH_TEXT, ffmpeg, join_real_speech, make_speech
from tests.runs import wait_for
from tests.srt_samples import RELAXED_TRANSLATION_CUES, TRANSLATION_CUES, messy_srt, timecodes
from tests.subtitle_rules import words
from tests.wer import wer

#: One test worker runs the module: its tests share the deployments and the warm worker.
pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.xdist_group("pool")]


@pytest.fixture(scope="module")
def warm(
    deployed: dict[str, str],
    llm_server_session: LLMServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """A warm worker running up to 2 runs at once, pointed at the loopback LLM server too; its
    log (model loads are logged there)."""
    cwd = tmp_path_factory.mktemp("warm-cwd")
    name = f"warm-{uuid.uuid4().hex[:6]}"
    args = [str(BIN / "mediaflows"), "worker", "--name", name, "--limit", "2"]
    env = {**deployed, **pool_worker_env(llm_server_session)}
    env["MEDIAFLOWS_ORCHESTRATION__WORKER_POLL_S"] = "0.2"
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


# ---- a reviewer in the loop (tasks.review): the run suspended, its slot free ----------------


def test_a_suspended_translation_frees_its_worker_and_resumes_with_the_edits(
    warm: Path, worker_store: ProfileStore, refusing: LLMServer, tmp_path: Path
) -> None:
    llm_server, log = refusing, warm
    (tmp_path / "a.srt").write_bytes(messy_srt(RELAXED_TRANSLATION_CUES))
    (tmp_path / "b.srt").write_bytes(messy_srt(TRANSLATION_CUES))
    source = worker_store.import_file("dave", tmp_path / "a.srt")
    other = worker_store.import_file("dave", tmp_path / "b.srt")
    request = TranslateSrtRequest(target_languages=("de",), review="flagged")
    run_id = client.submit("translate_srt", "dave", source.id, request, via="deployment")
    status = until_awaiting_review(run_id)
    assert (status.state, status.state_name, status.detail) == ("PAUSED", "Suspended",
                                                                "2 cues")  # fmt: skip
    waiting = review(run_id)
    assert [c.key for c in waiting.cues] == ["de:5", "de:6"] and waiting.suspended
    # The worker no longer holds the suspended run (its slot is free), and runs another.
    wait_for(lambda: "suspended for a review: its slot is free" in log.read_text(), 10,
             "the worker to let the suspended run go")  # fmt: skip
    second = client.submit("translate_srt", "dave", other.id, {"target_languages": ["fr"]},
                                via="deployment")  # fmt: skip
    assert client.wait(second, timeout=120).translations[0].language == "fr"
    assert client.status(run_id).state == "PAUSED"
    asked = len(llm_server.requests)

    edited = "Wir brauchen getrennte Zimmer, weil das Haus sehr klein ist."
    resume(run_id, {"de:5": edited}, reviewer="ana")
    result = client.wait(run_id, timeout=120)
    assert isinstance(result, TranslateSrtResult)
    assert len(llm_server.requests) == asked  # resumed from its cached chunks
    content = result.translations[0].content.lstrip("\ufeff").replace("\r\n", "\n")
    texts = [c.text for c in read_srt(content.encode()).cues]
    assert texts[4] == "Wir brauchen getrennte Zimmer,\nweil das Haus sehr klein ist."
    assert texts[5] == "See you tomorrow."
    source_srt = messy_srt(RELAXED_TRANSLATION_CUES).decode("utf-8-sig").replace("\r\n", "\n")
    assert timecodes(content) == timecodes(source_srt)
    assert result.review is not None and result.review.reviewer == "ana"


def test_a_suspended_review_nobody_answers_is_delivered_at_its_deadline(
    warm: Path, worker_store: ProfileStore, refusing: LLMServer, tmp_path: Path
) -> None:
    log = warm
    (tmp_path / "c.srt").write_bytes(messy_srt(RELAXED_TRANSLATION_CUES[:6]))
    source = worker_store.import_file("dave", tmp_path / "c.srt")
    request = TranslateSrtRequest(target_languages=("de",), review="flagged", review_timeout_s=3)
    run_id = client.submit("translate_srt", "dave", source.id, request, via="deployment")
    until_awaiting_review(run_id)
    result = client.wait(run_id, timeout=60)  # the worker's housekeeping: every 2 s here
    assert isinstance(result, TranslateSrtResult)
    assert result.review is not None and result.review.timed_out
    assert result.translations[0].report.untranslated == (5, 6)
    assert "review not answered by its deadline: resumed" in log.read_text()


def test_a_suspended_run_cancelled_in_the_ui_ends_cancelled(
    warm: Path, worker_store: ProfileStore, refusing: LLMServer, tmp_path: Path
) -> None:
    """No process holds a suspended run; cancelled, it ends Cancelled (Prefect 3.8 does it, no
    worker needs to), and nothing is stored."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    (tmp_path / "e.srt").write_bytes(messy_srt(RELAXED_TRANSLATION_CUES[1:7]))  # a file of its own
    source = worker_store.import_file("dave", tmp_path / "e.srt")
    request = TranslateSrtRequest(target_languages=("de",), review="flagged")
    run_id = client.submit("translate_srt", "dave", source.id, request, via="deployment")
    until_awaiting_review(run_id)
    with get_client(sync_client=True) as prefect:
        prefect.set_flow_run_state(run_id, Cancelling(), force=True)  # as the UI's Cancel
    wait_for(lambda: client.status(run_id).state == "CANCELLED", 30, "the run to be Cancelled")
    assert [f for f in worker_store.list_files("dave") if f.source_file_id == source.id] == []
