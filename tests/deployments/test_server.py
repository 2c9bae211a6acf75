"""The embedded Prefect server: started once, then reused."""

from __future__ import annotations

import asyncio
import os

import pytest

from deployments.server import embedded_api_url, ensure_server, is_healthy, server_home
from mediaflows.settings import get_settings
from tests import prefect_api


def test_embedded_server_is_reused_not_restarted(prefect_server: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings = get_settings()
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    url = embedded_api_url(settings)
    assert url == prefect_server and is_healthy(url)
    pid_file = server_home(settings) / "server.pid"
    pid = pid_file.read_text()
    assert ensure_server(settings) == url
    assert pid_file.read_text() == pid  # nothing new was started
    if not os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL"):
        assert (server_home(settings) / "prefect.db").exists()  # SQLite, under MEDIAFLOWS_HOME


def test_prefect_api_url_wins(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    assert ensure_server(get_settings()) == "http://127.0.0.1:1/api"


ON_POSTGRES = bool(os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL"))


@pytest.mark.skipif(ON_POSTGRES, reason="about the SQLite-backed server")
def test_gpu_slot_hand_offs_never_back_off_on_sqlite() -> None:
    """Back-to-back ``gpu`` task runs from three flows at once: every slot acquisition, release
    and state change is answered without a 503 (with Prefect's DEFERRED SQLite transactions,
    about every second hand-off got ``SQLITE_BUSY_SNAPSHOT`` → 503 → a 2 s client back-off)."""
    from prefect import flow, task

    from tasks.whisper import GPU_TAG

    @task(tags=[GPU_TAG])
    def hold(i: int) -> int:
        return i

    @flow
    async def hand_offs(n: int) -> int:
        return sum(hold(i) for i in range(n))

    async def three_at_once() -> list[int]:
        return await asyncio.gather(*(hand_offs(6) for _ in range(3)))

    with prefect_api.ClientBackoffs() as backoffs:
        assert asyncio.run(three_at_once()) == [15, 15, 15]
    assert backoffs.messages == []


def test_server_database_is_the_one_asked_for(prefect_server: str) -> None:
    """SQLite by default; PostgreSQL when PREFECT_API_DATABASE_CONNECTION_URL says so (the test
    suite runs on both: MEDIAFLOWS_TEST_DATABASE=postgresql)."""
    import subprocess
    from urllib.parse import urlparse

    sqlite_file = server_home(get_settings()) / "prefect.db"
    wanted = os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL")
    if not wanted:
        assert sqlite_file.exists()
        return
    assert not sqlite_file.exists()
    url = urlparse(wanted.replace("+asyncpg", ""))
    tables = subprocess.run(
        ["psql", "-h", url.hostname or "", "-p", str(url.port), "-U", url.username or "",
         "-d", url.path.lstrip("/"), "-Atc",
         "select count(*) from information_schema.tables"
         " where table_name in ('flow', 'flow_run', 'task_run', 'artifact')"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert int(tables.stdout.strip()) == 4  # Prefect's schema lives in PostgreSQL
