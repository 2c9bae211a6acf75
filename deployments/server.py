"""The Prefect server that records runs.

With ``PREFECT_API_URL`` set, that server is used. Without it, mediaflows starts (once) and reuses
an embedded, SQLite-backed Prefect server on ``MEDIAFLOWS_SERVER__HOST:PORT`` whose data lives in
``MEDIAFLOWS_HOME/prefect``; its UI shows every run. This module does not import Prefect, so that
the environment can be set before Prefect reads it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from mediaflows.errors import ConfigurationError
from mediaflows.settings import Settings, get_settings
from tasks.prefect_adapter import SERVER_ENV, client_env, reread_environment, ui_env


def server_home(settings: Settings) -> Path:
    """Where the embedded server keeps its database, log and pid file."""
    return settings.home / "prefect"


def embedded_api_url(settings: Settings) -> str:
    """The API URL of the embedded server."""
    return f"http://{settings.server.host}:{settings.server.port}/api"


def is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    """True when a Prefect server answers its health check at ``api_url``."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextlib.contextmanager
def _start_lock(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with (home / "start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_server(settings: Settings | None = None, wait_s: float = 90.0) -> str:
    """The API URL to record runs on, starting the embedded server if it is not running.

    Returns ``PREFECT_API_URL`` when that is set (nothing is started then).
    """
    external = os.environ.get("PREFECT_API_URL")
    if external:
        return external
    return start_embedded_server(settings, wait_s)


def start_embedded_server(settings: Settings | None = None, wait_s: float = 90.0) -> str:
    """Start the embedded server unless it already answers; return its API URL."""
    settings = settings or get_settings()
    url = embedded_api_url(settings)
    if is_healthy(url):
        return url
    home = server_home(settings)
    with _start_lock(home):
        if is_healthy(url):  # another process started it while we waited for the lock
            return url
        env = {**ui_env(url), **os.environ, **SERVER_ENV, "PREFECT_HOME": str(home)}
        env.pop("PREFECT_API_URL", None)
        log = (home / "server.log").open("ab")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deployments.prefect_server",
                "start",
                "--host",
                settings.server.host,
                "--port",
                str(settings.server.port),
            ],
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command: the next one reuses it
        )
        (home / "server.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if is_healthy(url):
                return url
            if proc.poll() is not None:
                break
            time.sleep(0.5)
        with contextlib.suppress(ProcessLookupError):  # never leave a half-started server
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        (home / "server.pid").unlink(missing_ok=True)
        tail = (home / "server.log").read_text(errors="replace")[-2000:]
        raise ConfigurationError(
            f"the embedded Prefect server did not start on {url}; its log ends with:\n{tail}"
        )


def stop_server(settings: Settings | None = None, wait_s: float = 20.0) -> bool:
    """Stop the embedded server if this home started one; True if one was stopped."""
    settings = settings or get_settings()
    pid_file = server_home(settings) / "server.pid"
    try:
        pid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def configure_prefect_env(settings: Settings | None = None) -> str:
    """Point this process's Prefect client at the right server (the embedded one, started if
    needed, unless ``PREFECT_API_URL`` names another): what the CLI and the Python API do
    first. Also keeps persisted task results (the cross-process cache) under
    ``MEDIAFLOWS_HOME`` unless ``PREFECT_LOCAL_STORAGE_PATH`` says otherwise.
    """
    settings = settings or get_settings()
    url = ensure_server(settings)
    embedded = url == embedded_api_url(settings)
    env = client_env(settings.server.heartbeat_s, str(settings.home / "results"), url, embedded)
    before = {name: os.environ.get(name) for name in env}
    for name, value in env.items():
        if name in ("PREFECT_API_URL", "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"):
            os.environ[name] = value
        else:
            os.environ.setdefault(name, value)
    if any(os.environ.get(name) != value for name, value in before.items()):
        reread_environment()  # a process that imported Prefect already sees them too
    return url
