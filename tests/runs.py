"""What the tests repeat: a flow run in this process, a command run as a user runs it, waiting
for a condition, a run's child runs, a file put in a profile."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
from prefect.client.schemas.objects import FlowRun, State

from mediaflows.store import ProfileStore
from tasks.prefect_adapter import state_of
from tests.conftest import without_prefect_auth

#: The mediaflows command of this environment.
MEDIAFLOWS = str(Path(sys.executable).with_name("mediaflows"))


def run_flow(flow: Any, profile: str, file_id: str, request: Any = None) -> State[Any]:
    """One run of ``flow`` in this process, on the session's server: its final state."""
    return asyncio.run(state_of(flow, profile=profile, file_id=file_id, request=request))


def run_id_of(state: State[Any]) -> UUID:
    """The flow run a final state belongs to."""
    assert state.state_details.flow_run_id is not None
    return state.state_details.flow_run_id


def flow_result(flow: Any, profile: str, file_id: str, request: Any = None) -> Any:
    """The result of a run that must complete (the test fails with the state's message)."""
    state = run_flow(flow, profile, file_id, request)
    assert state.is_completed(), state.message
    return state.result()


def command(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``args`` as a subprocess (text output captured; the exit status is the test's to check)."""
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``mediaflows ARGS`` with ``env`` over this process's environment, as users configure
    mediaflows (MEDIAFLOWS_SERVER__AUTH, not Prefect's own auth variable)."""
    return command(
        [MEDIAFLOWS, *args], without_prefect_auth({**os.environ, **env}), timeout=timeout
    )


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, every: float = 0.3
) -> None:
    """Poll ``predicate`` until it is true; the test fails naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(every)


def child_runs(run_id: UUID | None) -> list[FlowRun]:
    """The child flow runs of ``run_id``."""
    assert run_id is not None
    parent = FlowRunFilterParentFlowRunId(any_=[run_id])
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=parent))


def import_bytes(
    store: ProfileStore, tmp_path: Path, data: bytes, name: str = "talk.srt", profile: str = "dave"
) -> str:
    """``data`` imported into ``profile`` as the file ``name``: its id."""
    path = tmp_path / name
    path.write_bytes(data)
    return store.import_file(profile, path).id
