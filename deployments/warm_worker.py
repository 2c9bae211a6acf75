"""A warm worker: one long-lived process per machine (or per GPU) that runs the mediaflows
deployments' flow runs **in its own process**, so that imports, the Prefect engine and the
Whisper model are paid once, not once per run.

Prefect's process worker starts a new Python process for every flow run: measured here, 4.6-14.8
s between a run's creation and its start (its 10 s poll, the process, the imports), then the
model loaded again. This worker:

* asks the work pool for scheduled runs every ``MEDIAFLOWS_ORCHESTRATION__WORKER_POLL_S``
  (0.25 s) and claims each with the same ``Pending`` proposal Prefect's workers make (a run is
  claimed by one worker only), then executes it in a thread of this process, at most ``limit``
  at once; the ``gpu``/``llm``/``asr`` tag limits still bound the heavy parts across workers;
* heartbeats as a worker of the pool (the Python API's ``via="auto"`` sees it online), and each
  flow run sends its own heartbeats (the crash automation tells a dead worker's runs from slow
  ones);
* keeps each model loaded once in the process (every load is logged) and drops models no run
  used for ``MEDIAFLOWS_WHISPER__IDLE_UNLOAD_S`` (GPU memory goes back);
* stops a run whose state turns ``Cancelling`` (the UI's cancel): its ffmpeg is killed, its work
  files removed, the run marked ``Cancelled``;
* survives a run that fails or raises: the run ends Failed, the worker goes on;
* resubmits a top-level run that a dead worker left ``Crashed`` (marked so by the crash
  automation): set back to ``Scheduled`` at most ``MEDIAFLOWS_ORCHESTRATION__BATCH_RESUBMITS``
  times; outputs are written once under fixed ids, so a run again only finishes what was left
  (a batch finds its finished files stored). Batch children are resubmitted by their batch;
* on SIGTERM stops claiming, stops its runs and hands them back (``Scheduled``) so another
  worker takes them at once, rather than after the crash timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from mediaflows import cancel, whisper
from mediaflows.settings import Settings, get_settings
from tasks import runtime

log = logging.getLogger("mediaflows.worker")

#: Seconds between the worker's own heartbeats to its pool (Prefect marks a worker offline
#: after missing a few).
HEARTBEAT_S = 10.0
#: Seconds between looks for crashed runs to resubmit and idle models to drop.
HOUSEKEEPING_S = 10.0


@dataclass
class _Run:
    future: Future[None]
    scope: cancel.CancelScope
    cancelled: bool = False
    handed_back: bool = False


@dataclass
class WarmWorker:
    """A worker of ``pool`` named ``name`` that runs up to ``limit`` flow runs at once here."""

    pool: str
    name: str
    limit: int
    settings: Settings = field(default_factory=get_settings)
    runs: dict[UUID, _Run] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    started: int = 0

    def __post_init__(self) -> None:
        self._executor = ThreadPoolExecutor(self.limit, thread_name_prefix="mediaflows-run")
        self._flows: dict[UUID, Any] = {}
        self.where = f"{socket.gethostname()}:{os.getpid()}"

    # ---- the loop ------------------------------------------------------------------------------

    def serve(self, max_runs: int | None = None) -> None:
        """Run until SIGTERM/SIGINT (or ``stop()``; or after ``max_runs`` runs have ended)."""
        from prefect.client.orchestration import get_client

        poll_s = self.settings.orchestration.worker_poll_s
        beat = housekeeping = 0.0
        with get_client(sync_client=True) as client:
            log.info("warm worker %s of pool %s: up to %d runs at once, polling every %g s",
                     self.name, self.pool, self.limit, poll_s)  # fmt: skip
            while not self.stopping.is_set():
                now = time.monotonic()
                try:
                    if now - beat >= HEARTBEAT_S:
                        client.send_worker_heartbeat(
                            self.pool, self.name, heartbeat_interval_seconds=HEARTBEAT_S
                        )
                        beat = now
                    self._reap(client)
                    if max_runs is not None and self.started >= max_runs and not self.runs:
                        break
                    free = self.limit - len(self.runs)
                    if free > 0 and (max_runs is None or self.started < max_runs):
                        self._claim(client, free)
                    if self.runs:
                        self._watch_cancelling(client)
                    if now - housekeeping >= HOUSEKEEPING_S:
                        housekeeping = now
                        self._resubmit_crashed(client)
                        if self.settings.whisper.idle_unload_s:
                            whisper.unload_idle(self.settings.whisper.idle_unload_s)
                except Exception as exc:  # the server away (restarting), a bad answer …
                    # The worker outlives it: its runs go on, it asks again a little later.
                    log.warning("worker loop: %s: %s; trying again", type(exc).__name__, exc)
                    self.stopping.wait(min(5.0, 10 * poll_s))
                self.stopping.wait(poll_s)
            self._hand_back(client)
        self._executor.shutdown(wait=True)

    def stop(self) -> None:
        self.stopping.set()

    # ---- starting runs -------------------------------------------------------------------------

    def _claim(self, client: Any, free: int) -> None:
        from prefect.exceptions import Abort
        from prefect.states import Pending
        from prefect.utilities.engine import propose_state_sync

        scheduled = client.get_scheduled_flow_runs_for_work_pool(
            self.pool, scheduled_before=datetime.now(UTC)
        )
        for response in scheduled[:free]:
            flow_run = response.flow_run
            flow = self._flow_of(client, flow_run)
            if flow is None:
                continue  # not a mediaflows flow: left for another worker
            try:
                state = propose_state_sync(client, Pending(), flow_run_id=flow_run.id)
            except (Abort, Exception) as exc:  # Abort: another worker took it first
                log.debug("run %s not claimed: %s", flow_run.id, exc)
                continue
            if not state.is_pending():
                continue
            # Where it runs, as Prefect's workers record it (host:pid of this process).
            with contextlib.suppress(Exception):
                client.update_flow_run(flow_run.id, infrastructure_pid=self.where)
            scope = cancel.CancelScope()
            fresh = client.read_flow_run(flow_run.id)
            future = self._executor.submit(self._execute, flow, fresh, scope)
            self.runs[flow_run.id] = _Run(future, scope)
            self.started += 1
            log.info("started run %s (%s) of %s", flow_run.name, flow_run.id, flow.name)

    def _flow_of(self, client: Any, flow_run: Any) -> Any:
        if flow_run.flow_id not in self._flows:
            from flows.batch import flow_by_name

            self._flows[flow_run.flow_id] = flow_by_name(client.read_flow(flow_run.flow_id).name)
        return self._flows[flow_run.flow_id]

    @staticmethod
    def _execute(flow: Any, flow_run: Any, scope: cancel.CancelScope) -> None:
        # The run's own cancel scopes (tasks.runtime.run_blocking) nest in this one: cancelling
        # it stops the run's tools and checks.
        with scope:
            runtime.execute_run(flow, flow_run, dict(flow_run.parameters))

    # ---- watching runs -------------------------------------------------------------------------

    def _reap(self, client: Any) -> None:
        """Forget ended runs; mark Cancelled the ones this worker stopped for a cancel."""
        from prefect.states import Cancelled

        for run_id, run in list(self.runs.items()):
            if not run.future.done():
                continue
            del self.runs[run_id]
            error = run.future.exception()
            if error is not None and not isinstance(error, cancel.RunCancelledError):
                log.warning("run %s ended with %s: %s", run_id, type(error).__name__, error)
            if run.cancelled:
                with contextlib.suppress(Exception):
                    client.set_flow_run_state(run_id, Cancelled(message="cancelled"), force=True)

    def _watch_cancelling(self, client: Any) -> None:
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterId,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        ids = [i for i, r in self.runs.items() if not r.cancelled]
        if not ids:
            return
        found = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=ids),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CANCELLING])),
            )
        )
        for flow_run in found:
            run = self.runs.get(flow_run.id)
            if run is not None:
                log.info("run %s is cancelled: stopping it", flow_run.id)
                run.cancelled = True
                run.scope.cancel()

    def _resubmit_crashed(self, client: Any) -> None:
        """Top-level runs of this pool that a dead worker left Crashed go back to Scheduled,
        ``batch_resubmits`` times at most (their run count says how often they ran)."""
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterParentTaskRunId,
            FlowRunFilterState,
            FlowRunFilterStateType,
            WorkPoolFilter,
            WorkPoolFilterName,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.states import Scheduled

        crashed = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED])),
                parent_task_run_id=FlowRunFilterParentTaskRunId(is_null_=True),
            ),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[self.pool])),
            limit=50,
        )
        for flow_run in crashed:
            if flow_run.run_count > self.settings.orchestration.batch_resubmits:
                continue
            with contextlib.suppress(Exception):
                client.set_flow_run_state(
                    flow_run.id,
                    Scheduled(message=f"resubmitted: its worker died ({flow_run.run_count} runs)"),
                    force=True,
                )
                log.warning("run %s Crashed (its worker died): scheduled again", flow_run.id)

    def _hand_back(self, client: Any) -> None:
        """Stopping: stop the runs under way and put them back in the queue for another
        worker (their outputs are written once: a run again finishes what this one left)."""
        from prefect.states import Scheduled

        for run in self.runs.values():
            run.scope.cancel()
            run.handed_back = True
        deadline = time.monotonic() + runtime.CANCEL_GRACE_S
        for run in self.runs.values():
            with contextlib.suppress(Exception):
                run.future.result(timeout=max(deadline - time.monotonic(), 0.1))
        for run_id in self.runs:
            with contextlib.suppress(Exception):
                client.set_flow_run_state(
                    run_id, Scheduled(message="handed back: its worker stopped"), force=True
                )
                log.info("run %s handed back to the pool", run_id)


def serve(pool: str, name: str, limit: int, settings: Settings | None = None) -> None:
    """Run a warm worker in this process until SIGTERM or SIGINT."""
    worker = WarmWorker(pool, name, limit, settings or get_settings())

    def stop(signum: int, frame: object) -> None:
        log.info("signal %d: stopping (runs under way are handed back)", signum)
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.serve()


def main(argv: list[str] | None = None) -> None:
    """``python -m deployments.warm_worker --pool P --name N --limit L`` (what ``mediaflows
    worker`` starts, in the environment :func:`deployments.worker.worker_env` gives it)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="mediaflows worker")
    parser.add_argument("--pool", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--limit", type=int, default=4)
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    for name in ("mediaflows", "mediaflows.worker"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    logging.getLogger("mediaflows.worker").propagate = False
    serve(args.pool, args.name, args.limit)


if __name__ == "__main__":
    main()
