"""The embedded Prefect server: started once, then reused."""

from __future__ import annotations

from deployments.server import embedded_api_url, ensure_server, is_healthy, server_home
from mediaflows.settings import get_settings


def test_embedded_server_is_reused_not_restarted(prefect_server: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings = get_settings()
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    url = embedded_api_url(settings)
    assert url == prefect_server and is_healthy(url)
    pid_file = server_home(settings) / "server.pid"
    pid = pid_file.read_text()
    assert ensure_server(settings) == url
    assert pid_file.read_text() == pid  # nothing new was started
    assert (server_home(settings) / "prefect.db").exists()  # SQLite, under MEDIAFLOWS_HOME


def test_prefect_api_url_wins(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    assert ensure_server(get_settings()) == "http://127.0.0.1:1/api"
