"""Load: a burst of 200 submissions through the Python API on the embedded SQLite server."""

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


def test_200_submissions_in_a_burst_all_accepted_all_complete_none_lost(
    local_store: ProfileStore, tmp_path: Path
) -> None:
    """200 submits as fast as one caller can make them (50 files, each submitted 4 times under
    4 keys, so runs of one input overlap): every submit returns a run at once, every run
    completes with the file's output, each input has exactly one output, and the client never
    had to back off."""
    ids = [local_store.import_file("burst", p).id for p in distinct_clips(tmp_path, 50)]
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
    print(f"200 submits accepted in {accepted_s:.1f} s, all complete after {done_s:.1f} s; "
          f"{len(backoffs.dropped)} dropped connections retried")  # fmt: skip
    assert len(runs) == 200  # 200 distinct runs: none merged, none lost
    assert backoffs.messages == []
    outputs: dict[str, set[str]] = {}
    for run_id, result in results.items():
        assert isinstance(result, ConvertResult)
        assert result.source_file_id == runs[run_id]
        outputs.setdefault(result.source_file_id, set()).add(result.file_id)
    assert all(len(o) == 1 for o in outputs.values()) and set(outputs) == set(ids)
    stored = [f for f in local_store.list_files("burst") if f.source_file_id]
    assert sorted(str(f.source_file_id) for f in stored) == sorted(ids)  # exactly one output each
