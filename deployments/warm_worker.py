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
* frees the slot of a run suspended for a reviewer (it comes back resumed, as a new claim), and
  resumes, unanswered, the suspended runs of its pool whose review deadline passed
  (``tasks.review``);
* resubmits a top-level run that a dead worker left ``Crashed`` (marked so by the crash
  automation; ``deployments.crashes``): set back to ``Scheduled`` at most
  ``MEDIAFLOWS_ORCHESTRATION__BATCH_RESUBMITS`` times; outputs are written once under fixed ids,
  so a run again only finishes what was left (a batch finds its finished files stored). Batch
  children are resubmitted by their batch;
* on SIGTERM stops claiming, stops its runs and hands them back (``Scheduled``) so another
  worker takes them at once, rather than after the crash timeout.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from deployments.crashes import log_to_stderr, resubmit_crashed
from mediaflows import cancel, speech
from mediaflows.settings import Settings, get_settings
from tasks import prefect_adapter as adapter
from tasks.review import expire_reviews

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

log = logging.getLogger("mediaflows.worker")

#: Seconds between the worker's own heartbeats to its pool (Prefect marks a worker offline
#: after missing a few).
HEARTBEAT_S = 10.0


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
        self._flows: dict[UUID, Flow[..., Any] | None] = {}
        self.where = f"{socket.gethostname()}:{os.getpid()}"

    # ---- the loop ------------------------------------------------------------------------------

    def serve(self, max_runs: int | None = None) -> None:
        """Run until SIGTERM/SIGINT (or ``stop()``; or after ``max_runs`` runs have ended)."""
        from prefect.client.orchestration import get_client

        poll_s = self.settings.orchestration.worker_poll_s
        most_runs = self.settings.orchestration.batch_resubmits
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
                    if now - housekeeping >= self.settings.orchestration.housekeeping_s:
                        housekeeping = now
                        resubmit_crashed(client, self.pool, most_runs)
                        expire_reviews(client, self.pool)
                        if self.settings.whisper.idle_unload_s:
                            speech.unload_idle(self.settings.whisper.idle_unload_s)
                except Exception as exc:  # the server away or restarting, a bad answer: the
                    # worker outlives whatever one round of its loop meets; its runs go on and
                    # it asks again a little later (tests/reliability restarts the server).
                    log.warning("worker loop: %s: %s; trying again", type(exc).__name__, exc)
                    self.stopping.wait(min(5.0, 10 * poll_s))
                self.stopping.wait(poll_s)
            self._hand_back(client)
        self._executor.shutdown(wait=True)

    def stop(self) -> None:
        self.stopping.set()

    # ---- starting runs -------------------------------------------------------------------------

    def _claim(self, client: SyncPrefectClient, free: int) -> None:
        scheduled = client.get_scheduled_flow_runs_for_work_pool(
            self.pool, scheduled_before=datetime.now(UTC)
        )
        for response in scheduled[:free]:
            flow_run = response.flow_run
            flow = self._flow_of(client, flow_run)
            if flow is None:
                continue  # not a mediaflows flow: left for another worker
            if not adapter.claim_run(client, flow_run.id):
                log.debug("run %s not claimed: another worker took it", flow_run.id)
                continue
            try:
                adapter.record_where(client, flow_run.id, self.where)
            except adapter.server_errors() as exc:  # the run goes on; only the UI misses it
                log.warning("could not record where run %s runs: %s", flow_run.id, exc)
            scope = cancel.CancelScope()
            fresh = client.read_flow_run(flow_run.id)
            future = self._executor.submit(self._execute, flow, fresh, scope)
            self.runs[flow_run.id] = _Run(future, scope)
            self.started += 1
            log.info("started run %s (%s) of %s", flow_run.name, flow_run.id, flow.name)

    def _flow_of(self, client: SyncPrefectClient, flow_run: FlowRun) -> Flow[..., Any] | None:
        if flow_run.flow_id not in self._flows:
            from flows.catalog import flow_by_name

            self._flows[flow_run.flow_id] = flow_by_name(client.read_flow(flow_run.flow_id).name)
        return self._flows[flow_run.flow_id]

    @staticmethod
    def _execute(flow: Flow[..., Any], flow_run: FlowRun, scope: cancel.CancelScope) -> None:
        # The run's own cancel scopes (adapter.run_blocking) nest in this one: cancelling it
        # stops the run's tools and checks.
        with scope:
            adapter.execute_run(flow, flow_run, dict(flow_run.parameters))

    # ---- watching runs -------------------------------------------------------------------------

    def _reap(self, client: SyncPrefectClient) -> None:
        """Forget ended runs; mark Cancelled the ones this worker stopped for a cancel."""
        from prefect.exceptions import Pause
        from prefect.states import Cancelled

        for run_id, run in list(self.runs.items()):
            if not run.future.done():
                continue
            del self.runs[run_id]
            error = run.future.exception()
            if isinstance(error, Pause):
                log.info("run %s suspended for a review: its slot is free", run_id)
            elif error is not None and not isinstance(error, cancel.RunCancelledError):
                log.warning("run %s ended with %s: %s", run_id, type(error).__name__, error)
            if run.cancelled:
                try:
                    adapter.force_state(client, run_id, Cancelled(message="cancelled"))
                except adapter.server_errors() as exc:  # it stays Cancelling: the UI shows it
                    log.warning("could not mark run %s Cancelled: %s", run_id, exc)

    def _watch_cancelling(self, client: SyncPrefectClient) -> None:
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

    def _hand_back(self, client: SyncPrefectClient) -> None:
        """Stopping: stop the runs under way and put them back in the queue for another
        worker (their outputs are written once: a run again finishes what this one left)."""
        from prefect.states import Scheduled

        for run in self.runs.values():
            run.scope.cancel()
            run.handed_back = True
        # How each ended (RunCancelledError, mostly) is the run's own business, seen by _reap.
        wait_for([run.future for run in self.runs.values()], timeout=adapter.CANCEL_GRACE_S)
        for run_id in self.runs:
            try:
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    continue  # it ended before it could be stopped: nothing to hand back
                adapter.force_state(
                    client, run_id, Scheduled(message="handed back: its worker stopped")
                )
            except adapter.server_errors() as exc:  # the crash automation will find it
                log.warning("could not hand run %s back: %s", run_id, exc)
                continue
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

    parser = argparse.ArgumentParser(prog="mediaflows worker")
    parser.add_argument("--pool", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--limit", type=int, default=4)
    args = parser.parse_args(argv)
    log_to_stderr()
    serve(args.pool, args.name, args.limit)


if __name__ == "__main__":
    main()
