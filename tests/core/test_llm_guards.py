"""What the LLM layer does when a real model or server misbehaves (issue: "The LLM layer against
real local models"): damage in answers, retries that differ, bounded output, the structured-output
fallback, honest outcomes, source conventions kept, and a request window that fits the server."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mediaflows import cancel
from mediaflows.endpoints import Window
from mediaflows.errors import ChunkRefusedError, LLMOutputError
from mediaflows.models import FixReport, FixSrtRequest, ProfileFile
from mediaflows.operations import FIX_SRT
from mediaflows.settings import Settings, get_settings
from mediaflows.subtitles import chunks, read_srt, repair
from mediaflows.subtitles.chunks import CueText, SrtChunk
from tests.cancelling import cancel_after
from tests.llm_server import LLMServer

# ---- damage a similarity score lets through ---------------------------------------------------


@pytest.mark.parametrize(
    "original,answer,problem",
    [
        ("<i>Teh door is open.</i>", "<ok>The door is open.</ok>", "markup changed"),
        ("{\\an8}Teh door", "The door", "markup changed"),
        ("Teh door is open\nand teh cat is out.", "The door is open", "words lost"),
        ("Teh door is open.", "The door is open.}", "debris"),
        ("Teh door is open.", 'The door is open." }', "debris"),
        ("Teh door is open.", "Completely different words here.", "rewritten"),
    ],
)
def test_damaged_answers_keep_the_original(original: str, answer: str, problem: str) -> None:
    kept, reason = repair.check_cue(original, answer, min_similarity=0.5)
    assert kept == original and reason is not None and problem in reason


def test_line_count_changes_are_rewrapped_not_lost() -> None:
    two = "Teh quick brown fox jumps\nover teh lazy dog today."
    kept, reason = repair.check_cue(two, "The quick brown fox jumps over the lazy dog today.", 0.5)
    assert reason is None and kept.count("\n") == 1
    assert kept.replace("\n", " ") == "The quick brown fox jumps over the lazy dog today."
    one = "Teh quick brown fox."
    kept, reason = repair.check_cue(one, "The quick\nbrown fox.", 0.5)
    assert (kept, reason) == ("The quick brown fox.", None)


def test_a_plain_repair_passes() -> None:
    assert repair.check_cue("<i>Teh door</i>", "<i>The door</i>", 0.5) == ("<i>The door</i>", None)


# ---- conventions of the source ----------------------------------------------------------------

SRT = (
    "1\r\n00:00:01,000 --> 00:00:02,000\r\nTeh door\r\n\r\n"
    "2\r\n00:00:03,000 --> 00:00:04,000\r\nok\r\n"
)


def test_bom_and_crlf_survive_unless_normalised() -> None:
    parsed = read_srt(b"\xef\xbb\xbf" + SRT.encode())
    assert parsed.bom and parsed.crlf
    fixes = [
        chunks.ChunkFix(
            index=0,
            texts=(CueText(id=1, text="The door"), CueText(id=2, text="ok")),
            fallback=False,
            attempts=1,
        )
    ]
    kept = repair.render_fixed(parsed, fixes).srt
    assert kept.startswith("\ufeff1\r\n") and "\r\nThe door\r\n" in kept
    assert kept.encode().startswith(b"\xef\xbb\xbf") and "\n" not in kept.replace("\r\n", "")
    plain = repair.render_fixed(parsed, fixes, normalise=True).srt
    assert plain.startswith("1\n") and "\r" not in plain


# ---- honest outcome ---------------------------------------------------------------------------


def _report(changed: int, fallback: tuple[int, ...], chunks: int = 4) -> FixReport:
    return FixReport(model="m", encoding="utf-8", cues=40, changed=changed, kept=40 - changed,
                     chunks=chunks, fallback_chunks=fallback, problems=("chunk 0: 29 cues for 30",),
                     prompt_tokens=0, completion_tokens=0)  # fmt: skip


def test_a_run_that_repaired_nothing_fails_saying_what_to_change() -> None:
    with pytest.raises(LLMOutputError, match="MEDIAFLOWS_LLM__RESPONSE_FORMAT") as info:
        repair.check_outcome(_report(0, (0, 1, 2, 3)), max_fallback_share=0.5)
    assert "29 cues for 30" in str(info.value)
    with pytest.raises(LLMOutputError):
        repair.check_outcome(_report(5, (0, 1, 2)), max_fallback_share=0.5)  # 3 of 4 fell back
    repair.check_outcome(_report(5, (0,)), max_fallback_share=0.5)  # 1 of 4: stored, reported
    repair.check_outcome(_report(0, ()), max_fallback_share=0.5)  # nothing to repair: fine


def test_what_to_change_leaves_out_what_the_run_already_did() -> None:
    """SmolLM2-135M on llama.cpp answered no "cues" list in JSON mode one cue a request too:
    the message then names only the model to change, and says what the run already did."""
    first = chunks.remedy("json_schema", 30)
    assert "RESPONSE_FORMAT=json_object" in first and "CHUNK_CUES" in first
    json_mode = chunks.remedy("json_object", 30)
    assert "RESPONSE_FORMAT" not in json_mode and "CHUNK_CUES" in json_mode
    assert "this run: json_object output" in json_mode
    both = chunks.remedy("json_object", 1)
    assert both == ("Try another model (MEDIAFLOWS_LLM__MODELS) (this run: json_object output, "
                    "one cue a request).")  # fmt: skip
    report = _report(0, (0, 1, 2, 3)).model_copy(update={"response_format": "json_object"})
    with pytest.raises(LLMOutputError, match=r"Try another model \(MEDIAFLOWS_LLM__MODELS\) or "
                       r"fewer cues per request"):  # fmt: skip
        repair.check_outcome(report, max_fallback_share=0.5)


# ---- output ids -------------------------------------------------------------------------------


def test_output_id_changes_with_every_setting_that_changes_the_output() -> None:
    source = ProfileFile(id="a" * 32, profile="p", name="x.srt", kind="subtitle",
                         content_type="application/x-subrip", size=1, sha256="0" * 64,
                         created=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    base = get_settings()
    request = FixSrtRequest()

    def id_with(**llm_settings: object) -> str:
        settings = Settings.model_validate(
            {**base.model_dump(), "llm": {**base.llm.model_dump(), **llm_settings}}
        )
        return FIX_SRT.output_id(source, request, settings)

    ids = {
        id_with(),
        id_with(base_url="http://127.0.0.1:9/v1"),
        id_with(response_format="json_object"),
        id_with(chunk_cues=7),
        id_with(context_cues=0),
        id_with(temperature=0.3),
    }
    assert len(ids) == 6
    assert id_with(api_key="another-key") == id_with()  # the key is no part of it


# ---- the request window -----------------------------------------------------------------------


def test_window_shrinks_on_a_queueing_server_and_grows_on_a_parallel_one() -> None:
    serial = Window(limit=4)
    for n in (1, 2, 2, 3, 2):  # each request waits for the others: latency = n * 2 s
        serial.finished(n, 2.0 * n, work=100, ok=True)
        serial.started()
    assert serial.size <= 2
    parallel = Window(limit=4)
    for n in (1, 2, 3, 4, 4):  # served at once: latency stays 2 s
        parallel.finished(n, 2.0, work=100, ok=True)
        parallel.started()
    assert parallel.size == 4
    parallel.finished(4, 10.0, work=100, ok=False)  # a timeout halves it
    assert parallel.size <= 2


# ---- against the loopback server ----------------------------------------------------------------

CHUNK = SrtChunk(
    index=0,
    cues=tuple(CueText(id=i, text=f"Teh line number {i} is here.") for i in range(1, 6)),
)


def test_max_tokens_bounds_every_request(llm_server: LLMServer) -> None:
    settings = get_settings().llm
    fix = repair.fix_chunk(CHUNK, settings.models[0], settings=settings)
    assert not fix.fallback
    body = json.loads(llm_server.requests[0].body)
    assert body["max_tokens"] == chunks.max_tokens_for(CHUNK)
    assert 256 < body["max_tokens"] < 1000


def test_a_retry_is_never_the_identical_request(llm_server: LLMServer) -> None:
    llm_server.set_mode("wrong_count")  # every answer lacks a cue
    settings = get_settings().llm
    with pytest.raises(ChunkRefusedError) as info:
        repair.fix_chunk(CHUNK, settings.models[0], settings=settings)
    fix = info.value.fix
    assert fix.fallback and fix.texts == CHUNK.cues and fix.attempts == settings.chunk_attempts
    assert "4 cues for 5" in str(info.value)
    bodies = [r.body for r in llm_server.requests]
    assert len(bodies) == settings.chunk_attempts == len(set(bodies))
    second = json.loads(bodies[1])
    assert second["temperature"] > json.loads(bodies[0])["temperature"]
    assert "4 cues for 5" in second["messages"][-1]["content"]  # its mistake, shown


def test_markup_that_survives_passes_untouched(llm_server: LLMServer) -> None:
    chunk = SrtChunk(index=0, cues=(CueText(id=1, text="<i>Teh door is open.</i>"),
                                    CueText(id=2, text="Teh cat.")))  # fmt: skip
    llm_server.set_mode("inject")  # answers as usual here (no injection in the cues)
    settings = get_settings().llm
    fix = repair.fix_chunk(chunk, settings.models[0], settings=settings)
    assert [c.text for c in fix.texts] == ["<i>The door is open.</i>", "The cat."]
    assert fix.problems == () and fix.response_format == "json_schema"


def test_a_server_without_json_schema_is_asked_in_json_mode(llm_server: LLMServer) -> None:
    llm_server.set_mode("schema_500")  # llama.cpp: 500 "Input should be 'text' or 'json_object'"
    settings = get_settings().llm
    fix = repair.fix_chunk(CHUNK, settings.models[0], settings=settings)
    assert not fix.fallback and fix.response_format == "json_object"
    assert [r.response_format for r in llm_server.requests] == ["json_schema", "json_object"]
    repair.fix_chunk(CHUNK.model_copy(update={"index": 1}), settings.models[0], settings=settings)
    assert len(llm_server.requests) == 3  # remembered: straight to JSON mode


def test_a_rambling_model_is_cut_by_max_tokens(llm_server: LLMServer) -> None:
    llm_server.set_mode("unbounded", hang_s=5)  # rambles for 5 s unless max_tokens is sent
    settings = get_settings().llm
    fix = repair.fix_chunk(CHUNK, settings.models[0], settings=settings)
    assert not fix.fallback and [r.outcome for r in llm_server.requests] == ["ok"]
    assert llm_server.requests[0].max_tokens == chunks.max_tokens_for(CHUNK)


def test_a_model_stuck_on_one_wrong_answer_is_asked_differently(llm_server: LLMServer) -> None:
    llm_server.set_mode("stuck")  # the same wrong answer to the same request, every time
    settings = get_settings().llm
    fix = repair.fix_chunk(CHUNK, settings.models[0], settings=settings)
    assert not fix.fallback and fix.attempts == 2
    assert [r.outcome for r in llm_server.requests] == ["stuck", "ok"]
    assert "attempt 1: 4 cues for 5" in fix.problems


@pytest.mark.parametrize("mode,problem", [("tags", "markup changed"),
                                          ("drop_line", "words lost"),
                                          ("debris", "debris")])  # fmt: skip
def test_damaging_answers_are_refused_cue_by_cue(
    llm_server: LLMServer, mode: str, problem: str
) -> None:
    chunk = SrtChunk(index=0, cues=(
        CueText(id=1, text="<i>Teh door is open</i>\nand teh cat is out of teh house."),
        CueText(id=2, text="Teh cat."),
    ))  # fmt: skip
    llm_server.set_mode(mode)
    settings = get_settings().llm
    fix = repair.fix_chunk(chunk, settings.models[0], settings=settings)
    assert fix.texts[0].text == chunk.cues[0].text and 1 in fix.rejected
    assert any(problem in p for p in fix.problems), fix.problems
    if mode != "debris":
        assert fix.texts[1].text == "The cat."  # the undamaged cue is repaired


def test_cancelling_the_run_stops_waiting_for_the_request_in_flight(
    llm_server: LLMServer,
) -> None:
    llm_server.set_mode("ok", latency_s=10)
    settings = get_settings().llm
    raised, stopped_in = cancel_after(
        lambda: repair.fix_chunk(CHUNK, settings.models[0], settings=settings),
        0.2,
        until=lambda: llm_server.in_flight > 0,  # the request reached the server
    )
    assert stopped_in < 1
    assert isinstance(raised, cancel.RunCancelledError)
    assert len(llm_server.requests) == 1  # and no other request was sent
