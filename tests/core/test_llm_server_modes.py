"""The test LLM server's own misbehaviour modes (tests/llm_server.py), against plain clients."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from tests.llm_server import SCHEMA_500, LLMServer, RunningServer, correct

CUES: list[dict[str, Any]] = [{"id": 1, "text": "<i>teh cat</i>"},
                              {"id": 2, "text": "line one\nline two, teh end"},
                              {"id": 3, "text": "I beleive it"}]  # fmt: skip
FIXED = [correct(c["text"]) for c in CUES]
USER = {"role": "user", "content": json.dumps({"cues": CUES})}
MESSAGES: list[Any] = [{"role": "system", "content": "Fix the cues."}, USER]
SCHEMA: Any = {"type": "json_schema", "json_schema": {"name": "cues", "schema": {"type": "object"}}}


@pytest.fixture(scope="module")
def running() -> Iterator[LLMServer]:
    with RunningServer() as server:
        yield server


@pytest.fixture
def server(running: LLMServer) -> Iterator[LLMServer]:
    running.reset()
    yield running
    running.reset()


def _client(server: LLMServer, timeout: float = 10) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=timeout)


def _post(server: LLMServer, timeout: float = 10, **body: Any) -> httpx.Response:
    body = {"model": "m", "messages": MESSAGES, **body}
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=timeout)


def _cues(content: str) -> list[dict[str, Any]]:
    cues: list[dict[str, Any]] = json.loads(content)["cues"]
    return cues


def _fixed(answer: httpx.Response) -> list[str]:
    return [c["text"] for c in _cues(answer.json()["choices"][0]["message"]["content"])]


def test_schema_500_refuses_json_schema_only(server: LLMServer) -> None:
    server.set_mode("schema_500", times=1)
    assert _post(server, response_format={"type": "json_object"}).status_code == 200
    assert _post(server).status_code == 200  # no response_format: not counted either
    refused = _post(server, response_format=SCHEMA)
    assert refused.status_code == 500
    assert refused.json() == {"error": {"message": SCHEMA_500, "type": "server_error",
                                        "code": 500}}  # fmt: skip
    assert _post(server, response_format=SCHEMA).status_code == 200  # times=1 is spent
    assert [r.outcome for r in server.requests] == ["ok", "ok", "schema_500", "ok"]
    formats = [r.response_format for r in server.requests]
    assert formats == ["json_object", None, "json_schema", "json_schema"]
    server.set_mode("schema_500")
    with pytest.raises(openai.InternalServerError, match="Input should be 'text'"):
        _client(server).chat.completions.create(
            model="m", messages=MESSAGES, response_format=SCHEMA
        )


def test_unbounded_rambles_without_max_tokens(server: LLMServer) -> None:
    server.set_mode("unbounded", hang_s=0.1)
    client = _client(server)
    start = time.monotonic()
    rambling = client.chat.completions.create(model="m", messages=MESSAGES)
    assert time.monotonic() - start >= 0.1
    content = rambling.choices[0].message.content or ""
    assert rambling.choices[0].finish_reason == "length" and len(content) > 20_000
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    bounded = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=300)
    assert bounded.choices[0].finish_reason == "stop"
    assert [c["text"] for c in _cues(bounded.choices[0].message.content or "")] == FIXED
    newer = client.chat.completions.create(model="m", messages=MESSAGES, max_completion_tokens=9)
    assert newer.choices[0].finish_reason == "stop"
    assert [r.max_tokens for r in server.requests] == [None, 300, 9]
    assert [r.outcome for r in server.requests] == ["unbounded", "ok", "ok"]


def test_stuck_fails_identical_retries_only(server: LLMServer) -> None:
    server.set_mode("stuck")
    for _ in range(2):  # the same request again: the same wrong answer
        assert len(_fixed(_post(server, temperature=0))) == len(CUES) - 1
    assert _fixed(_post(server, temperature=0.3)) == FIXED
    follow_up = [*MESSAGES, {"role": "assistant", "content": "{}"},
                 {"role": "user", "content": "You left out cue 3. Answer again."}]  # fmt: skip
    assert _fixed(_post(server, messages=follow_up)) == FIXED
    assert [r.outcome for r in server.requests] == ["stuck", "stuck", "ok", "ok"]
    assert [r.temperature for r in server.requests] == [0, 0, 0.3, None]
    assert [r.user_messages for r in server.requests] == [1, 1, 1, 2]
    last = server.requests[-1]
    assert last.ids == [1, 2, 3] and last.texts == [c["text"] for c in CUES]  # the JSON message
    assert last.messages[-1] == follow_up[-1] and len(last.messages) == 4


@pytest.mark.parametrize("mode,texts", [
    ("tags", ["<ok>the cat</ok>", "line one\nline two, the end", "I believe it"]),
    ("drop_line", ["<i>the cat</i>", "line one", "I believe it"]),
    ("debris", ["<i>the cat</i>}", "line one\nline two, the end}", "I believe it}"]),
])  # fmt: skip
def test_mangling_modes(server: LLMServer, mode: str, texts: list[str]) -> None:
    server.set_mode(mode, times=1)
    assert _fixed(_post(server)) == texts
    assert _fixed(_post(server)) == FIXED
    assert [r.outcome for r in server.requests] == [mode, "ok"]


def test_serial_serves_one_request_at_a_time(server: LLMServer) -> None:
    admin = f"http://127.0.0.1:{server.port}/admin/mode"
    httpx.post(admin, json={"mode": "ok", "latency_s": 0.5, "serial": True}).raise_for_status()
    server.set_mode("ok")  # latency and serial are kept
    start = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: _post(server), range(3)))
    assert time.monotonic() - start >= 1.4
    assert [a.status_code for a in answers] == [200] * 3
    queued = sorted(r.queued_s for r in server.requests)
    assert queued[0] < 0.3 and 0.4 < queued[1] < 0.9 and 0.9 < queued[2] < 1.5, queued
    assert all(0.45 < r.served_s < 0.8 for r in server.requests)
    assert server.max_in_flight == 3 and server.served == 3
    assert httpx.get(admin).json()["serial"] is True
    server.reset()
    assert not httpx.get(admin).json()["serial"]


def test_a_client_that_leaves_is_counted_as_abandoned(server: LLMServer) -> None:
    server.set_mode("ok", latency_s=2)
    with pytest.raises(httpx.ReadTimeout):
        _post(server, timeout=0.2)
    deadline = time.monotonic() + 1
    while server.abandoned < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.abandoned == 1 and server.served == 0 and server.in_flight == 0
    assert server.requests[0].outcome == "abandoned" and server.requests[0].abandoned
    status = httpx.get(f"http://127.0.0.1:{server.port}/admin/mode").json()
    assert status["abandoned"] == 1 and status["served"] == 0


def test_a_client_that_leaves_the_queue_frees_nothing_twice(server: LLMServer) -> None:
    server.set_mode("ok", latency_s=0.6, serial=True)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(_post, server)
        time.sleep(0.1)
        with pytest.raises(httpx.ReadTimeout):
            _post(server, timeout=0.2)  # queued behind the first
        assert first.result().status_code == 200
    assert [r.outcome for r in server.requests] == ["ok", "abandoned"]
    assert server.abandoned == 1 and server.served == 1
    assert _post(server, timeout=2).status_code == 200  # the slot was handed back


def test_a_timeout_left_by_its_client_keeps_its_outcome(server: LLMServer) -> None:
    server.set_mode("timeout", times=1, hang_s=3)
    start = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        _post(server, timeout=0.2)
    while server.abandoned < 1 and time.monotonic() - start < 1.5:
        time.sleep(0.02)
    assert server.abandoned == 1 and server.requests[0].outcome == "timeout"
    assert server.requests[0].abandoned
