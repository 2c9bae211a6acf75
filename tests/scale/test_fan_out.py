"""Fan-out at scale on the embedded SQLite server (marker ``scale``: minutes each, so CI skips
them; run with ``./dev test -m scale``).

First the failure the batch design must make impossible, reproduced on raw Prefect: a parent
that gathers 40 subflows at once on a plain ``prefect server start``. Then the same 40 on the
server mediaflows starts (SQLite writes begun IMMEDIATE), and a mediaflows batch of 500.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.server import is_healthy
from flows.batch import batch_convert
from mediaflows.models import BatchResult
from mediaflows.store import ProfileStore
from tasks.prefect_adapter import SERVER_ENV, state_of
from tests import prefect_api
from tests.flows.test_batch import distinct_clips
from tests.net import free_port

pytestmark = [pytest.mark.scale, pytest.mark.slow]

GATHER = Path(__file__).with_name("gather_subflows.py")


def _server(home: Path, module: list[str]) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, **SERVER_ENV, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    with (home / "server.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", *module, "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not is_healthy(url):
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture
def mediaflows_server(tmp_path: Path) -> Iterator[str]:
    """The server mediaflows starts (deployments.prefect_server: SQLite writes IMMEDIATE)."""
    yield from _server(tmp_path, ["deployments.prefect_server"])


def _gather(api_url: str, n: int) -> dict[str, object]:
    env = {**os.environ, "PREFECT_API_URL": api_url}
    done = subprocess.run([sys.executable, str(GATHER), str(n)], env=env, capture_output=True,
                          text=True, timeout=600, check=False)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {
        "state": f"exit {done.returncode}", "stderr": done.stderr[-2000:]
    }  # fmt: skip


def test_40_gathered_subflows_on_the_mediaflows_server_never_back_off(
    mediaflows_server: str,
) -> None:
    outcome = _gather(mediaflows_server, 40)
    print(f"mediaflows server, 40 gathered: {outcome}")
    assert outcome == {"state": "COMPLETED", "completed": 40, "backoffs": 0}


def test_a_batch_of_500_children_all_complete_without_a_503(
    local_store: ProfileStore, tmp_path: Path
) -> None:
    """500 convert children, the default in-flight bound, on the session's embedded server:
    every child run Completed, none Crashed or Failed, and the client never backed off."""
    ids = [local_store.import_file("zed", p).id for p in distinct_clips(tmp_path, 500)]
    started = time.perf_counter()
    with prefect_api.ClientBackoffs() as backoffs:
        state = asyncio.run(state_of(batch_convert, profile="zed", file_ids=ids))
    wall = time.perf_counter() - started
    result = state.result(raise_on_failure=False)
    assert isinstance(result, BatchResult), state.message
    print(f"500 children: {wall:.0f} s ({wall / 500 * 1000:.0f} ms a child), "
          f"{len(backoffs.dropped)} dropped connections retried")  # fmt: skip
    assert state.is_completed() and (result.succeeded, result.failed) == (500, 0)
    assert backoffs.messages == []
    states = prefect_api.flow_run_states([c.run_id or "" for c in result.children])
    assert states == {"COMPLETED": 500}, states
