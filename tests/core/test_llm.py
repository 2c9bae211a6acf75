"""The LLM core: SRT reading, chunks, answer validation, and the HTTP client against the
loopback OpenAI-compatible server (tests/llm_server.py)."""

from __future__ import annotations

import json
import time

import pytest
import srt as srt_lib

from mediaflows import endpoints
from mediaflows.errors import (
    InputError,
    InvalidAnswerError,
    LLMRejectedError,
    LLMUnavailableError,
    LLMUnreachableError,
    is_transient,
)
from mediaflows.settings import get_settings
from mediaflows.subtitles import chunks, read_srt, repair, write_srt
from mediaflows.subtitles.chunks import CueText, SrtChunk
from tests.conftest import LLM_TEST_KEY
from tests.llm_server import LLMServer
from tests.srt_samples import INJECTION_LINE, MESSY_CUES, long_srt, messy_srt, timecodes

# ---- reading and writing SRT ---------------------------------------------------------------


def test_messy_srt_reads_and_writes_back_unchanged() -> None:
    data = messy_srt()
    parsed = read_srt(data)
    assert parsed.encoding == "utf-8-sig"
    assert [c.text for c in parsed.cues] == [t for _, _, t in MESSY_CUES]
    out = write_srt(parsed.cues)
    source_text = data.decode("utf-8-sig").replace("\r\n", "\n")
    assert timecodes(out) == timecodes(source_text) and len(timecodes(out)) == len(MESSY_CUES)
    # An independent parser agrees on times and text (the overlap is kept, not "fixed").
    theirs = list(srt_lib.parse(source_text))
    ours = list(srt_lib.parse(out))
    assert [(s.start, s.end, s.content) for s in ours] == [
        (s.start, s.end, s.content) for s in theirs
    ]
    assert ours[1].start < ours[0].end


@pytest.mark.parametrize(
    "encoding,lines",
    [
        ("cp1252", ["Café déjà vu, naïve garçon.", "Où est la bibliothèque, s'il vous plaît?",
                    "Je préfère le thé à la crème brûlée."]),
        ("cp1251", ["Привет, как дела?", "Я иду домой сегодня вечером.",
                    "Это очень интересная книга."]),
        ("utf-16", ["Grüße aus München.", "Das Mädchen läuft über die Straße."]),
    ],
)  # fmt: skip
def test_legacy_encodings_are_detected(encoding: str, lines: list[str]) -> None:
    text = "".join(
        f"{i}\n00:00:0{i},000 --> 00:00:0{i},900\n{t}\n\n" for i, t in enumerate(lines, 1)
    )
    parsed = read_srt(text.encode(encoding))
    assert [c.text for c in parsed.cues] == lines


@pytest.mark.parametrize("data", [b"", b"just some text\n", b"\x00\x01\x02" * 50])
def test_not_an_srt_is_an_input_error(data: bytes) -> None:
    with pytest.raises(InputError):
        read_srt(data, "x.srt")


# ---- chunks, prompts, answers ----------------------------------------------------------------


def test_chunks_cover_every_text_cue_once_with_context() -> None:
    parsed = read_srt(long_srt(95))
    planned = chunks.plan_chunks(parsed.cues, size=20, context=2)
    assert [len(c.cues) for c in planned] == [20, 20, 20, 20, 15]
    assert [c.id for ch in planned for c in ch.cues] == list(range(1, 96))
    assert [c.id for c in planned[1].before] == [19, 20]
    assert [c.id for c in planned[1].after] == [41, 42] and planned[-1].after == ()


def test_prompt_carries_cue_text_as_data_and_no_times() -> None:
    parsed = read_srt(messy_srt())
    chunk = chunks.plan_chunks(parsed.cues, size=30, context=0)[0]
    messages = repair.build_messages(chunk, sys_msg="British spelling.", glossary=["Prefect"])
    assert messages[0]["role"] == "system" and "British spelling." in messages[0]["content"]
    data = json.loads(messages[1]["content"])
    assert data["cues"][3] == {"id": 4, "text": INJECTION_LINE}
    assert data["glossary"] == ["Prefect"]
    assert "-->" not in json.dumps(messages) and "00:00" not in json.dumps(messages)


CHUNK = SrtChunk(index=0, cues=(CueText(id=7, text="teh cat"), CueText(id=8, text="a dog")))


@pytest.mark.parametrize(
    "content,problem",
    [
        ("", "empty answer"),
        ("OK", "not JSON"),
        ('{"cues": [{"id": 7, "text": "the cat"}]}', "1 cues for 2"),
        ('{"cues": [{"id": 7, "text": "the cat"}, {"id": 9, "text": "a dog"}]}', "other cue ids"),
        ('{"cues": [{"id": 7, "text": "x"}, {"id": 7, "text": "y"}]}', "cue 7 twice"),
        ('{"cues": [{"id": 7, "text": "the cat"}, {"id": 8, "text": "  "}]}', "empty cues"),
        ('{"answer": "OK"}', 'no "cues"'),
    ],
)
def test_invalid_answers_are_refused(content: str, problem: str) -> None:
    with pytest.raises(InvalidAnswerError, match=problem):
        chunks.parse_answer(content, CHUNK)


def test_valid_answer_in_any_order_or_fenced() -> None:
    answer = '```json\n{"cues": [{"id": "8", "text": "a dog."}, {"id": 7, "text": "the cat"}]}\n```'
    assert chunks.parse_answer(answer, CHUNK) == {7: "the cat", 8: "a dog."}


def test_rewrites_are_refused_cue_by_cue() -> None:
    kept, rejected, reasons = repair.accept_answer(
        CHUNK, {7: "the cat", 8: "OK"}, min_similarity=0.5
    )
    assert [c.text for c in kept] == ["the cat", "a dog"] and rejected == (8,)
    assert reasons == ("cue 8: rewritten, not repaired: kept",)


# ---- the HTTP client against the loopback server ---------------------------------------------

MESSAGES = repair.build_messages(CHUNK)
SCHEMA = ("subtitle_cues", chunks.CUES_SCHEMA)


def test_completion_is_structured_json(llm_server: LLMServer) -> None:
    settings = get_settings().llm
    answer = endpoints.complete(MESSAGES, settings.models[0], SCHEMA, settings)
    assert chunks.parse_answer(answer.content, CHUNK) == {7: "the cat", 8: "a dog"}
    assert answer.prompt_tokens > 0 and answer.completion_tokens > 0
    body = json.loads(llm_server.requests[0].body)
    assert body["response_format"]["type"] == "json_schema"
    assert llm_server.requests[0].authorization == f"Bearer {LLM_TEST_KEY}"


def test_429_waits_what_retry_after_says(llm_server: LLMServer) -> None:
    llm_server.set_mode("429", times=2, retry_after=1.2)
    settings = get_settings().llm
    answer = endpoints.complete(MESSAGES, settings.models[0], SCHEMA, settings)
    assert chunks.parse_answer(answer.content, CHUNK)[7] == "the cat"
    at = [r.at for r in llm_server.requests]
    assert [r.outcome for r in llm_server.requests] == ["429", "429", "ok"]
    assert at[1] - at[0] >= 1.15 and at[2] - at[1] >= 1.15


@pytest.mark.parametrize("mode", ["500", "timeout"])
def test_5xx_and_timeouts_are_retried_then_transient(llm_server: LLMServer, mode: str) -> None:
    llm_server.set_mode(mode, hang_s=3)
    settings = get_settings().llm.model_copy(update={"http_attempts": 2, "timeout_s": 0.5})
    with pytest.raises(LLMUnavailableError) as info:
        endpoints.complete(MESSAGES, settings.models[0], SCHEMA, settings)
    assert is_transient(info.value)
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("mode,words,sent", [("400", "json_schema is not supported", 2),
                                             ("401", "API key was refused", 1),
                                             ("404", "is the model name right", 1)])  # fmt: skip
def test_refusals_fail_at_once_with_a_clear_message(
    llm_server: LLMServer, mode: str, words: str, sent: int
) -> None:
    """400 naming json_schema: asked once more in JSON mode (refused again: the same 400)."""
    llm_server.set_mode(mode)
    settings = get_settings().llm
    start = time.monotonic()
    with pytest.raises(LLMRejectedError, match=words) as info:
        endpoints.complete(MESSAGES, settings.models[0], SCHEMA, settings)
    assert not is_transient(info.value) and time.monotonic() - start < 1
    assert len(llm_server.requests) == sent
    assert LLM_TEST_KEY not in str(info.value)
    # The breaker is open: the next request for this endpoint and model is not sent.
    with pytest.raises(LLMRejectedError, match="circuit open"):
        endpoints.complete(MESSAGES, settings.models[0], SCHEMA, settings)
    assert len(llm_server.requests) == sent


def test_unconfigured_model_is_an_input_error(llm_server: LLMServer) -> None:
    settings = get_settings().llm
    assert settings.resolve_model(None) == settings.models[0]
    assert settings.resolve_model(settings.models[1]) == settings.models[1]
    with pytest.raises(InputError, match="not configured"):
        settings.resolve_model("gpt-17")


def test_connection_refused_fails_at_once_as_configuration(llm_server: LLMServer) -> None:
    """A wrong port: nothing listens. Retrying cannot help; the run must stop in seconds."""
    from tests.net import free_port

    settings = get_settings().llm.model_copy(
        update={"base_url": f"http://127.0.0.1:{free_port()}/v1", "http_attempts": 4}
    )
    start = time.monotonic()
    with pytest.raises(LLMUnreachableError, match="connection refused") as info:
        endpoints.complete(MESSAGES, "m", SCHEMA, settings)
    assert not is_transient(info.value) and time.monotonic() - start < 1
