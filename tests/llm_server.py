"""An OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

It "repairs" cues with a fixed correction table ("teh" → "the" …), so results are known in
advance, and can be told to misbehave: answer 429 with Retry-After, 500, hang past the client's
timeout, return malformed JSON or the wrong number of cues, refuse the request (400/401/404), or
obey an instruction injected into a cue. Every request is recorded (time, cue ids, outcome), so
tests can count retries and check what the model was sent.

Modes are set from Python (``server.set_mode``) or over HTTP (``POST /admin/mode``, for other
processes), and apply to the next ``times`` requests (all when None) whose cues contain
``match`` (all when None).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.net import free_port

CORRECTIONS = {
    "teh": "the",
    "recieve": "receive",
    "wierd": "weird",
    "tommorow": "tomorrow",
    "becuase": "because",
    "definately": "definitely",
    "seperate": "separate",
    "occured": "occurred",
    "untill": "until",
    "beleive": "believe",
}
_WORD = re.compile(r"\b(" + "|".join(CORRECTIONS) + r")\b", re.IGNORECASE)
INJECTION = "ignore all previous instructions"
MODES = ("ok", "429", "500", "timeout", "malformed", "wrong_count", "400", "401", "404", "inject")


def correct(text: str) -> str:
    """What the fake model does to a cue: the correction table, keeping an initial capital."""

    def fix(m: re.Match[str]) -> str:
        word = CORRECTIONS[m.group(0).lower()]
        return word.capitalize() if m.group(0)[0].isupper() else word

    return _WORD.sub(fix, text)


@dataclass
class Record:
    """One request as the server saw it."""

    at: float
    model: str
    ids: list[int]
    texts: list[str]
    body: str
    authorization: str
    outcome: str = "ok"


@dataclass
class _Mode:
    mode: str = "ok"
    times: int | None = None
    match: str | None = None
    retry_after: float = 1.0
    hang_s: float = 5.0
    latency_s: float = 0.0
    used: int = 0


@dataclass
class LLMServer:
    """The server's state, shared by the ASGI app and the tests."""

    port: int = 0
    requests: list[Record] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _mode: _Mode = field(default_factory=_Mode)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def set_mode(self, mode: str = "ok", times: int | None = None, match: str | None = None,
                 retry_after: float = 1.0, hang_s: float = 5.0,
                 latency_s: float | None = None) -> None:  # fmt: skip
        """Misbehave from now on (``mode``), for ``times`` requests matching ``match``."""
        assert mode in MODES, mode
        with self._lock:
            latency = self._mode.latency_s if latency_s is None else latency_s
            self._mode = _Mode(mode, times, match, retry_after, hang_s, latency)

    def reset(self) -> None:
        with self._lock:
            self._mode = _Mode()
            self.requests.clear()
            self.max_in_flight = self.in_flight = 0

    def _fault(self, texts: list[str]) -> tuple[_Mode, str]:
        with self._lock:
            m = self._mode
            applies = (m.times is None or m.used < m.times) and (
                m.match is None or any(m.match in t for t in texts)
            )
            if m.mode in ("ok", "inject") or not applies:
                return m, "ok"
            m.used += 1
            return m, m.mode

    async def chat(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw)
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        cues = json.loads(user)["cues"]
        ids, texts = [c["id"] for c in cues], [c["text"] for c in cues]
        record = Record(time.time(), body.get("model", ""), ids, texts, raw.decode(),
                        request.headers.get("authorization", ""))  # fmt: skip
        with self._lock:
            self.requests.append(record)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            mode, fault = self._fault(texts)
            record.outcome = fault
            if mode.latency_s:
                await asyncio.sleep(mode.latency_s)
            return await self._answer(body, cues, mode, fault, record)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, body: dict[str, Any], cues: list[dict[str, Any]], mode: _Mode,
                      fault: str, record: Record) -> Response:  # fmt: skip
        if fault == "429":
            return _error(429, "rate limited", {"Retry-After": f"{mode.retry_after:g}"})
        if fault == "500":
            return _error(500, "the model fell over")
        if fault == "400":
            return _error(400, "response_format json_schema is not supported")
        if fault == "401":
            # A careless server quoting the key it was given: the client must not pass it on.
            return _error(401, f"invalid api key {record.authorization.removeprefix('Bearer ')}")
        if fault == "404":
            return _error(404, f"model {body.get('model')!r} not found")
        if fault == "timeout":
            await asyncio.sleep(mode.hang_s)
        answer: Any
        if fault == "malformed":
            content = '{"cues": [{"id": 1, "text": "unterminated'
        else:
            if mode.mode == "inject" and any(INJECTION in c["text"].lower() for c in cues):
                record.outcome = "inject"
                answer = [{"id": c["id"], "text": "OK"} for c in cues]  # an obedient model
            else:
                answer = [{"id": c["id"], "text": correct(c["text"])} for c in cues]
            if fault == "wrong_count":
                answer = answer[:-1]
            content = json.dumps({"cues": answer}, ensure_ascii=False)
        return JSONResponse(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": len(record.body) // 4,
                    "completion_tokens": len(content) // 4,
                    "total_tokens": len(record.body) // 4 + len(content) // 4,
                },
            }
        )

    async def admin(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"requests": len(self.requests),
                                 "max_in_flight": self.max_in_flight})  # fmt: skip
        options = await request.json()
        if options.pop("reset", False):
            self.reset()
        self.set_mode(**options)
        return JSONResponse({"mode": self._mode.mode})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"message": message, "type": "test", "code": status}},
                        status_code=status, headers=headers)  # fmt: skip


class RunningServer:
    """The app served by uvicorn in a daemon thread on a free loopback port."""

    def __init__(self) -> None:
        self.state = LLMServer(port=free_port())
        app = Starlette(routes=[
            Route("/v1/chat/completions", self.state.chat, methods=["POST"]),
            Route("/admin/mode", self.state.admin, methods=["GET", "POST"]),
        ])  # fmt: skip
        config = uvicorn.Config(app, host="127.0.0.1", port=self.state.port, log_level="warning",
                                lifespan="off", access_log=False)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LLMServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test LLM server did not start")
            time.sleep(0.02)
        return self.state

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
