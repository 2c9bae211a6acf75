"""Who may call the Prefect server. The session's server requires an HTTP Basic auth string
(``MEDIAFLOWS_SERVER__AUTH``, see ``tests/conftest.py``), so every other test's CLI, Python API
and worker calls already go through it; here: what is refused, how a wrong string fails, where
the string must never show up, and which addresses the embedded server may bind."""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from deployments.server import (
    check_bind,
    embedded_api_url,
    is_healthy,
    redact_url,
    start_embedded_server,
    stop_server,
)
from mediaflows.errors import ConfigurationError
from mediaflows.settings import Settings
from tests.conftest import SERVER_AUTH, without_prefect_auth
from tests.media_factory import VIDEOS, make_video
from tests.net import free_port
from tests.runs import MEDIAFLOWS, command


def _call(url: str, body: dict[str, object] | None, auth: str | None) -> int:
    """The HTTP status of a JSON POST (a GET when ``body`` is None) with that auth string."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    request.add_header("Content-Type", "application/json")
    if auth is not None:
        request.add_header("Authorization", f"Basic {base64.b64encode(auth.encode()).decode()}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _everything_on_the_server() -> str:
    """Every flow run (parameters included), task run, log and artifact the server holds."""
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        records = [
            *client.read_flow_runs(limit=200),
            *client.read_task_runs(limit=200),
            *client.read_logs(limit=200),
            *client.read_artifacts(limit=200),
        ]
    return "\n".join(r.model_dump_json() for r in records)


def _deployment_id() -> str:
    """A real deployment on the session's server (made with the authenticated client)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("auth-probe")
        return str(client.create_deployment(flow_id=flow_id, name="auth-probe"))


def test_the_api_answers_401_without_the_string_and_200_with_it(prefect_server: str) -> None:
    deployment = _deployment_id()
    filter_runs = f"{prefect_server}/flow_runs/filter"
    create_run = f"{prefect_server}/deployments/{deployment}/create_flow_run"
    for auth in (None, "", "mediaflows:wrong", SERVER_AUTH + "x"):
        assert _call(filter_runs, {"limit": 1}, auth) == 401
        assert _call(create_run, {}, auth) == 401
        assert _call(f"{prefect_server}/admin/version", None, auth) == 401
    assert _call(filter_runs, {"limit": 1}, SERVER_AUTH) == 200
    assert _call(f"{prefect_server}/health", None, None) == 200  # probes stay open
    # Nothing was created by the refused calls.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[uuid.UUID(deployment)]))
        )
    assert runs == []


def test_a_wrong_or_missing_string_is_one_line_and_exit_3_not_a_retry_storm(
    session_env: dict[str, str],
) -> None:
    base = without_prefect_auth({**os.environ, **session_env})
    wrong = {**base, "MEDIAFLOWS_SERVER__AUTH": "mediaflows:not-the-string"}
    started = time.monotonic()
    done = command([MEDIAFLOWS, "setup"], wrong, timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the auth string" in lines[0], done.stderr
    assert "MEDIAFLOWS_SERVER__AUTH" in lines[0] and "not-the-string" not in done.stderr
    assert took < 30  # one request refused, no back-off (the CLI itself starts in ~5 s)

    missing = {k: v for k, v in base.items() if k != "MEDIAFLOWS_SERVER__AUTH"}
    done = command(
        [MEDIAFLOWS, "run", "convert", "--profile", "nobody", "f_0000000000000000"],
        missing,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    assert "requires authentication" in done.stderr and "MEDIAFLOWS_SERVER__AUTH" in done.stderr


def test_the_string_is_nowhere_in_runs_logs_artifacts_or_setup_output(
    session_env: dict[str, str], tmp_path: Path, prefect_server: str
) -> None:
    """A run through the CLI given only MEDIAFLOWS_SERVER__AUTH; then everything the server holds
    about every flow run of the session (parameters, logs, artifacts, task runs), the CLI's
    output and the server's own log are searched for the string and its Basic token."""
    env = without_prefect_auth(
        {**os.environ, **session_env, "MEDIAFLOWS_STORE__URL": str(tmp_path / "store")}
    )
    setup = command([MEDIAFLOWS, "setup"], env, timeout=120)
    assert setup.returncode == 0, setup.stderr
    assert json.loads(setup.stdout)["auth"] == "sent (redacted)"
    video = make_video(tmp_path / "a.mkv", VIDEOS["h264_aac.mkv"][1])
    imported = command([MEDIAFLOWS, "import", "--profile", "ivan", str(video)], env, timeout=120)
    file_id = json.loads(imported.stdout)["file_id"]
    run = command(
        [MEDIAFLOWS, "run", "convert", "--profile", "ivan", file_id, "--json"], env, timeout=120
    )
    assert run.returncode == 0, run.stderr

    seen = _everything_on_the_server()
    assert file_id in seen  # the run's parameters are there
    token = base64.b64encode(SERVER_AUTH.encode()).decode()
    secret = SERVER_AUTH.split(":", 1)[1]
    server_log = Path(session_env["MEDIAFLOWS_HOME"], "prefect", "server.log").read_text()
    for text in (seen, setup.stdout, setup.stderr, run.stdout, run.stderr, server_log):
        assert secret not in text and token not in text


def test_every_address_without_auth_is_refused_with_auth_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEDIAFLOWS_SERVER__AUTH")  # Settings would read the session's
    port = free_port()
    server: dict[str, object] = {"host": "0.0.0.0", "port": port}
    open_to_all = {"home": tmp_path / "home", "server": server}
    with pytest.raises(ConfigurationError, match="MEDIAFLOWS_SERVER__AUTH"):
        start_embedded_server(Settings.model_validate(open_to_all))
    assert not is_healthy(f"http://127.0.0.1:{port}/api")  # nothing was started
    check_bind(Settings.model_validate(open_to_all), insecure=True)  # the loud override
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(Settings.model_validate({"server": {"host": host}}))
    for host in ("0.0.0.0", "::", "192.0.2.10", "example.com"):
        with pytest.raises(ConfigurationError):
            check_bind(Settings.model_validate({"server": {"host": host}}))

    guarded = {**open_to_all, "server": {**server, "auth": "mediaflows:pw-9f8e"}}
    settings = Settings.model_validate(guarded)
    saved = os.environ.pop("PREFECT_SERVER_API_AUTH_STRING", None)  # only the setting's
    try:
        url = start_embedded_server(settings)
        assert url == embedded_api_url(settings) == f"http://127.0.0.1:{port}/api"
        assert _call(f"{url}/flow_runs/filter", {"limit": 1}, None) == 401
        assert _call(f"{url}/flow_runs/filter", {"limit": 1}, "mediaflows:pw-9f8e") == 200
    finally:
        stop_server(settings, wait_s=10)
        if saved is not None:
            os.environ["PREFECT_SERVER_API_AUTH_STRING"] = saved


def test_the_cli_refuses_an_open_bind_in_one_line(tmp_path: Path) -> None:
    env = without_prefect_auth(dict(os.environ))
    env.pop("MEDIAFLOWS_SERVER__AUTH")
    env.pop("PREFECT_API_URL")
    env |= {"MEDIAFLOWS_HOME": str(tmp_path), "MEDIAFLOWS_SERVER__HOST": "0.0.0.0",
            "MEDIAFLOWS_SERVER__PORT": str(free_port())}  # fmt: skip
    done = command([MEDIAFLOWS, "server", "start"], env, timeout=120)
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and "MEDIAFLOWS_SERVER__AUTH" in done.stderr


def test_urls_are_printed_without_credentials() -> None:
    assert redact_url("https://bob:s3cr3t@prefect.example/api") == "https://***@prefect.example/api"
    assert redact_url("http://127.0.0.1:4200/api") == "http://127.0.0.1:4200/api"
