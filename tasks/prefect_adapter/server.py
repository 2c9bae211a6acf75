"""The server's and the clients' environment, and the server's SQLite transactions."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Any

#: Environment of a quiet, offline, restart-safe server.
SERVER_ENV = {
    # Telemetry: a POST every 600 s to a host this machine may not reach.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    # A task turned away by a tag limit sleeps the server's Retry-After, 10 s by default: a freed
    # `gpu` slot could sit idle that long. CHECK: tests/flows/test_batch.py's gpu-limit test
    # timings with the variable unset.
    "PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
    # Task runs reach the server as events, and its task-run recorder writes each one in its own
    # transaction by default (batch size 1): with 4 tasks a file that was the server's largest
    # CPU cost in a batch, CPU the model is then short of. Written in batches, at most a second
    # late in the UI. CHECK: ``python -m bench.batch_bench --op transcribe`` with them unset.
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    # Concurrency-slot leases are kept in memory by default: after a server restart a slot stayed
    # taken for minutes. On disk they survive it. CHECK: tests/reliability (server restart).
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": (
        "prefect.server.concurrency.lease_storage.filesystem"
    ),
}


def immediate_sqlite_writes() -> None:
    """Make every SQLite write transaction of this process's Prefect server ``BEGIN IMMEDIATE``.

    Prefect 3.8 begins them ``DEFERRED``: a transaction that reads, then writes while another
    connection has committed fails at once with ``SQLITE_BUSY_SNAPSHOT`` (the busy timeout cannot
    help), the server answers 503 and the client backs off ~2 s. Measured: every second ``gpu``
    slot acquisition took ~2 s; 40 gathered subflows gave 116 back-offs (0 with this).
    ``IMMEDIATE`` takes the write lock up front, so writers queue for milliseconds instead.
    PostgreSQL-backed servers are left alone. CHECK: start a plain ``prefect server start``
    (SQLite) and run ``PREFECT_API_URL=… python tests/scale/gather_subflows.py 40``: it prints the
    client's back-offs (0 here with this; ``tests/scale/test_fan_out.py`` asserts that).
    """
    from prefect.server.database.configurations import AioSqliteConfiguration

    deferred = AioSqliteConfiguration.begin_transaction
    if getattr(deferred, "_mediaflows_immediate", False):
        return

    @asynccontextmanager
    async def begin_transaction(
        self: AioSqliteConfiguration, session: Any, with_for_update: bool = False
    ) -> Any:
        async with deferred(self, session, with_for_update=True) as transaction:
            yield transaction

    setattr(begin_transaction, "_mediaflows_immediate", True)  # noqa: B010
    setattr(AioSqliteConfiguration, "begin_transaction", begin_transaction)  # noqa: B010


#: The server's HTTP Basic auth string (its API answers 401 without it; health and ready probes
#: stay open) and the one a client sends (``Authorization: Basic``; the UI asks for it).
SERVER_AUTH_VAR = "PREFECT_SERVER_API_AUTH_STRING"
CLIENT_AUTH_VAR = "PREFECT_API_AUTH_STRING"


def client_env(
    heartbeat_s: int,
    results_path: str,
    api_url: str,
    embedded: bool = False,
    auth: str | None = None,
) -> dict[str, str]:
    """What every mediaflows process sets before Prefect reads its settings. Prefect's workers
    hand their settings, secrets included, to the flow runs they start (processes or
    containers), so the auth string reaches those too."""
    env = {
        "PREFECT_API_URL": api_url,
        # Flow results (read back by the Python API in another process) and task caches.
        "PREFECT_LOCAL_STORAGE_PATH": results_path,
        "DO_NOT_TRACK": "1",
        # The crash automation expects a heartbeat this often; Prefect's default is 180 s.
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(heartbeat_s),
    }
    csrf = {"PREFECT_SERVER_CSRF_PROTECTION_ENABLED", "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED"}
    if embedded and not any(os.environ.get(n, "").lower() in ("1", "true") for n in csrf):
        # Every new client asks the server for a CSRF token before its first write, even when
        # the server has CSRF protection off (Prefect's default, and the embedded server's): two
        # extra requests per batch child. CHECK: count ``/api/csrf-token`` requests in a batch.
        env["PREFECT_CLIENT_CSRF_SUPPORT_ENABLED"] = "false"
    if auth:
        env[CLIENT_AUTH_VAR] = auth
    return env


def ui_env(api_url: str) -> dict[str, str]:
    """The server's UI asks the browser to call ``PREFECT_UI_API_URL``, whose default is port 4200
    whatever ``--port`` says: on another port the UI showed "Can't connect to Server API".
    CHECK: ``tests/ui`` with the variable unset on a server on another port."""
    return {"PREFECT_UI_API_URL": api_url}


def reread_environment() -> None:
    """Make Prefect read its settings from the environment again, if it is imported already.

    Prefect reads the environment once, into its global settings context, when
    ``prefect.context`` is first imported: a process that imported Prefect before mediaflows set
    ``PREFECT_API_URL`` (the Python API used after other Prefect code) would talk to another
    server. ``refresh_global_settings_context`` is what Prefect itself calls after its plugins
    set variables. CHECK: ``tests/deployments/test_client.py`` (the Python API in a process that
    imported Prefect first).
    """
    import sys

    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
