"""Every place mediaflows works around Prefect (3.8), or calls what Prefect does not make public,
is in this package and nowhere else.

Each piece names the upstream behaviour it works around and how to tell whether it is still
needed (``CHECK:``); when one goes, so does its piece. Prefect is imported inside the functions,
so that :mod:`deployments.server` can read :data:`SERVER_ENV` before Prefect reads its settings.
``tests/test_house.py`` fails when one of these internals is used outside this package.

* :mod:`.server`: the embedded server's environment (no telemetry, 1 s tag-slot waits, batched
  task-run records, leases on disk), SQLite write transactions begun ``IMMEDIATE``, every
  client's environment (``PREFECT_API_URL``, results, heartbeats, no CSRF token requests, the
  auth string),
  the UI's API URL, Prefect's settings read again after the environment changed.
* :mod:`.engine`: async flows with blocking bodies (``run_blocking``, one API client per run),
  subflows and final states (``state_of``, ``run_subflow``, ``failed_with``, ``result_of``),
  Prefect's stand-in for SIGTERM, ``__signature__`` of flows made by a factory (``retype``),
  existing flow runs executed in this process (``execute_run``: ``run_flow``).
* :mod:`.concurrency`: a process's own queue for tag slots, leases of the server's slots (raw
  responses), done-callbacks and wait-for-first on Prefect's futures (``wrapped_future``), the
  errors a call to the server raises.
* :mod:`.artifacts`: artifacts created from a body's thread (``_sync=True``) and updated from
  background threads (one client per API URL, kept for the process).
* :mod:`.runs`: runs created with an idempotency key (a raw ``POST /flow_runs/``), claimed by
  one worker (``propose_state_sync``), recorded with where they run (``infrastructure_pid``),
  moved to a state past the orchestration rules (``force=True``), paused or suspended for a
  reviewer from a body's thread (``_sync=True``).

Outside this package, the version pins in ``pyproject.toml`` belong to the same list:

* ``prefect>=3.8,<3.9``: 3.9 needs a certifi release that the package index here lacks.
* ``fastapi>=0.139,<0.151``: from fastapi 0.151 the Prefect 3.8 server answers 422 to JSON
  ``null`` body fields, so ``prefect deploy``, ``deployment ls`` and artifact reads fail (0.155
  does not start). CHECK: raise the pin and run ``tests/deployments`` (they deploy and read
  artifacts).
"""

from tasks.prefect_adapter.artifacts import (
    create_image_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    current_settings,
    process_client,
    update_artifact,
)
from tasks.prefect_adapter.concurrency import (
    is_unreachable,
    on_done,
    process_slots,
    release_slot,
    renew_slot,
    server_errors,
    take_slot,
    wait_first,
)
from tasks.prefect_adapter.engine import (
    CANCEL_GRACE_S,
    execute_run,
    failed_with,
    is_termination,
    result_of,
    retype,
    run_blocking,
    run_subflow,
    shared_api_client,
    state_of,
)
from tasks.prefect_adapter.runs import (
    claim_run,
    create_pending_run,
    force_state,
    record_where,
    suspend,
    wait_paused,
)
from tasks.prefect_adapter.server import (
    CLIENT_AUTH_VAR,
    SERVER_AUTH_VAR,
    SERVER_ENV,
    client_env,
    immediate_sqlite_writes,
    reread_environment,
    ui_env,
)

__all__ = [
    "CANCEL_GRACE_S",
    "CLIENT_AUTH_VAR",
    "SERVER_AUTH_VAR",
    "SERVER_ENV",
    "claim_run",
    "client_env",
    "create_image_artifact",
    "create_markdown_artifact",
    "create_pending_run",
    "create_progress_artifact",
    "create_table_artifact",
    "current_settings",
    "execute_run",
    "failed_with",
    "force_state",
    "immediate_sqlite_writes",
    "is_termination",
    "is_unreachable",
    "on_done",
    "process_client",
    "process_slots",
    "record_where",
    "release_slot",
    "renew_slot",
    "reread_environment",
    "result_of",
    "retype",
    "run_blocking",
    "run_subflow",
    "server_errors",
    "shared_api_client",
    "state_of",
    "suspend",
    "take_slot",
    "ui_env",
    "update_artifact",
    "wait_first",
    "wait_paused",
]
