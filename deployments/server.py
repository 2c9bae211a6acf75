"""The Prefect server that records runs.

With ``PREFECT_API_URL`` set, that server is used. Without it, mediaflows starts (once) and reuses
an embedded, SQLite-backed Prefect server on ``MEDIAFLOWS_SERVER__HOST:PORT`` whose data lives in
``MEDIAFLOWS_HOME/prefect``; its UI shows every run. This module does not import Prefect, so that
the environment can be set before Prefect reads it.

Who may call the server: with ``MEDIAFLOWS_SERVER__AUTH`` set, the embedded server requires that
HTTP Basic auth string and every client mediaflows configures sends it (:func:`client_auth`,
:func:`check_access`); without it the embedded server binds a loopback address only
(:func:`check_bind`), unless ``mediaflows server start --insecure`` says otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import ipaddress
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
from tasks.prefect_adapter import (
    CLIENT_AUTH_VAR,
    SERVER_AUTH_VAR,
    SERVER_ENV,
    client_env,
    reread_environment,
    ui_env,
)

#: The setting users set; named in every error about authentication.
AUTH_SETTING = "MEDIAFLOWS_SERVER__AUTH"


def server_home(settings: Settings) -> Path:
    """Where the embedded server keeps its database, log and pid file."""
    return settings.home / "prefect"


def embedded_api_url(settings: Settings) -> str:
    """The API URL of the embedded server (on this machine: ``127.0.0.1`` when it binds every
    address)."""
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}/api"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``); any other name
    may resolve to an address others reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_auth(settings: Settings) -> str | None:
    """The auth string the embedded server requires: ``MEDIAFLOWS_SERVER__AUTH``, else Prefect's
    own ``PREFECT_SERVER_API_AUTH_STRING`` if the environment sets it; ``None`` for none."""
    if settings.server.auth is not None:
        return settings.server.auth.get_secret_value()
    return os.environ.get(SERVER_AUTH_VAR) or None


def client_auth(settings: Settings) -> str | None:
    """The auth string this process sends: ``MEDIAFLOWS_SERVER__AUTH``, else Prefect's own
    ``PREFECT_API_AUTH_STRING``; ``None`` for none."""
    if settings.server.auth is not None:
        return settings.server.auth.get_secret_value()
    return os.environ.get(CLIENT_AUTH_VAR) or None


def check_bind(settings: Settings, insecure: bool = False) -> None:
    """Refuse to start the embedded server where others can reach it without authentication:
    whoever reaches it can start runs (ffmpeg and the model on the store's files), read their
    parameters and logs, cancel and delete them."""
    host = settings.server.host
    if insecure or is_loopback(host) or server_auth(settings):
        return
    raise ConfigurationError(
        f"refusing to start the Prefect server on {host} without authentication: set "
        f"{AUTH_SETTING} (a long random string), bind a loopback address "
        "(MEDIAFLOWS_SERVER__HOST=127.0.0.1), or pass --insecure to `mediaflows server start`"
    )


def _api_status(api_url: str, auth: str | None, timeout: float = 10.0) -> int | None:
    """The HTTP status of an authenticated API read (``GET /admin/version``); ``None`` when the
    server cannot be reached."""
    request = urllib.request.Request(f"{api_url.rstrip('/')}/admin/version")
    if auth:
        token = base64.b64encode(auth.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def check_access(api_url: str, auth: str | None, embedded: bool = False) -> None:
    """One request before any work: a wrong or missing auth string is a configuration error
    named once (the CLI exits 3), not a client retrying 401s. For the embedded server, also
    refuse one that was started without authentication while ``MEDIAFLOWS_SERVER__AUTH`` asks
    for it (it would accept anyone)."""
    status = _api_status(api_url, auth)
    if status == 401:
        if auth:
            raise ConfigurationError(
                f"the Prefect server at {redact_url(api_url)} refused the auth string (401 "
                f"Unauthorized): set {AUTH_SETTING} (or {CLIENT_AUTH_VAR}) to the string the "
                f"server requires ({SERVER_AUTH_VAR})"
            )
        raise ConfigurationError(
            f"the Prefect server at {redact_url(api_url)} requires authentication (401 "
            f"Unauthorized): set {AUTH_SETTING} (or {CLIENT_AUTH_VAR}) to its auth string"
        )
    if embedded and auth and status == 200 and _api_status(api_url, None) == 200:
        raise ConfigurationError(
            f"the embedded Prefect server at {api_url} runs without authentication although "
            f"{AUTH_SETTING} is set: restart it (`mediaflows server stop`, then "
            "`mediaflows server start`)"
        )


def redact_url(url: str) -> str:
    """``url`` without a user or password in it (``https://user:secret@host`` → ``https://***@host``),
    for output and errors."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


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


def ensure_server(
    settings: Settings | None = None, wait_s: float = 90.0, insecure: bool = False
) -> str:
    """The API URL to record runs on, starting the embedded server if it is not running.

    Returns ``PREFECT_API_URL`` when that is set (nothing is started then).
    """
    external = os.environ.get("PREFECT_API_URL")
    if external:
        return external
    return start_embedded_server(settings, wait_s, insecure)


def start_embedded_server(
    settings: Settings | None = None, wait_s: float = 90.0, insecure: bool = False
) -> str:
    """Start the embedded server unless it already answers; return its API URL. Refused on a
    non-loopback address without an auth string unless ``insecure`` (:func:`check_bind`)."""
    settings = settings or get_settings()
    url = embedded_api_url(settings)
    if is_healthy(url):
        return url
    check_bind(settings, insecure)
    home = server_home(settings)
    with _start_lock(home):
        if is_healthy(url):  # another process started it while we waited for the lock
            return url
        env = {**ui_env(url), **os.environ, **SERVER_ENV, "PREFECT_HOME": str(home)}
        env.pop("PREFECT_API_URL", None)
        env.pop(SERVER_AUTH_VAR, None)
        auth = server_auth(settings)
        if auth:
            env[SERVER_AUTH_VAR] = auth
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
    auth = client_auth(settings)
    check_access(url, auth, embedded)
    env = client_env(
        settings.server.heartbeat_s, str(settings.home / "results"), url, embedded, auth
    )
    before = {name: os.environ.get(name) for name in env}
    for name, value in env.items():
        if name in ("PREFECT_API_URL", "PREFECT_FLOWS_HEARTBEAT_FREQUENCY", CLIENT_AUTH_VAR):
            os.environ[name] = value
        else:
            os.environ.setdefault(name, value)
    if any(os.environ.get(name) != value for name, value in before.items()):
        reread_environment()  # a process that imported Prefect already sees them too
    return url
