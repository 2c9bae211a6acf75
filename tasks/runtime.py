"""Every place mediaflows works around Prefect (3.8), or calls what Prefect does not make public,
is here and nowhere else.

Each piece names the upstream behaviour it works around and how to tell whether it is still
needed (``CHECK:``); when one goes, so does its piece. Prefect is imported inside the functions,
so that :mod:`deployments.server` can read :data:`SERVER_ENV` before Prefect reads its settings.

Outside this module, the version pins in ``pyproject.toml`` belong to the same list:

* ``prefect>=3.8,<3.9``: 3.9 needs a certifi release that the package index here lacks.
* ``fastapi>=0.139,<0.151``: from fastapi 0.151 the Prefect 3.8 server answers 422 to JSON
  ``null`` body fields, so ``prefect deploy``, ``deployment ls`` and artifact reads fail (0.155
  does not start). CHECK: raise the pin and run ``tests/deployments`` (they deploy and read
  artifacts).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from uuid import UUID

from mediaflows.cancel import CancelScope

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun, State
    from prefect.context import SettingsContext
    from prefect.futures import PrefectFuture

P = ParamSpec("P")
T = TypeVar("T")

# ---- the server --------------------------------------------------------------------------------

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


def client_env(
    heartbeat_s: int, results_path: str, api_url: str, embedded: bool = False
) -> dict[str, str]:
    """What every mediaflows process sets before Prefect reads its settings."""
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
    return env


def ui_env(api_url: str) -> dict[str, str]:
    """The server's UI asks the browser to call ``PREFECT_UI_API_URL``, whose default is port 4200
    whatever ``--port`` says: on another port the UI showed "Can't connect to Server API".
    CHECK: ``tests/ui`` with the variable unset on a server on another port."""
    return {"PREFECT_UI_API_URL": api_url}


# ---- running a flow's body ---------------------------------------------------------------------


@contextmanager
def shared_api_client() -> Iterator[None]:
    """Let every task of a flow run reuse one API client.

    Without it each sync task run builds its own client, and with it an SSL context (loading the
    CA bundle: ~60 ms a task on a small machine, more than most of our tasks take). CHECK:
    cProfile a convert run without it (``load_verify_locations``).
    """
    from prefect.context import SyncClientContext

    with SyncClientContext.get_or_create():
        yield


#: How long a cancelled body gets to stop and clean up (its tools are killed at once).
CANCEL_GRACE_S = 20.0


async def run_blocking(body: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a flow's blocking body (its tasks are plain blocking calls) in a worker thread that
    shares one API client among them.

    Why the flows are ``async`` at all: Prefect's sync flow engine joins its heartbeat thread when
    a run ends (up to 1 s: a trivial sync flow took 1.15 s, async 0.40 s, measured); and in an
    event loop, the child flows of a batch overlap (one fetches while another holds the ``gpu``).
    The flow run's context goes with the thread, so the tasks belong to the run.

    If the run is cancelled or its process told to stop (Prefect raises in the event loop's
    thread; a thread cannot be interrupted), the body's ffmpeg is killed and its next check
    raises :class:`~mediaflows.cancel.RunCancelledError`, so its ``finally`` blocks remove its
    work files before the run ends. CHECK: ``tests/test_cli.py`` (SIGTERM) and
    ``tests/deployments/test_worker.py`` (cancel).
    """
    scope = CancelScope()

    def in_thread() -> T:
        with scope, shared_api_client():
            return body(*args, **kwargs)

    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(None, contextvars.copy_context().run, in_thread)
    try:
        return await asyncio.shield(work)
    except BaseException:
        if not work.done():
            scope.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait({work}, timeout=CANCEL_GRACE_S)
                work.exception()  # it ended RunCancelledError: seen, not "never retrieved"
        raise


def failed_with(message: str, data: T) -> T:
    """What a flow returns to end Failed with ``data`` as its result (a batch whose files
    failed returns its :class:`BatchResult` so). Prefect accepts a returned ``State`` as the
    run's final state; the flow's declared return type cannot say so. CHECK: none (typing)."""
    from prefect.states import Failed

    state: Any = Failed(message=message, data=data)
    return state  # type: ignore[no-any-return]


async def state_of(flow: Flow[..., Any], **parameters: Any) -> State[Any]:
    """Run ``flow`` (a subflow when called inside a flow run) and return its final state rather
    than its result. Prefect's overloads of ``Flow.__call__`` type ``return_state=True`` on an
    async flow called with ``**kwargs`` as the flow's result, or as a bare ``Awaitable``; this is
    the one place that calls it so. CHECK: mypy on ``await flow(..., return_state=True)``."""
    call: Any = flow(**parameters, return_state=True)
    state: State[Any] = await call
    return state


def run_subflow(flow: Flow[..., Any], **parameters: Any) -> Any:
    """Run ``flow`` as a child run of the flow run whose body calls this (in its worker thread,
    see :func:`run_blocking`: the run's context came with the thread) and return its result, or
    raise its error. The child is its own run in the UI, linked to the parent. CHECK:
    ``tests/flows/test_generate_srt.py`` (the child run's parent task run)."""
    state = asyncio.run(state_of(flow, **parameters))
    value = result_of(state)
    if isinstance(value, BaseException):
        raise value
    return value


def is_termination(exc: BaseException) -> bool:
    """True for the exception Prefect raises in place of SIGTERM while a flow runs (its engine
    swaps in its own handler)."""
    from prefect.exceptions import TerminationSignal

    return isinstance(exc, TerminationSignal)


# ---- concurrency slots -------------------------------------------------------------------------

_local_slots: dict[str, threading.BoundedSemaphore] = {}
_local_slots_lock = threading.Lock()


def process_slots(tag: str, limit: int) -> threading.BoundedSemaphore:
    """This process's queue for ``limit`` slots of ``tag``, taken before a ``tag`` task asks the
    server. The server's tag limit holds across workers, but a task it turns away sleeps for the
    server's ``Retry-After`` while the slot may come free at once: the runs of one process queue
    here, and only one per free slot goes on to the server. (The model's ``gpu`` slots are kept
    by the process instead: :mod:`tasks.slots`.)"""
    with _local_slots_lock:
        return _local_slots.setdefault(f"{tag}:{limit}", threading.BoundedSemaphore(limit))


def on_done(future: PrefectFuture[Any], callback: Callable[[], None]) -> None:
    """Call ``callback`` when a submitted task's future is done. Prefect's futures have no public
    done-callback; ``PrefectConcurrentFuture`` wraps a ``concurrent.futures.Future`` that has.
    CHECK: ``PrefectFuture.add_done_callback`` in a newer Prefect."""
    inner = future.wrapped_future  # type: ignore[attr-defined]
    inner.add_done_callback(lambda _: callback())


def wait_first(futures: list[PrefectFuture[Any]]) -> list[PrefectFuture[Any]]:
    """Block until at least one of ``futures`` is done; those that are. (``prefect.futures.wait``
    waits for all, or a timeout.)"""
    from concurrent.futures import FIRST_COMPLETED
    from concurrent.futures import wait as wait_any

    inner = {f.wrapped_future: f for f in futures}  # type: ignore[attr-defined]
    done, _ = wait_any(list(inner), return_when=FIRST_COMPLETED)
    return [inner[d] for d in done]


# ---- artifacts ---------------------------------------------------------------------------------
# The artifact functions return a coroutine when called from an async context (a flow's body runs
# in a thread that inherits it); `_sync=True` forces the blocking call. CHECK: drop it and run
# tests/flows/test_convert.py (the progress artifact).


def create_progress_artifact(progress: float, description: str) -> UUID:
    from prefect.artifacts import create_progress_artifact as create

    artifact_id: UUID = create(progress=progress, description=description, _sync=True)  # type: ignore[call-arg,assignment]
    return artifact_id


def create_table_artifact(
    table: list[dict[str, Any]], description: str, key: str | None = None
) -> None:
    from prefect.artifacts import create_table_artifact as create

    create(table=table, key=key, description=description, _sync=True)  # type: ignore[call-arg]


def create_markdown_artifact(markdown: str, description: str, key: str | None = None) -> None:
    from prefect.artifacts import create_markdown_artifact as create

    create(markdown=markdown, key=key, description=description, _sync=True)  # type: ignore[call-arg]


_clients: dict[str, SyncPrefectClient] = {}
_clients_lock = threading.Lock()


def current_settings() -> SettingsContext:
    """The caller's Prefect settings, for work handed to another thread (which would otherwise
    see the process's defaults, not the run's API URL)."""
    from prefect.context import SettingsContext

    settings = SettingsContext.get()
    assert settings is not None
    return settings


def process_client(settings: SettingsContext) -> SyncPrefectClient:
    """This process's client for the API URL of ``settings``, usable from any thread, kept for
    the process (closed at exit): the run's own clients close when their task ends, and a new
    client costs an SSL context."""
    from prefect.client.orchestration import get_client
    from prefect.context import SettingsContext

    url = str(settings.settings.api.url)
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            with SettingsContext(profile=settings.profile, settings=settings.settings):
                client = get_client(sync_client=True)
            client.__enter__()
            _clients[url] = client
    return client


def update_artifact(
    settings: SettingsContext, artifact_id: UUID, data: Any, description: str
) -> None:
    """Update an artifact from any thread (through :func:`process_client`). There is no public
    ``update_artifact`` for a progress artifact's description. CHECK:
    ``prefect.artifacts.update_progress_artifact`` taking a description, callable from a
    thread."""
    from prefect.client.schemas.actions import ArtifactUpdate

    process_client(settings).update_artifact(
        artifact_id=artifact_id, artifact=ArtifactUpdate(data=data, description=description)
    )


@atexit.register
def _close_clients() -> None:
    with _clients_lock:
        for client in _clients.values():
            with contextlib.suppress(Exception):
                client.__exit__(None, None, None)
        _clients.clear()


# ---- flow runs from the Python API -------------------------------------------------------------


def create_pending_run(
    flow: Flow[..., Any], flow_id: UUID, parameters: dict[str, Any], key: str | None
) -> FlowRun:
    """A PENDING flow run of ``flow`` with an idempotency key (the server returns the existing run
    for a key it has seen). ``client.create_flow_run`` takes no idempotency key, so the request is
    sent as the API defines it. CHECK: an ``idempotency_key`` parameter on
    ``PrefectClient.create_flow_run``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import FlowRunCreate
    from prefect.client.schemas.objects import FlowRun
    from prefect.states import Pending, to_state_create

    create = FlowRunCreate(
        flow_id=flow_id,
        flow_version=flow.version,
        parameters=parameters,
        state=to_state_create(Pending()),
        idempotency_key=key,
        tags=["mediaflows", "in-process"],
    )
    with get_client(sync_client=True) as client:
        response = client.request(
            "POST",
            "/flow_runs/",
            json=create.model_dump(mode="json", exclude_unset=True),
        )
    return FlowRun.model_validate(response.json())


def execute_run(flow: Flow[..., Any], flow_run: FlowRun, parameters: dict[str, Any]) -> None:
    """Execute an existing flow run in this thread. ``run_flow`` hands back a coroutine for an
    async flow (our flows are), to be run to its end here."""
    from prefect.flow_engine import run_flow

    outcome = run_flow(flow, flow_run=flow_run, parameters=parameters, return_type="state")
    if asyncio.iscoroutine(outcome):
        asyncio.run(outcome)


def result_of(state: State[Any]) -> Any:
    """A final state's (persisted) result, or the exception of a failed one, read in this thread
    (``State.result`` returns a coroutine in some contexts)."""
    value = state.result(raise_on_failure=False)
    if asyncio.iscoroutine(value):
        value = asyncio.run(value)
    return value
