"""The store failing for a while, over real HTTP (a proxy in front of the moto S3 server)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.convert import convert
from mediaflows.settings import get_settings
from mediaflows.store import ProfileStore
from tasks.prefect_adapter import state_of
from tests import prefect_api
from tests.conftest import BUCKET
from tests.faulty_proxy import FaultyProxy


@pytest.fixture
def proxied_store(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ProfileStore, FaultyProxy, ProfileStore]]:
    """(the store seen through the faulty proxy, the proxy, the same store seen directly)."""
    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"
    with FaultyProxy(s3_endpoint) as proxy:
        monkeypatch.setenv("MEDIAFLOWS_STORE__URL", url)
        monkeypatch.setenv("MEDIAFLOWS_STORE__S3_ENDPOINT_URL", s3_endpoint)
        get_settings.cache_clear()
        direct = ProfileStore.from_settings()
        monkeypatch.setenv("MEDIAFLOWS_STORE__S3_ENDPOINT_URL", proxy.url)
        get_settings.cache_clear()
        yield ProfileStore.from_settings(), proxy, direct
    get_settings.cache_clear()


def test_s3_errors_for_a_while_are_retried_and_the_run_completes(
    proxied_store: tuple[ProfileStore, FaultyProxy, ProfileStore], videos: dict[str, Path]
) -> None:
    store, proxy, direct = proxied_store
    source = store.import_file("una", videos["h264_aac.mkv"])
    proxy.fail_for(6.0)  # every S3 request answers 500 for 6 s
    state = asyncio.run(state_of(convert, profile="una", file_id=source.id))
    assert state.is_completed(), state.message
    assert proxy.faults > 0
    result = state.result()
    assert direct.find("una", result.file_id) is not None
    # The requests that failed were made again (by botocore, then by the task's retries) …
    assert len(proxy.seen) > proxy.faults + 5
    # … and no task failed for good.
    runs = prefect_api.task_runs(state.state_details.flow_run_id, expect=5)
    assert all(r.state is not None and r.state.is_completed() for r in runs)


def test_an_output_is_invisible_until_its_upload_is_complete(
    proxied_store: tuple[ProfileStore, FaultyProxy, ProfileStore], videos: dict[str, Path]
) -> None:
    """The metadata upload (the last write) fails for a while: meanwhile the content is there
    but no profile file is visible; after the retry, exactly one is."""
    store, proxy, direct = proxied_store
    source = store.import_file("vic", videos["h264_aac.mkv"])
    before = {f.id for f in direct.list_files("vic")}
    proxy.fail_for(5.0, method="PUT", path=".json")
    box: dict[str, object] = {}
    runner = threading.Thread(
        target=lambda: box.update(state=asyncio.run(
            state_of(convert, profile="vic", file_id=source.id)
        ))
    )  # fmt: skip
    runner.start()
    deadline = time.monotonic() + 60
    while proxy.faults == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.faults > 0
    assert {f.id for f in direct.list_files("vic")} == before  # nothing half-written shows
    runner.join(timeout=120)
    state = box["state"]
    assert state.is_completed(), state.message  # type: ignore[attr-defined]
    after = [f for f in direct.list_files("vic") if f.id not in before]
    assert len(after) == 1 and after[0].operation == "convert"
