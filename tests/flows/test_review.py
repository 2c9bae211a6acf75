"""A reviewer in the loop, in-process (the run pauses): real HTTP to the loopback LLM server, a
real Prefect server, answers through the Python API and through Prefect's own resume (as the
UI's form sends them)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState
from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypes
from prefect.client.schemas.objects import State, StateType

import deployments
from flows.fix_srt import fix_srt
from flows.translate_srt import translate_srt
from mediaflows.errors import InputError, ReviewRefusedError
from mediaflows.models import (
    FixSrtRequest,
    GenerateSrtRequest,
    ReviewTimeoutRule,
    SrtResult,
    TranslateSrtRequest,
    TranslateSrtResult,
)
from mediaflows.stages import Stage
from mediaflows.store import ProfileStore
from mediaflows.subtitles import read_srt
from tasks.prefect_adapter import state_of
from tests import prefect_api
from tests.conftest import without_prefect_auth
from tests.llm_server import LLMServer
from tests.runs import MEDIAFLOWS, cli, import_bytes, run_flow, wait_for
from tests.srt_samples import RELAXED_TRANSLATION_CUES, messy_srt, timecodes

#: Cues 5 and 6 (chunk 2 of 2-cue chunks) get no valid answer: their source text is kept.
REFUSED = "See you"


@pytest.fixture
def two_refused(llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> LLMServer:
    monkeypatch.setenv("MEDIAFLOWS_LLM__CHUNK_CUES", "2")
    monkeypatch.setenv("MEDIAFLOWS_ORCHESTRATION__REVIEW_POLL_S", "0.2")
    from mediaflows.settings import get_settings

    get_settings.cache_clear()
    llm_server.set_mode("wrong_count", match=REFUSED)
    return llm_server


class Background:
    """A flow run in a thread of this process, and its id once the server has it paused."""

    def __init__(self, request: Any, file_id: str | list[str], flow: Any = translate_srt) -> None:
        self.state: State[Any] | None = None
        self.started = time.time()
        args = (flow, request, file_id)
        self.thread = threading.Thread(target=self._run, args=args, daemon=True)
        self.thread.start()

    def _run(self, flow: Any, request: Any, file_id: str | list[str]) -> None:
        if isinstance(file_id, str):
            self.state = run_flow(flow, "rita", file_id, request)
        else:  # a batch
            self.state = asyncio.run(state_of(flow, profile="rita", file_ids=file_id,
                                              request=request))  # fmt: skip

    def paused(self, timeout: float = 60) -> UUID:
        """The run's id once it waits (the newest paused run of the server)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.thread.is_alive(), f"the run ended: {self.state}"
            with get_client(sync_client=True) as client:
                found = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=StateTypes(any_=[StateType.PAUSED]))
                    )
                )
            mine = [r for r in found if r.created and r.created.timestamp() >= self.started - 5]
            if mine:
                return mine[0].id
            time.sleep(0.2)
        raise AssertionError("the run never paused")

    def end(self, timeout: float = 60) -> State[Any]:
        self.thread.join(timeout)
        assert self.state is not None, "the run did not end"
        return self.state


def waiting_translation(
    tmp_path: Path, store: ProfileStore, background: list[Background]
) -> tuple[Background, UUID]:
    """A translation into German with review: flagged, started in a thread; it and its run id
    once it waits (with ``two_refused``: on cues 5 and 6)."""
    request = TranslateSrtRequest(target_languages=("de",), review="flagged")
    run = Background(request, _source(tmp_path, store))
    background.append(run)
    return run, run.paused()


def _source(tmp_path: Path, store: ProfileStore) -> str:
    return import_bytes(store, tmp_path, messy_srt(RELAXED_TRANSLATION_CUES), profile="rita")


def _texts(content: str) -> list[str]:
    return [c.text for c in read_srt(content.lstrip("\ufeff").replace("\r\n", "\n").encode()).cues]


@pytest.fixture
def background() -> Iterator[list[Background]]:
    runs: list[Background] = []
    yield runs
    for run in runs:  # a test that failed half-way leaves no paused run behind
        if run.thread.is_alive():
            with get_client(sync_client=True) as client:
                for flow_run in client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=StateTypes(any_=[StateType.PAUSED]))
                    )
                ):
                    client.resume_flow_run(flow_run.id)
            run.thread.join(30)


def test_a_paused_translation_takes_the_reviewers_text_at_the_original_times(
    two_refused: LLMServer, local_store: ProfileStore, tmp_path: Path,
    background: list[Background],
) -> None:  # fmt: skip
    run, run_id = waiting_translation(tmp_path, local_store, background)
    asked = len(two_refused.requests)

    status = deployments.status(run_id)
    assert (status.state, status.stage, status.detail) == ("PAUSED", Stage.AWAITING_REVIEW,
                                                           "2 cues")  # fmt: skip
    waiting = deployments.review(run_id)
    assert [c.key for c in waiting.cues] == ["de:5", "de:6"]
    first = waiting.cues[0]
    assert (first.start, first.end) == ("00:00:20,000", "00:00:24,500")
    assert (
        first.current.replace("\n", " ")
        == "We need separate rooms because the house is very small."
    )
    assert "left untranslated" in first.reasons[0] and first.max_line_chars == 42
    assert not waiting.suspended and waiting.attempt == 1

    # Refused before anything is sent: a cue not asked about; lost markup; too long to fit.
    with pytest.raises(ReviewRefusedError, match="cue de:3 was not flagged"):
        deployments.resume(run_id, {"de:3": "Wo ist Prefect?"})
    with pytest.raises(ReviewRefusedError, match="does not fit 2 lines of 42"):
        deployments.resume(run_id, {"de:5": "Wir brauchen " + "sehr " * 20 + "getrennte Zimmer."})
    assert deployments.status(run_id).state == "PAUSED"

    edited = "Wir brauchen getrennte Zimmer, weil das Haus sehr klein ist."
    deployments.resume(run_id, {"de:5": edited, "de:6": "accept"}, reviewer="ana")
    state = run.end()
    assert state.is_completed(), state.message
    result: TranslateSrtResult = state.result()
    assert len(two_refused.requests) == asked  # the model was not asked again
    content = result.translations[0].content
    texts = _texts(content)
    assert texts[4] == "Wir brauchen getrennte Zimmer,\nweil das Haus sehr klein ist."  # wrapped
    assert texts[5] == "See you tomorrow."  # accepted as it was
    source = messy_srt(RELAXED_TRANSLATION_CUES).decode("utf-8-sig").replace("\r\n", "\n")
    assert timecodes(content.lstrip("\ufeff").replace("\r\n", "\n")) == timecodes(source)
    report = result.translations[0].report
    assert report.untranslated == (6,)  # the reviewed cue is translated now
    record = result.review
    assert record is not None and record.reviewer == "ana" and record.answered_at is not None
    assert [(c.key, c.after) for c in record.changed] == [("de:5", texts[4])]
    assert record.accepted == ("de:6",) and record.flagged == ("de:5", "de:6")
    stored = local_store.get("rita", result.file_id)
    manifest = json.loads(local_store.read_bytes(stored))  # the stored manifest says so too
    assert manifest["review"]["changed"][0]["after"] == texts[4]
    assert deployments.status(run_id).stage == Stage.SUCCEEDED
    with pytest.raises(ReviewRefusedError, match=r"is not waiting for a review .it is Completed"):
        deployments.resume(run_id, {"de:6": "Bis morgen."})  # answered already


def test_an_answer_that_breaks_the_rules_is_refused_and_the_run_waits_again(
    two_refused: LLMServer, local_store: ProfileStore, tmp_path: Path,
    background: list[Background],
) -> None:  # fmt: skip
    """As the UI's form sends it (Prefect's own resume, no check before): the run checks it."""
    run, run_id = waiting_translation(tmp_path, local_store, background)
    waiting = deployments.review(run_id)
    fields = {c.key: c.field for c in waiting.cues}
    with get_client(sync_client=True) as client:
        client.resume_flow_run(
            run_id,
            run_input={
                "reviewer": "ui",
                fields["de:5"]: "Wir brauchen " + "sehr " * 20 + "Zimmer.",
            },
        )
    deadline = time.monotonic() + 30
    while (again := deployments.review(run_id) if _paused(run_id) else None) is None or (
            again.attempt < 2):  # fmt: skip
        assert time.monotonic() < deadline, "the run did not wait again"
        time.sleep(0.2)
    assert "cue de:5: does not fit 2 lines of 42 characters" in again.refused
    assert again.deadline == waiting.deadline  # the same review, the same time
    deployments.resume(run_id, {"de:6": "Bis morgen."}, reviewer="ui")
    state = run.end()
    assert state.is_completed(), state.message
    result: TranslateSrtResult = state.result()
    assert _texts(result.translations[0].content)[5] == "Bis morgen."
    assert result.review is not None and result.review.refused == 1


def _paused(run_id: UUID) -> bool:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    return state is not None and state.type == StateType.PAUSED


@pytest.mark.parametrize("rule", ["deliver", "fail"])
def test_a_review_nobody_answers_ends_by_its_timeout_rule(
    two_refused: LLMServer, local_store: ProfileStore, tmp_path: Path,
    rule: ReviewTimeoutRule,
) -> None:  # fmt: skip
    request = TranslateSrtRequest(
        target_languages=("de",), review="flagged", review_timeout_s=2, review_timeout=rule
    )
    started = time.monotonic()
    state = run_flow(translate_srt, "rita", _source(tmp_path, local_store), request)
    assert time.monotonic() - started < 30
    if rule == "fail":
        assert state.is_failed() and "ReviewTimedOutError" in (state.message or "")
        assert "nobody reviewed the 2 flagged cues" in (state.message or "")
        return
    assert state.is_completed(), state.message
    result: TranslateSrtResult = state.result()
    assert result.review is not None and result.review.timed_out
    assert result.review.changed == () and result.translations[0].report.untranslated == (5, 6)


def test_a_repair_waits_for_the_cue_whose_answer_was_refused(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path,
    background: list[Background], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """fix_srt: the model turns <i> into <ok> (markup changed: the cue keeps its text), the
    reviewer repairs that cue; an answer that drops the markup is refused first."""
    monkeypatch.setenv("MEDIAFLOWS_ORCHESTRATION__REVIEW_POLL_S", "0.2")
    from mediaflows.settings import get_settings

    get_settings.cache_clear()
    llm_server.set_mode("tags")
    file_id = import_bytes(local_store, tmp_path, messy_srt(), profile="rita")
    run = Background(FixSrtRequest(review="flagged"), file_id, fix_srt)
    background.append(run)
    run_id = run.paused()
    waiting = deployments.review(run_id)
    assert [c.key for c in waiting.cues] == ["1"]
    assert waiting.cues[0].reasons == ("kept as it was (markup changed)",)
    assert waiting.cues[0].current == "<i>I did not recieve teh letter.</i>"
    with pytest.raises(ReviewRefusedError, match="cue 1: markup changed"):
        deployments.resume(run_id, {"1": "I did not receive the letter."})
    deployments.resume(run_id, {"1": "<i>I did not receive the letter.</i>"}, reviewer="bo")
    state = run.end()
    assert state.is_completed(), state.message
    result: SrtResult = state.result()
    assert _texts(result.content)[0] == "<i>I did not receive the letter.</i>"
    assert _texts(result.content)[1] == "{\\an8}That is weird,\nbecause I sent it."
    assert result.fix is not None and result.fix.rejected_cues == ()
    assert result.review is not None and result.review.reviewer == "bo"
    assert [c.key for c in result.review.changed] == ["1"]


def test_the_cli_prints_the_waiting_cues_and_answers_from_an_edits_file(
    two_refused: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    """`mediaflows run … --review flagged` waits in-process and says how to answer; a second
    `mediaflows review` prints the cues and answers from a file."""
    args = [
        MEDIAFLOWS,
        "run",
        "translate-srt",
        "--profile",
        "rita",
        _source(tmp_path, local_store),
        "--to",
        "de",
        "--review",
        "flagged",
        "--json",
    ]
    with subprocess.Popen(
        args,
        env=without_prefect_auth(dict(os.environ)),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as running:
        assert running.stderr is not None and running.stdout is not None
        hint = ""
        while "waits for a review" not in hint:
            hint = running.stderr.readline()
            assert hint or running.poll() is None, "the run ended without waiting"
        run_id = UUID(hint.split()[1])
        assert f"mediaflows review {run_id}" in hint and "2 cues" in hint
        _answer_by_cli(run_id, tmp_path)
        out, _ = running.communicate(timeout=120)
    assert running.returncode == 0
    result = TranslateSrtResult.model_validate_json(out.strip().splitlines()[-1])
    assert _texts(result.translations[0].content)[4] == "Wir brauchen getrennte Zimmer."
    assert result.review is not None and result.review.reviewer == "cli"


def _answer_by_cli(run_id: UUID, tmp_path: Path) -> None:
    shown = cli({}, "review", str(run_id))
    assert shown.returncode == 0, shown.stderr
    assert "## de cue 5 · 00:00:20,000 → 00:00:24,500" in shown.stdout
    assert "left untranslated" in shown.stdout and f"review {run_id} --edits" in shown.stdout

    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps({"run_id": str(run_id), "reviewer": "cli",
                                 "cues": {"de:5": "Wir brauchen getrennte Zimmer.",
                                          "de:6": "accept"}}))  # fmt: skip
    done = cli({}, "review", str(run_id), "--edits", str(edits))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["resumed"] is True


def test_a_batch_counts_its_children_waiting_and_each_is_answered_alone(
    two_refused: LLMServer, local_store: ProfileStore, tmp_path: Path,
    background: list[Background],
) -> None:  # fmt: skip
    from flows.batch import BATCHES

    first = _source(tmp_path, local_store)
    (tmp_path / "b").mkdir()
    second = import_bytes(local_store, tmp_path / "b", messy_srt(RELAXED_TRANSLATION_CUES[2:]),
                          "b.srt", profile="rita")  # fmt: skip
    request = TranslateSrtRequest(target_languages=("de",), review="flagged")
    run = Background(request, [first, second], BATCHES["translate_srt"])
    background.append(run)
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + 60
        while True:
            found = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=StateTypes(any_=[StateType.PAUSED]))
                )
            )
            mine = [r for r in found if r.created and r.created.timestamp() >= run.started - 5]
            if len(mine) == 2:
                break
            assert time.monotonic() < deadline, "both children did not wait"
            time.sleep(0.3)
    batch_id = _parent_of(mine[0].id)
    wait_for(lambda: "2 awaiting review" in (deployments.status(batch_id).detail or ""), 30,
             "the batch to count its children waiting")  # fmt: skip
    with pytest.raises(ReviewRefusedError, match="2 child runs waiting for a review"):
        deployments.review(batch_id)
    children = {deployments.review(r.id).title: r.id for r in mine}
    deployments.resume(children["rita/talk.srt"], {}, reviewer="one")  # all accepted
    # That child ends; the other still waits, and the batch with it.
    wait_for(lambda: not _paused(children["rita/talk.srt"]), 30, "the first child to go on")
    wait_for(lambda: "1 awaiting review" in (deployments.status(batch_id).detail or ""), 30,
             "the batch to count one waiting")  # fmt: skip
    assert _paused(children["rita/b.srt"]) and run.thread.is_alive()
    deployments.resume(children["rita/b.srt"], {"de:3": "Wir brauchen getrennte Zimmer."})
    state = run.end()
    assert state.is_completed(), state.message


def _parent_of(run_id: UUID) -> UUID:
    with get_client(sync_client=True) as client:
        task_run_id = client.read_flow_run(run_id).parent_task_run_id
        assert task_run_id is not None
        parent = client.read_task_run(task_run_id).flow_run_id
    assert parent is not None
    return parent


def test_generate_srt_with_target_languages_waits_in_its_translation_child(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path,
    background: list[Background], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """review: always: the child translate_srt run waits (no cue flagged: the reviewer's go);
    the parent's id finds it."""
    from flows.generate_srt import generate_srt
    from tests.flows.test_generate_srt_translations import _speech

    monkeypatch.setenv("MEDIAFLOWS_ORCHESTRATION__REVIEW_POLL_S", "0.2")
    from mediaflows.settings import get_settings

    get_settings.cache_clear()
    source = local_store.import_file("rita", _speech(tmp_path))
    request = GenerateSrtRequest(language="en", target_languages=("de",), review="always")
    run = Background(request, source.id, generate_srt)
    background.append(run)
    child = run.paused(timeout=120)
    parent = _parent_of(child)
    waiting = deployments.review(parent)
    assert waiting.run_id == child and waiting.cues == ()
    deployments.resume(parent, {}, reviewer="go")
    state = run.end()
    assert state.is_completed(), state.message
    result: SrtResult = state.result()
    assert [t.language for t in result.translations] == ["de"]
    child_result = prefect_api.flow_run(child)
    assert child_result.state is not None and child_result.state.is_completed()


def test_a_paused_run_cancelled_stops_waiting_and_stores_nothing(
    two_refused: LLMServer, local_store: ProfileStore, tmp_path: Path,
    background: list[Background],
) -> None:  # fmt: skip
    from prefect.states import Cancelling

    request = TranslateSrtRequest(target_languages=("de",), review="flagged")
    source = _source(tmp_path, local_store)
    run = Background(request, source)
    background.append(run)
    run_id = run.paused()
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Cancelling(), force=True)  # as the UI's Cancel
    state = run.end(timeout=30)  # the wait looks every REVIEW_POLL_S (0.2 s here)
    assert state.type in (StateType.CANCELLING, StateType.CANCELLED), state
    assert [f.id for f in local_store.list_files("rita")] == [source]


@pytest.mark.parametrize(
    ("content", "refused"),
    [
        ({"run_id": "0b7c6a2e-0000-4000-8000-000000000000", "cues": {"de:5": "x"}},
         "is for run 0b7c6a2e-0000-4000-8000-000000000000, not"),
        ({"cues": {"de:5": 5}}, '"cues" maps cue keys'),
        (["de:5"], "a JSON object of cue keys to texts"),
    ],
)  # fmt: skip
def test_an_edits_file_for_another_run_or_of_another_shape_is_refused(
    content: Any, refused: str, tmp_path: Path
) -> None:
    from deployments.cli import _edits

    path = tmp_path / "edits.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match=refused):
        _edits(path, str(uuid4()))
    path.write_text(json.dumps({"de:5": "Neu.", "de:6": None, "reviewer": "x"}))  # the cues alone
    assert _edits(path, str(uuid4())) == ({"de:5": "Neu.", "de:6": None}, "x")
