"""A reviewer in the loop on Prefect's process worker (`mediaflows worker --kind process`, a
process per run, as the docker pool runs them): the run's process ends when it is suspended and
a new one finishes it. Its own module: no other worker of the pool may take the run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import deployments as api
from mediaflows.models import TranslateSrtRequest, TranslateSrtResult
from mediaflows.store import ProfileStore
from mediaflows.subtitles import read_srt
from tests.deployments.test_review_on_pool import _until, one_slot_worker
from tests.deployments.test_review_on_pool import llm as llm  # the module's fixtures
from tests.deployments.test_review_on_pool import refusing as refusing
from tests.deployments.test_worker import deployed as deployed
from tests.deployments.test_worker import worker_store as worker_store
from tests.llm_server import LLMServer
from tests.srt_samples import RELAXED_TRANSLATION_CUES, messy_srt

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.xdist_group("pool")]


def test_prefects_process_worker_suspends_and_resumes_a_review_too(
    llm: LLMServer, worker_store: ProfileStore, refusing: LLMServer, tmp_path: Path
) -> None:
    """Suspended, the run's process ends; the worker must not call it crashed; resumed, a new
    process finishes it from the cached chunks."""
    llm_server = refusing
    (tmp_path / "d.srt").write_bytes(messy_srt(RELAXED_TRANSLATION_CUES[:6]))
    source = worker_store.import_file("dave", tmp_path / "d.srt")
    with one_slot_worker(tmp_path / "process", kind="process"):
        request = TranslateSrtRequest(target_languages=("de",), review="flagged")
        run_id = api.submit("translate_srt", "dave", source.id, request, via="deployment")
        status = _until(run_id)
        assert status.state_name == "Suspended"
        time.sleep(2)  # the run's process ends; the worker must not call it crashed
        assert api.status(run_id).state == "PAUSED"
        asked = len(llm_server.requests)
        api.resume(run_id, {"de:5": "Wir brauchen getrennte Zimmer."}, reviewer="p")
        result = api.wait(run_id, timeout=120)
    assert isinstance(result, TranslateSrtResult)
    assert len(llm_server.requests) == asked
    content = result.translations[0].content.lstrip("\ufeff").replace("\r\n", "\n")
    assert [c.text for c in read_srt(content.encode()).cues][4] == "Wir brauchen getrennte Zimmer."
