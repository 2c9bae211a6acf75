"""Load: a burst of submissions through the Python API on the embedded SQLite server: 100 in the
default run, 200 with ``-m scale``."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from deployments import client
from mediaflows.models import ConvertResult
from mediaflows.store import ProfileStore
from tests import prefect_api
from tests.flows.test_batch import distinct_clips

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


@pytest.mark.parametrize("files", [25, pytest.param(50, marks=pytest.mark.scale)])
def test_a_burst_of_submissions_all_accepted_all_complete_none_lost(
    local_store: ProfileStore, tmp_path: Path, files: int
) -> None:
    """4 × ``files`` submits as fast as one caller can make them (each file submitted 4 times
    under 4 keys, so runs of one input overlap): every submit returns a run at once, every run
    completes with the file's output, each input has exactly one output, and the client never
    had to back off. 100 in the default run (it was 200: 80 of the suite's CPU-seconds for the
    same checks; the 200 stay as ``-m scale``)."""
    ids = [local_store.import_file("burst", p).id for p in distinct_clips(tmp_path, files)]
    keys = [(file_id, f"burst-{uuid.uuid4()}") for _ in range(4) for file_id in ids]
    with prefect_api.ClientBackoffs() as backoffs:
        started = time.perf_counter()
        runs = {
            client.submit("convert", "burst", file_id, idempotency_key=key, via="in-process"): (
                file_id
            )
            for file_id, key in keys
        }
        accepted_s = time.perf_counter() - started
        results = {run_id: client.wait(run_id, timeout=600) for run_id in runs}
        done_s = time.perf_counter() - started
    print(f"{len(keys)} submits accepted in {accepted_s:.1f} s, all complete after {done_s:.1f} s; "
          f"{len(backoffs.dropped)} dropped connections retried")  # fmt: skip
    assert len(runs) == 4 * files  # distinct runs: none merged, none lost
    assert backoffs.messages == []
    outputs: dict[str, set[str]] = {}
    for run_id, result in results.items():
        assert isinstance(result, ConvertResult)
        assert result.source_file_id == runs[run_id]
        outputs.setdefault(result.source_file_id, set()).add(result.file_id)
    assert all(len(o) == 1 for o in outputs.values()) and set(outputs) == set(ids)
    stored = [f for f in local_store.list_files("burst") if f.source_file_id]
    assert sorted(str(f.source_file_id) for f in stored) == sorted(ids)  # exactly one output each
