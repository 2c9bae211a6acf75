"""The Python API in-process (no worker): submit → run id, status, wait → typed result, one run
per idempotency key."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from deployments import client
from deployments.worker import REPO_ROOT
from mediaflows.models import BatchResult, ConvertRequest, ConvertResult
from mediaflows.stages import Stage
from mediaflows.store import ProfileStore
from tests import prefect_api
from tests.conftest import without_prefect_auth
from tests.flows.test_batch import distinct_clips


def test_submit_wait_status_in_process_with_one_run_per_key(
    local_store: ProfileStore, tmp_path: Path
) -> None:
    source = local_store.import_file("carol", distinct_clips(tmp_path, 1)[0])
    key = f"convert-{uuid.uuid4()}"
    run_id = client.submit(
        "convert", "carol", source.id, ConvertRequest(crf=30), idempotency_key=key,
        via="in-process",
    )  # fmt: skip
    result = client.wait(run_id, timeout=120)
    assert isinstance(result, ConvertResult)
    assert result.source_file_id == source.id and not result.cached
    assert local_store.find("carol", result.file_id) is not None

    again = client.submit(
        "convert", "carol", source.id, {"crf": 30}, idempotency_key=key, via="in-process"
    )
    assert again == run_id  # the same run, not a second one
    assert client.wait(again, timeout=10) == result
    runs = prefect_api.flow_runs_with_key(key)
    assert [r.id for r in runs] == [run_id]

    status = client.status(run_id)
    assert (status.state, status.stage, status.finished) == ("COMPLETED", Stage.SUCCEEDED, True)
    assert status.flow == "convert" and status.progress == 100.0
    assert status.detail and status.detail.startswith(result.mode)


def test_a_list_of_ids_runs_the_batch_flow(local_store: ProfileStore, tmp_path: Path) -> None:
    ids = [local_store.import_file("carol", p).id for p in distinct_clips(tmp_path, 2)]
    result = client.wait(client.submit("convert", "carol", ids), timeout=120)
    assert isinstance(result, BatchResult)
    assert (result.total, result.succeeded) == (2, 2)


def test_a_failed_run_raises_with_its_state(local_store: ProfileStore) -> None:
    run_id = client.submit("convert", "carol", "no-such-file", via="in-process")
    with pytest.raises(client.RunFailedError, match="Failed"):
        client.wait(run_id, timeout=60)
    failed = client.status(run_id)
    assert (failed.stage, failed.finished) == (Stage.FAILED, True)


def test_bad_options_fail_before_any_run() -> None:
    with pytest.raises(ValidationError):
        client.submit("convert", "carol", "abc", {"crf": 99})
    with pytest.raises(Exception, match="unknown operation"):
        client.submit("resize", "carol", "abc")


def test_wait_reads_the_state_less_often_as_it_waits_and_still_sees_the_end_soon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run that ends after 8 s: ``wait`` sees it within a second, in far fewer reads than
    polling every 0.1 s (80)."""
    import threading
    import time

    from prefect import flow
    from prefect.client.orchestration import SyncPrefectClient, get_client
    from prefect.states import Failed, Running

    @flow(name="wait-probe")
    def probe() -> None: ...

    with get_client(sync_client=True) as api:
        run = api.create_flow_run(probe, state=Running())
    reads: list[float] = []
    read = SyncPrefectClient.read_flow_run

    def counting(self: SyncPrefectClient, flow_run_id: Any) -> Any:
        reads.append(time.monotonic())
        return read(self, flow_run_id)

    monkeypatch.setattr(SyncPrefectClient, "read_flow_run", counting)
    ended: list[float] = []

    def end_it() -> None:
        time.sleep(8)
        with get_client(sync_client=True) as api:
            api.set_flow_run_state(run.id, Failed(message="ended by the test"), force=True)
        ended.append(time.monotonic())

    threading.Thread(target=end_it).start()
    with pytest.raises(client.RunFailedError, match="ended by the test"):
        client.wait(run.id, timeout=60)
    seen = time.monotonic()
    assert ended and seen - ended[0] < 1.0
    assert 15 <= len(reads) <= 40, len(reads)


def _python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter, without PREFECT_API_URL: the server is the embedded one
    of MEDIAFLOWS_HOME and MEDIAFLOWS_SERVER__PORT, here this session's."""
    env = {
        k: v for k, v in without_prefect_auth(dict(os.environ)).items() if k != "PREFECT_API_URL"
    }
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_api_works_in_a_fresh_interpreter_with_nothing_called_first(
    local_store: ProfileStore, tmp_path: Path
) -> None:
    """``from deployments import submit, wait`` and go: the first call finds the server."""
    source = local_store.import_file("flo", distinct_clips(tmp_path, 1)[0])
    done = _python(
        "import sys\nfrom deployments import submit, wait\n"
        "run_id = submit('convert', 'flo', sys.argv[1], via='in-process')\n"
        "print(run_id)\nprint(wait(run_id, timeout=120).model_dump_json())",
        source.id,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_id, answer = done.stdout.strip().splitlines()[-2:]
    result = ConvertResult.model_validate_json(answer)
    assert result.source_file_id == source.id
    assert local_store.find("flo", result.file_id) is not None
    # Recorded on this session's server, as this process sees it.
    assert prefect_api.flow_run(uuid.UUID(run_id)).state.is_completed()


def test_a_process_that_imported_prefect_first_is_pointed_at_the_server_too(
    prefect_server: str,
) -> None:
    """Prefect reads its settings once, when first imported: the API's first call makes it read
    them again, so a process that used Prefect before talks to mediaflows' server."""
    done = _python(
        "import prefect.context\nfrom prefect.settings import get_current_settings\n"
        "print(get_current_settings().api.url)\n"
        "from deployments import connect\nprint(connect())\n"
        "print(get_current_settings().api.url)"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    before, connected, after = done.stdout.strip().splitlines()[-3:]
    assert before == "None" and connected == after == prefect_server
