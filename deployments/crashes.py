"""Runs that died with their worker or container go back to the queue.

A top-level run of a pool is ``Crashed`` when its infrastructure ended under it: Prefect's
process or docker worker marks it so when the run's process or container exits non-zero (a
``docker kill``, the OOM killer), the crash automation when a warm worker stopped heartbeating.
Such a run is set back to ``Scheduled`` at most ``MEDIAFLOWS_ORCHESTRATION__BATCH_RESUBMITS``
times (its run count says how often it ran); outputs are written once under fixed ids, so a run
again only finishes what was left. Batch children are resubmitted by their batch, not here.

The warm worker looks every ``MEDIAFLOWS_ORCHESTRATION__HOUSEKEEPING_S`` (10 s) from its own
loop; ``mediaflows worker --kind process`` (the process and docker pools) runs
:class:`CrashWatcher` beside Prefect's worker.
Several workers of one pool may look at once: each re-reads a run just before setting it and
leaves it alone unless it is still in the Crashed state it saw.
"""

from __future__ import annotations

import logging
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from mediaflows.settings import Settings, get_settings
from tasks import prefect_adapter as adapter
from tasks.review import expire_reviews

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

log = logging.getLogger("mediaflows.worker")

#: Seconds a run stays Crashed before it is scheduled again. CHECK (Prefect 3.8): the process
#: worker's runner marks a run Crashed before the worker frees the run's slot of its ``--limit``;
#: a run scheduled again in between comes back to the same worker under the same id, and the
#: worker dies ("this borrower is already holding one of this CapacityLimiter's tokens"; seen
#: in tests/deployments/test_worker.py, the run then left Late with no worker).
SETTLE_S = 5.0


def log_to_stderr() -> None:
    """A worker process's own lines (``mediaflows``, ``mediaflows.worker``) on stderr, stamped."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    for name in ("mediaflows", "mediaflows.worker"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    logging.getLogger("mediaflows.worker").propagate = False


def resubmit_crashed(client: SyncPrefectClient, pool: str, most_runs: int) -> list[UUID]:
    """Set the top-level runs of ``pool`` that are Crashed (for ``SETTLE_S`` at least) and ran
    at most ``most_runs`` times back to Scheduled; returns the ids set."""
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
        work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
        limit=50,
    )
    resubmitted = []
    settled = datetime.now(UTC) - timedelta(seconds=SETTLE_S)
    for flow_run in crashed:
        if flow_run.run_count > most_runs or flow_run.state is None:
            continue
        if flow_run.state.timestamp > settled:  # the next round takes it
            continue
        seen = flow_run.state.id
        message = f"resubmitted: its worker died ({flow_run.run_count} runs)"
        try:
            now = client.read_flow_run(flow_run.id).state
            if now is None or now.id != seen:  # another worker's watcher was first
                continue
            adapter.force_state(client, flow_run.id, Scheduled(message=message))
        except adapter.server_errors() as exc:  # the next round tries again
            log.warning("could not resubmit crashed run %s: %s", flow_run.id, exc)
            continue
        log.warning("run %s Crashed (%s): scheduled again", flow_run.id, flow_run.state.message)
        resubmitted.append(flow_run.id)
    return resubmitted


class CrashWatcher(threading.Thread):
    """A daemon thread that resubmits ``pool``'s crashed runs every ``every_s`` until stopped
    (beside a worker that does not do it itself: Prefect's process and docker workers), and
    ends the reviews of its suspended runs whose deadline passed (``tasks.review``)."""

    def __init__(
        self, pool: str, settings: Settings | None = None, every_s: float | None = None
    ) -> None:
        super().__init__(name=f"crash-watcher-{pool}", daemon=True)
        self.pool = pool
        self.settings = settings or get_settings()
        self.every_s = every_s or self.settings.orchestration.housekeeping_s
        self.stopping = threading.Event()

    def run(self) -> None:
        from prefect.client.orchestration import get_client

        most_runs = self.settings.orchestration.batch_resubmits
        log.info("resubmitting runs of pool %s that crash (at most %d times)", self.pool, most_runs)
        while not self.stopping.wait(self.every_s):
            try:
                with get_client(sync_client=True) as client:
                    resubmit_crashed(client, self.pool, most_runs)
                    expire_reviews(client, self.pool)
            except Exception as exc:  # the server away or restarting: look again next round
                log.warning("crash watcher: %s: %s; trying again", type(exc).__name__, exc)

    def stop(self) -> None:
        self.stopping.set()
