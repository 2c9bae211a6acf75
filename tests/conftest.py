"""Real components for the tests: a Prefect server on a loopback port (started the way mediaflows
starts its embedded one), S3 over HTTP (moto server), real ffmpeg, real media.

Tests run in parallel (pytest-xdist, ``./dev test``): each test worker is a process of its own,
with its own home, port and Prefect server, so that the server-wide limits (`gpu` is 1) and the
work pools of one worker's tests are not another's. Tests marked ``core`` (tests/core and
tests/test_house.py: plain Python, no Prefect) never start a server: ``./dev test -m core``.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from filelock import FileLock

from mediaflows.settings import get_settings
from tests.asr_server import ASRServer, RunningASRServer
from tests.llm_server import LLMServer, RunningServer
from tests.media_factory import (
    SPEECH_CONTAINERS,
    VIDEOS,
    make_bad_inputs,
    make_silence,
    make_speech,
    make_speech_media,
    make_video,
)
from tests.net import free_port

DATA = Path(__file__).parent / "data"
BUCKET = "mediaflows-test"


#: The session's server requires this HTTP Basic auth string (what a team exposing it sets), so
#: every test's calls, workers and subprocesses show that the string reaches everything.
#: Subprocesses get MEDIAFLOWS_SERVER__AUTH only (``without_prefect_auth``); this process's
#: Prefect client, imported before mediaflows sets anything, reads PREFECT_API_AUTH_STRING.
SERVER_AUTH = f"mediaflows:{uuid.uuid4().hex}"


def without_prefect_auth(env: dict[str, str]) -> dict[str, str]:
    """``env`` without Prefect's own auth variable: a process given only MEDIAFLOWS_SERVER__AUTH,
    as users configure mediaflows."""
    return {k: v for k, v in env.items() if k != "PREFECT_API_AUTH_STRING"}


def _session_env() -> dict[str, str]:
    home = Path(tempfile.mkdtemp(prefix="mediaflows-test-"))
    port = free_port()
    return {
        "MEDIAFLOWS_HOME": str(home),
        "MEDIAFLOWS_SERVER__PORT": str(port),
        "MEDIAFLOWS_SERVER__AUTH": SERVER_AUTH,
        "PREFECT_API_AUTH_STRING": SERVER_AUTH,
        # Set before Prefect is imported (test modules import it): every thread, Prefect's own
        # included, then talks to the test server, never to an ephemeral one.
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "results"),
        "AWS_ACCESS_KEY_ID": "testing-key-id",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DO_NOT_TRACK": "1",
        # What every mediaflows process sets (configure_prefect_env): the crash automation that
        # `mediaflows setup` creates expects heartbeats this often.
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
        # The English speech of most tests runs on tiny.en, as before the multilingual default
        # (a request without a language now gets `base`: 1.7x the time on CPU). The tests of
        # the default and of `base` ask for it themselves (tests/core/test_whisper.py).
        "MEDIAFLOWS_WHISPER__MODEL": "tiny.en",
    }


SESSION_ENV = _session_env()
os.environ.update(SESSION_ENV)


@pytest.fixture(scope="session")
def session_env() -> Iterator[dict[str, str]]:
    """MEDIAFLOWS_*, PREFECT_* and AWS_* of the session (also handed to CLI subprocesses)."""
    get_settings.cache_clear()
    yield dict(SESSION_ENV)
    shutil.rmtree(SESSION_ENV["MEDIAFLOWS_HOME"], ignore_errors=True)


#: Folders whose tests are plain Python (no Prefect server): marked ``core``.
CORE = ("tests/core/", "tests/test_house.py")


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects on the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the plain-Python tests ``core``; under xdist, send the slow tests out first, so
    that the long waits (heartbeats, workers, servers) overlap the many short tests instead of
    ending the run alone."""
    root = Path(str(config.rootpath))
    for item in items:
        if Path(str(item.path)).relative_to(root).as_posix().startswith(CORE):
            item.add_marker(pytest.mark.core)
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker collects, all in the same order
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable


@pytest.fixture(autouse=True)
def _prefect_unless_core(request: pytest.FixtureRequest) -> None:
    """Every test but the ``core`` ones gets the session's Prefect server and its limits."""
    if request.node.get_closest_marker("core") is None:
        request.getfixturevalue("concurrency_limits")


@pytest.fixture(scope="session")
def prefect_server(session_env: dict[str, str]) -> Iterator[str]:
    """The embedded Prefect server, started by mediaflows' own code on a free port (one per
    test worker: started the first time a test of this worker needs it)."""
    from deployments.server import start_embedded_server, stop_server

    cluster = None
    if os.environ.get("MEDIAFLOWS_TEST_DATABASE") == "postgresql":
        # The same server, on PostgreSQL: how mediaflows runs at scale.
        from tests.postgres import PostgresCluster

        cluster = PostgresCluster()
        os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = cluster.start()
    settings = get_settings()
    url = start_embedded_server(settings)
    assert url == session_env["PREFECT_API_URL"]
    yield url
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # the last logs reach the server before it goes
    stop_server(settings, wait_s=5)
    if cluster is not None:
        cluster.stop()


@pytest.fixture(scope="session")
def s3_endpoint(session_env: dict[str, str]) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (real HTTP) with the test bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Each test that uses the store runs once per backend, on a fresh, empty store."""
    if request.param == "local":
        url = str(tmp_path / "store")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        monkeypatch.setenv("MEDIAFLOWS_STORE__S3_ENDPOINT_URL", endpoint)
        url = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("MEDIAFLOWS_STORE__URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def store(store_url: str):  # type: ignore[no-untyped-def]
    from mediaflows.store import ProfileStore

    return ProfileStore.from_settings()


@pytest.fixture
def local_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A fresh local store only (for tests whose subject is not the backend)."""
    from mediaflows.store import ProfileStore

    monkeypatch.setenv("MEDIAFLOWS_STORE__URL", str(tmp_path / "store"))
    get_settings.cache_clear()
    yield ProfileStore.from_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def shared_media(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str, Callable[[Path], object]], Path]:
    """``shared_media(name, make)``: the folder ``name``, filled by ``make(folder)`` once for
    the whole run (the first test worker to ask makes it, the others wait and read it): made
    media is read-only input, the same for every worker."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, above each worker's own
    root = base / "shared-media"
    root.mkdir(exist_ok=True)

    def shared(name: str, make: Callable[[Path], object]) -> Path:
        folder, done = root / name, root / f"{name}.done"
        with FileLock(str(root / f"{name}.lock")):
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                make(folder)
                done.touch()
        return folder

    return shared


@pytest.fixture(scope="session")
def videos(shared_media: Callable[[str, Callable[[Path], object]], Path]) -> dict[str, Path]:
    """Short test-pattern videos with a tone, one per container/codec pair in VIDEOS."""
    folder = shared_media(
        "videos", lambda d: [make_video(d / name, args) for name, (_, args) in VIDEOS.items()]
    )
    return {name: folder / name for name in VIDEOS}


@pytest.fixture(scope="session")
def speech_media(shared_media: Callable[[str, Callable[[Path], object]], Path]) -> dict[str, Path]:
    """The known speech text in several audio and video containers."""

    def make(folder: Path) -> None:
        wav = make_speech(folder)
        for name in SPEECH_CONTAINERS:
            make_speech_media(folder, wav, name)

    folder = shared_media("speech", make)
    return {name: folder / name for name in SPEECH_CONTAINERS}


@pytest.fixture(scope="session")
def silence(shared_media: Callable[[str, Callable[[Path], object]], Path]) -> Path:
    return shared_media("silence", lambda d: make_silence(d / "silence.flac")) / "silence.flac"


@pytest.fixture(scope="session")
def jfk(media_dir: Path) -> Path:
    return DATA / "jfk.flac"


@pytest.fixture(scope="session")
def concurrency_limits(prefect_server: str) -> None:
    from deployments.setup import ensure_concurrency_limits

    ensure_concurrency_limits(get_settings())


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def bait_server() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on 127.0.0.1 that playlists point at; it records every request."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _CountingHandler.requests
    server.shutdown()


@pytest.fixture(scope="session")
def bad_inputs(media_dir: Path, bait_server: tuple[int, list[str]]) -> dict[str, Path]:
    bad_dir = media_dir / "bad"
    bad_dir.mkdir()
    return make_bad_inputs(bad_dir, bait_server[0])


@pytest.fixture
def ffmpeg_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the real ffmpeg through a wrapper that logs each conversion it starts."""
    log = tmp_path / "ffmpeg-calls.log"
    wrapper = tmp_path / "ffmpeg-counting"
    wrapper.write_text(
        f'#!/bin/sh\ncase "$*" in *-progress*) echo "$*" >> "{log}";; esac\nexec ffmpeg "$@"\n'
    )
    wrapper.chmod(0o755)
    log.touch()
    monkeypatch.setenv("MEDIAFLOWS_MEDIA__FFMPEG_BINARY", str(wrapper))
    get_settings.cache_clear()
    return log


#: The API key the tests configure: it must never show up in what the Prefect server records.
LLM_TEST_KEY = "sk-test-5ecret-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def llm_server_session() -> Iterator[LLMServer]:
    """The OpenAI-compatible test server (tests/llm_server.py) on a loopback port."""
    with RunningServer() as server:
        yield server


@pytest.fixture
def llm_server(
    llm_server_session: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LLMServer]:
    """The test LLM server, reset, with mediaflows pointed at it. Model names are fresh per test,
    so that no test is answered from another test's cached chunks."""
    server = llm_server_session
    server.reset()
    tag = uuid.uuid4().hex[:8]
    env = {
        "MEDIAFLOWS_LLM__BASE_URL": server.base_url,
        "MEDIAFLOWS_LLM__API_KEY": LLM_TEST_KEY,
        "MEDIAFLOWS_LLM__MODELS": f'["fixer-{tag}", "other-{tag}"]',
        "MEDIAFLOWS_LLM__TIMEOUT_S": "2",
        "MEDIAFLOWS_LLM__CHUNK_CUES": "20",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield server
    server.reset()
    get_settings.cache_clear()


#: The speech endpoint's API key in the tests: it must never show up in what Prefect records.
ASR_TEST_KEY = "sk-asr-5ecret-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def asr_server_session() -> Iterator[ASRServer]:
    """The OpenAI-compatible speech server (tests/asr_server.py) on a loopback port."""
    with RunningASRServer() as server:
        yield server


def asr_endpoints(server: ASRServer, **options: object) -> str:
    """MEDIAFLOWS_ASR__ENDPOINTS naming the test server "loop", with a model name fresh per
    call, so that no test is answered from another test's cached pieces."""
    endpoint = {"base_url": server.base_url, "model": f"whisper-{uuid.uuid4().hex[:8]}",
                "api_key": ASR_TEST_KEY, "timeout_s": 20, **options}  # fmt: skip
    return json.dumps({"loop": endpoint})


@pytest.fixture
def asr_server(
    asr_server_session: ASRServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ASRServer]:
    """The test speech server, reset, with mediaflows' endpoint "loop" pointed at it."""
    server = asr_server_session
    server.reset()
    monkeypatch.setenv("MEDIAFLOWS_ASR__ENDPOINTS", asr_endpoints(server))
    get_settings.cache_clear()
    yield server
    server.reset()
    get_settings.cache_clear()
