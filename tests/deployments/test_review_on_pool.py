"""A reviewer in the loop under a deployment: the run is suspended (its worker slot free), the
answer resumes it on the pool, the model is not asked again; a review nobody answers is ended
by the worker at its deadline. A real server, `prefect deploy --all`, a warm worker of one slot
as a subprocess, real HTTP to the loopback LLM server."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import pytest

import deployments as api
from deployments.setup import PROCESS_POOL
from mediaflows.models import TranslateSrtRequest, TranslateSrtResult
from mediaflows.stages import Stage
from mediaflows.store import ProfileStore
from mediaflows.subtitles import read_srt
from tests import prefect_api
from tests.conftest import LLM_TEST_KEY, without_prefect_auth
from tests.deployments.test_worker import BIN
from tests.deployments.test_worker import deployed as deployed  # the module's fixtures
from tests.deployments.test_worker import worker_store as worker_store
from tests.llm_server import LLMServer
from tests.srt_samples import RELAXED_TRANSLATION_CUES, TRANSLATION_CUES, messy_srt, timecodes

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.xdist_group("pool")]


def _worker_env() -> dict[str, str]:
    """A worker's environment: the loopback LLM server (2-cue chunks; model names of its own,
    so that nothing comes from another module's cached chunks), a fast poll."""
    env = without_prefect_auth(dict(os.environ))
    env.update({
        "MEDIAFLOWS_LLM__BASE_URL": env["REVIEW_LLM_BASE_URL"],
        "MEDIAFLOWS_LLM__API_KEY": LLM_TEST_KEY,
        "MEDIAFLOWS_LLM__MODELS": f'["review-{uuid.uuid4().hex[:8]}"]',
        "MEDIAFLOWS_LLM__TIMEOUT_S": "2",
        "MEDIAFLOWS_LLM__CHUNK_CUES": "2",
        "MEDIAFLOWS_ORCHESTRATION__WORKER_POLL_S": "0.2",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    })  # fmt: skip
    return env


@contextmanager
def one_slot_worker(directory: Path, kind: str = "warm") -> Iterator[Path]:
    """A worker that runs one run at a time (the warm worker, or Prefect's process worker);
    its log."""
    name = f"review-{uuid.uuid4().hex[:6]}"
    args = [str(BIN / "mediaflows"), "worker", "--kind", kind, "--name", name, "--limit", "1"]
    directory.mkdir()
    with prefect_api.running_worker(args, PROCESS_POOL, name, _worker_env(), directory):
        yield directory / "worker.log"


@pytest.fixture(scope="module")
def llm(deployed: dict[str, str], llm_server_session: LLMServer) -> Iterator[LLMServer]:
    """The loopback LLM server the module's workers use (its URL for :func:`_worker_env`)."""
    os.environ["REVIEW_LLM_BASE_URL"] = llm_server_session.base_url
    yield llm_server_session
    os.environ.pop("REVIEW_LLM_BASE_URL", None)


@pytest.fixture(scope="module")
def warm(llm: LLMServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One warm worker of one slot for the module's tests; its log."""
    with one_slot_worker(tmp_path_factory.mktemp("review") / "warm") as log:
        yield log


@pytest.fixture
def refusing(llm: LLMServer) -> Iterator[LLMServer]:
    """The server, reset, with cues 5-6 (the chunk with "See you") never validly answered."""
    llm.reset()
    llm.set_mode("wrong_count", match="See you")
    yield llm
    llm.reset()


def _until(run_id: UUID, timeout: float = 120) -> api.RunStatus:
    """The run's status once it waits for a review (suspended: the stage shows it a moment
    before the state does)."""
    deadline = time.monotonic() + timeout
    while (status := api.status(run_id)).stage != Stage.AWAITING_REVIEW or (
        status.state != "PAUSED"
    ):
        assert not status.finished, status
        assert time.monotonic() < deadline, status
        time.sleep(0.3)
    return status


def test_a_suspended_translation_frees_its_worker_and_resumes_with_the_edits(
    warm: Path, worker_store: ProfileStore, refusing: LLMServer, tmp_path: Path
) -> None:
    llm_server, log = refusing, warm
    (tmp_path / "a.srt").write_bytes(messy_srt(RELAXED_TRANSLATION_CUES))
    (tmp_path / "b.srt").write_bytes(messy_srt(TRANSLATION_CUES))
    source = worker_store.import_file("dave", tmp_path / "a.srt")
    other = worker_store.import_file("dave", tmp_path / "b.srt")
    request = TranslateSrtRequest(target_languages=("de",), review="flagged")
    run_id = api.submit("translate_srt", "dave", source.id, request, via="deployment")
    status = _until(run_id)
    assert (status.state, status.state_name, status.detail) == ("PAUSED", "Suspended",
                                                                "2 cues")  # fmt: skip
    waiting = api.review(run_id)
    assert [c.key for c in waiting.cues] == ["de:5", "de:6"] and waiting.suspended
    # The worker has one slot and holds no suspended run: another run completes meanwhile.
    second = api.submit("translate_srt", "dave", other.id, {"target_languages": ["fr"]},
                                via="deployment")  # fmt: skip
    assert api.wait(second, timeout=120).translations[0].language == "fr"
    assert api.status(run_id).state == "PAUSED"
    asked = len(llm_server.requests)

    edited = "Wir brauchen getrennte Zimmer, weil das Haus sehr klein ist."
    api.resume(run_id, {"de:5": edited}, reviewer="ana")
    result = api.wait(run_id, timeout=120)
    assert isinstance(result, TranslateSrtResult)
    assert len(llm_server.requests) == asked  # resumed from its cached chunks
    content = result.translations[0].content.lstrip("\ufeff").replace("\r\n", "\n")
    texts = [c.text for c in read_srt(content.encode()).cues]
    assert texts[4] == "Wir brauchen getrennte Zimmer,\nweil das Haus sehr klein ist."
    assert texts[5] == "See you tomorrow."
    source_srt = messy_srt(RELAXED_TRANSLATION_CUES).decode("utf-8-sig").replace("\r\n", "\n")
    assert timecodes(content) == timecodes(source_srt)
    assert result.review is not None and result.review.reviewer == "ana"
    assert "suspended for a review: its slot is free" in log.read_text()


def test_a_suspended_review_nobody_answers_is_delivered_at_its_deadline(
    warm: Path, worker_store: ProfileStore, refusing: LLMServer, tmp_path: Path
) -> None:
    log = warm
    (tmp_path / "c.srt").write_bytes(messy_srt(RELAXED_TRANSLATION_CUES[:6]))
    source = worker_store.import_file("dave", tmp_path / "c.srt")
    request = TranslateSrtRequest(target_languages=("de",), review="flagged", review_timeout_s=3)
    run_id = api.submit("translate_srt", "dave", source.id, request, via="deployment")
    _until(run_id)
    result = api.wait(run_id, timeout=60)  # the worker's housekeeping: every 10 s
    assert isinstance(result, TranslateSrtResult)
    assert result.review is not None and result.review.timed_out
    assert result.translations[0].report.untranslated == (5, 6)
    assert "review not answered by its deadline: resumed" in log.read_text()
