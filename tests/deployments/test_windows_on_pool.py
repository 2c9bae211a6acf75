"""One long file over two warm workers: its transcription, run from the deployment, hands its
windows to the pool as `transcribe_window` child runs, both workers hear some, and the file gets
one transcript; cancelling the transcription cancels its windows in flight. A real server,
`prefect deploy --all`, the workers as subprocesses."""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Cancelling

from deployments import client
from deployments.setup import PROCESS_POOL
from mediaflows.models import TranscribeResult
from mediaflows.store import ProfileStore
from tests import prefect_api
from tests.deployments.test_worker import BIN
from tests.deployments.test_worker import deployed as deployed  # the module's fixtures
from tests.deployments.test_worker import worker_store as worker_store
from tests.media_factory import join_real_speech
from tests.runs import child_runs, wait_for
from tests.wer import wer

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.xdist_group("pool")]


def test_one_long_file_spreads_its_windows_over_two_workers(
    deployed: dict[str, str], worker_store: ProfileStore, tmp_path: Path
) -> None:
    env = {**deployed, "MEDIAFLOWS_ORCHESTRATION__WORKER_POLL_S": "0.2",
           "MEDIAFLOWS_WHISPER__WINDOW_S": "30"}  # fmt: skip
    path, said = join_real_speech(tmp_path / "long.flac", ["sonnet1", "jfk", "sonnet2"])
    source = worker_store.import_file("una", path)
    logs = []
    with ExitStack() as workers:
        for i in range(2):
            name = f"spread{i}-{uuid.uuid4().hex[:6]}"
            cwd = tmp_path / name
            cwd.mkdir()
            args = [str(BIN / "mediaflows"), "worker", "--name", name, "--limit", "2"]
            workers.enter_context(prefect_api.running_worker(args, PROCESS_POOL, name, env, cwd))
            logs.append(cwd / "worker.log")
        # Cancelled while its windows run: the windows in flight are cancelled with it.
        first = client.submit("transcribe", "una", source.id, {"language": "en"},
                              via="deployment")  # fmt: skip
        wait_for(lambda: any(r.state and r.state.is_running() for r in child_runs(first)), 120,
                 "a window running")  # fmt: skip
        with get_client(sync_client=True) as prefect:
            prefect.set_flow_run_state(first, Cancelling(), force=True)
        seen: list[object] = []

        def all_ended() -> bool:
            runs = [prefect_api.flow_run(first), *child_runs(first)]
            seen[:] = [(r.name, r.state.type.value if r.state else None) for r in runs]
            return all(r.state and r.state.is_final() for r in runs)

        try:
            wait_for(all_ended, 120, "the run and its windows ended")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {seen}") from None
        assert prefect_api.flow_run(first).state.type.value == "CANCELLED"
        assert any(r.state and r.state.is_cancelled() for r in child_runs(first))
        # Again: the windows heard before the cancel come from the cache, the others are heard.
        run_id = client.submit("transcribe", "una", source.id, {"language": "en"},
                               via="deployment")  # fmt: skip
        result = client.wait(run_id, timeout=400)
    assert isinstance(result, TranscribeResult)
    assert wer(said, result.text) <= 0.3, result.text
    windows = [r for r in child_runs(run_id) if r.name and r.flow_id and r.state]
    assert len(windows) >= 4 and all(r.state and r.state.is_completed() for r in windows)
    where = {str(r.infrastructure_pid) for r in windows}
    assert len(where) == 2, where  # both workers heard windows
    # Each worker's log names the windows it ran.
    ids = {str(r.id) for r in windows}
    ran = [{i for i in ids if i in log.read_text()} for log in logs]
    assert all(ran) and set.union(*ran) == ids, ran
