"""An OpenAI-compatible speech-to-text server on 127.0.0.1 for tests and benchmarks.

``POST /v1/audio/transcriptions`` (and ``/v1/audio/translations``) takes the multipart upload as
OpenAI's API does and answers with **real** faster-whisper output (the bundled ``tiny.en``, or
``base`` for other languages and for translations) in OpenAI's verbose JSON: text, language
(as a name: "english"), duration, segments, and words when ``timestamp_granularities[]`` asks.
It can be told to misbehave (``MODES``):

- ``429`` (with ``Retry-After: retry_after``), ``500``, ``401``: that error;
- ``hang``: sleep ``hang_s`` before answering (past the client's timeout);
- ``segments_only``: no ``words`` in the answer; ``malformed``: not JSON;
- ``echo``: no model: one segment of made-up words spread over the piece (benchmarks, where
  the server's own compute time must not count);
- ``language``: the answer says ``language_name`` for the pieces that match (to test that the
  file is kept in one language);
- ``hallucinate``: a segment looping on one phrase (``LOOP``) is added after the speech.

Pacing, as a self-hosted server on a CPU: ``realtime_x`` holds each request for its audio's
duration ÷ that speed (``one_at_a_time``: one request computes, the others wait their turn, as a
single-worker faster-whisper server, in the order they came); ``slow_x`` for the ``slow_times``
requests after the first ``slow_after`` (a server that got busy). A request whose client went away
is dropped as soon as the server notices (outcome ``abandoned``, ``held_s``: how long it was
worked on).

An upload larger than ``max_bytes`` always gets 413. Modes apply to the next ``times`` requests
(all when None) after the first ``after``; ``latency_s`` delays every answer. Every request is
recorded (size, duration of the audio, form fields, headers) so tests can check retries, piece
sizes and concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.net import free_port

MODES = ("ok", "429", "500", "401", "hang", "segments_only", "malformed", "echo", "language",
         "hallucinate")  # fmt: skip
#: What a hallucinating model adds after the speech: a phrase looping in the silence.
LOOP = "Thank you for watching. " * 6


@dataclass
class Upload:
    """One request as the server saw it."""

    at: float
    path: str
    size: int
    duration: float
    fields: dict[str, list[str]]
    authorization: str
    outcome: str = "ok"
    finished: float = 0.0
    digest: str = ""
    held_s: float = 0.0
    slow: bool = False  # computed during the slow spell


@dataclass
class _Mode:
    mode: str = "ok"
    times: int | None = None
    retry_after: float = 1.0
    hang_s: float = 5.0
    latency_s: float = 0.0
    language_name: str = "german"
    after: int = 0
    used: int = 0
    seen: int = 0


@dataclass
class ASRServer:
    """The server's state, shared by the ASGI app and the tests."""

    port: int = 0
    max_bytes: int = 25_000_000
    uploads: list[Upload] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    realtime_x: float | None = None
    one_at_a_time: bool = False
    slow_after: int = 0
    slow_times: int = 0
    slow_x: float = 1.0
    _queue: deque[Upload] = field(default_factory=deque)  # one_at_a_time: its turn, in order
    _paced: int = 0
    _mode: _Mode = field(default_factory=_Mode)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _model_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def set_mode(self, mode: str = "ok", times: int | None = None, retry_after: float = 1.0,
                 hang_s: float = 5.0, latency_s: float | None = None,
                 language_name: str = "german", after: int = 0) -> None:  # fmt: skip
        assert mode in MODES, mode
        with self._lock:
            latency = self._mode.latency_s if latency_s is None else latency_s
            self._mode = _Mode(mode, times, retry_after, hang_s, latency, language_name, after)

    def reset(self) -> None:
        with self._lock:
            self._mode = _Mode()
            self.uploads.clear()
            self.max_in_flight = self.in_flight = 0
            self.max_bytes = 25_000_000
            self.realtime_x, self.one_at_a_time = None, False
            self.slow_after = self.slow_times = self._paced = 0
            self.slow_x = 1.0
            self._queue.clear()

    def _fault(self) -> tuple[_Mode, str]:
        with self._lock:
            m = self._mode
            m.seen += 1
            if m.mode == "ok" or (m.times is not None and m.used >= m.times) or m.seen <= m.after:
                return m, "ok"
            m.used += 1
            return m, m.mode

    async def transcribe(self, request: Request) -> Response:
        form = await request.form()
        upload = form.get("file")
        data = await upload.read() if upload is not None and not isinstance(upload, str) else b""
        fields: dict[str, list[str]] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, []).append(value)
        record = Upload(time.time(), request.url.path, len(data), 0.0, fields,
                        request.headers.get("authorization", ""),
                        digest=hashlib.sha256(data).hexdigest())  # fmt: skip
        with self._lock:
            self.uploads.append(record)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.realtime_x is not None and not await self._paced_work(request, data, record):
                return Response(status_code=499)  # nobody is listening any more
            return await self._answer(request, data, fields, record)
        finally:
            record.finished = time.time()
            with self._lock:
                self.in_flight -= 1

    async def _paced_work(self, request: Request, data: bytes, record: Upload) -> bool:
        """Hold the request as a server of ``realtime_x`` would; False if its client left.
        ``one_at_a_time``: requests take their turn in the order they came (a single worker's
        queue), one that leaves while waiting gives its place up."""
        from mediaflows.media import audio

        queued = self.one_at_a_time
        if queued:
            self._queue.append(record)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "upload.ogg"
                path.write_bytes(data)
                samples = await asyncio.to_thread(audio.decode_audio, path, "upload.ogg")
            duration = record.duration = len(samples) / audio.SAMPLE_RATE
            while queued and self._queue[0] is not record:  # waiting for its turn
                if await request.is_disconnected():
                    record.outcome = "abandoned"
                    return False
                await asyncio.sleep(0.02)
            with self._lock:
                self._paced += 1
                slow = self.slow_after < self._paced <= self.slow_after + self.slow_times
            record.slow = slow
            speed = self.slow_x if slow else float(self.realtime_x or 1.0)
            started = time.monotonic()
            until = started + duration / speed
            while time.monotonic() < until:
                if await request.is_disconnected():
                    record.outcome = "abandoned"
                    record.held_s = time.monotonic() - started
                    return False
                await asyncio.sleep(0.02)
            record.held_s = time.monotonic() - started
            return True
        finally:
            if queued and record in self._queue:  # the next one sees this on its next look
                self._queue.remove(record)

    async def _answer(self, request: Request, data: bytes, fields: dict[str, list[str]],
                      record: Upload) -> Response:  # fmt: skip
        if len(data) > self.max_bytes:
            record.outcome = "413"
            return _error(413, f"file too large: {len(data)} bytes, at most {self.max_bytes}")
        mode, fault = self._fault()
        record.outcome = fault
        await asyncio.sleep(mode.latency_s)
        if fault == "429":
            return _error(429, "rate limited", {"Retry-After": f"{mode.retry_after:g}"})
        if fault == "500":
            return _error(500, "the model fell over")
        if fault == "401":
            return _error(401, f"invalid api key {record.authorization.removeprefix('Bearer ')}")
        if fault == "hang":
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(mode.hang_s)
        if fault == "malformed":
            return PlainTextResponse('{"text": "unterminated', media_type="application/json")
        translate = record.path.endswith("/translations")
        answer = await asyncio.to_thread(self._recognise, data, fields, translate, fault)
        record.duration = float(answer["duration"])
        if fault == "language":
            answer["language"] = mode.language_name
        if fault == "hallucinate":
            end = float(answer["duration"])
            answer["segments"].append({"id": len(answer["segments"]), "start": end - 2.0,
                                       "end": end, "text": " " + LOOP.strip(),
                                       "avg_logprob": -0.3, "compression_ratio": 1.9,
                                       "no_speech_prob": 0.1})  # fmt: skip
            answer["words"] += [{"word": w, "start": end - 2.0 + i * 0.05,
                                 "end": end - 2.0 + (i + 1) * 0.05}
                                for i, w in enumerate(LOOP.split())]  # fmt: skip
            answer["text"] += " " + LOOP.strip()
        if fault == "segments_only" or "word" not in fields.get("timestamp_granularities[]", []):
            answer.pop("words", None)
        if fields.get("response_format") == ["json"]:  # text only, as gpt-4o-transcribe answers
            return JSONResponse({"text": answer["text"]})
        return JSONResponse(answer)

    def _recognise(self, data: bytes, fields: dict[str, list[str]], translate: bool,
                   fault: str) -> dict[str, Any]:  # fmt: skip
        from mediaflows.media import audio
        from mediaflows.models import TranscribeRequest
        from mediaflows.speech import whisper

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.ogg"
            path.write_bytes(data)
            samples = audio.decode_audio(path, "upload.ogg")
        duration = len(samples) / audio.SAMPLE_RATE
        if fault == "echo":
            said = ["the", "quick", "brown", "fox", "jumps", "over", "the", "dog"]
            words = [{"word": w, "start": round(i * duration / 8, 3),
                      "end": round((i + 1) * duration / 8, 3)}
                     for i, w in enumerate(said)]  # fmt: skip
            text = " ".join(said)
            segment = {"id": 0, "start": 0.0, "end": duration, "text": text}
            return {"task": "transcribe", "language": "english", "duration": duration,
                    "text": text, "segments": [segment], "words": words}  # fmt: skip
        given = fields.get("language")
        language = given[0] if given else None
        model = "tiny.en" if (language in (None, "en") and not translate) else "base"
        request = TranscribeRequest(model=model, language=language,
                                    task="translate" if translate else "transcribe")  # fmt: skip
        with self._model_lock:  # one model run at a time, like a single-GPU server
            result = whisper.transcribe(samples, request)
        segments = [
            {"id": i, "seek": 0, "start": s.start, "end": s.end, "text": " " + s.text,
             "tokens": [], "temperature": 0.0, "avg_logprob": s.avg_logprob,
             "compression_ratio": s.compression_ratio, "no_speech_prob": s.no_speech_prob}
            for i, s in enumerate(result.segments)
        ]  # fmt: skip
        words = [{"word": w.text.strip(), "start": w.start, "end": w.end}
                 for s in result.segments for w in s.words]  # fmt: skip
        names = {"en": "english", "de": "german", "fr": "french", "es": "spanish"}
        return {"task": "translate" if translate else "transcribe",
                "language": names.get(result.language, result.language),
                "duration": duration, "text": result.text, "segments": segments,
                "words": words}  # fmt: skip


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"message": message, "type": "test", "code": status}},
                        status_code=status, headers=headers)  # fmt: skip


class RunningASRServer:
    """The app served by uvicorn in a daemon thread on a free loopback port."""

    def __init__(self) -> None:
        self.state = ASRServer(port=free_port())
        app = Starlette(routes=[
            Route("/v1/audio/transcriptions", self.state.transcribe, methods=["POST"]),
            Route("/v1/audio/translations", self.state.transcribe, methods=["POST"]),
        ])  # fmt: skip
        config = uvicorn.Config(app, host="127.0.0.1", port=self.state.port, log_level="warning",
                                lifespan="off", access_log=False)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ASRServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test speech server did not start")
            time.sleep(0.02)
        return self.state

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
