"""Server concurrency slots that a process keeps while it has work for them (the model's `gpu`,
the `llm` and `asr` endpoints' requests).

Prefect takes a tag limit's slot for each task run carrying the tag and gives it back when the
run ends: a round trip to the server each way per task, during which the slot is unused. Between
two model runs of a batch that was most of the gap (measured on this 2-core machine, 20 files in
one process: 24 ms to acquire, 31 ms to release, of a 63 ms gap between model runs).

Here a process takes a slot of the same limit, ``tag:<tag>`` (created by ``mediaflows setup``),
with a lease, and when the run holding it is done while another run of the process is waiting,
hands it over without asking the server. The lease is renewed while held and released as soon as
no run of the process wants it. A process that dies loses it when the lease expires (60 s, the
least the server takes) or sooner: each process lists the leases it holds in a file of its own
(:class:`_LeaseFiles`), and a process of the same machine that is refused a slot gives back at
once those of a process that is gone (a CLI or worker killed, out of memory) — the common case
of a run started again after a kill. Prefect's task-tag slots have no such way back, which is
why the `llm` requests, too, hold their slot here rather than by a task tag. The server still
bounds the slots of all processes together, and the task that does the work runs inside the
hold, so its task run's start and end show when the slot was in use.

A process with runs queued keeps its slot until its queue is empty; so did Prefect's tag slots
in practice (the releasing process's next run asks at once, the others poll every Retry-After).
A cancelled run stops waiting within :data:`POLL_S`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from mediaflows import cancel
from mediaflows.settings import get_settings
from tasks import prefect_adapter as adapter

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

log = logging.getLogger(__name__)

#: Lease length (Prefect's task engine uses 60 s too), and how often held leases are renewed.
LEASE_S = 60.0
RENEW_EVERY_S = 15.0
#: A tag without a limit on the server is asked about again after this long.
NO_LIMIT_RECHECK_S = 10.0
#: The leases of processes gone are looked for at most this often (while refused a slot).
RECLAIM_EVERY_S = 2.0
#: How often a waiting run checks whether it was cancelled.
POLL_S = 0.2
#: A server that cannot be reached is asked again this often, for at most this long.
UNREACHABLE_RETRY_S = 2.0
UNREACHABLE_GIVE_UP_S = 300.0


class _Pool:
    """One tag's slots in this process, on one server."""

    def __init__(self, tag: str, limit: int, client: SyncPrefectClient, api: str) -> None:
        self.name = f"tag:{tag}"
        self.limit = limit
        self._client = client
        self._api = api
        self._reclaimed_at = 0.0
        self._cond = threading.Condition()
        self._idle: list[UUID] = []  # held, free for the next waiting run
        self._held: set[UUID] = set()  # held, idle or in use: renewed
        self._busy = 0  # runs holding a slot
        self._asking = 0  # runs asking the server
        self._waiting = 0  # runs in take()
        self._no_limit_until = 0.0
        self._renewer: threading.Thread | None = None

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        lease = self._take()
        try:
            yield
        finally:
            self._give_back(lease)

    # -- taking ----------------------------------------------------------------------------------
    def _take(self) -> UUID | None:
        with self._cond:
            self._waiting += 1
        try:
            return self._wait_for_slot()
        finally:
            with self._cond:
                self._waiting -= 1
                extra = self._idle[self._waiting :]  # handed over to a run that found another
                del self._idle[self._waiting :]
                self._held.difference_update(extra)
                self._record()
            for lease in extra:
                self._release(lease)

    def _wait_for_slot(self) -> UUID | None:
        unreachable_since: float | None = None
        while True:
            with self._cond:
                if self._idle:
                    self._busy += 1
                    return self._idle.pop()
                if self._busy + self._asking >= self.limit:
                    self._cond.wait(POLL_S)
                    cancel.check()
                    continue
                self._asking += 1
            try:
                granted, lease, retry_after = self._ask()
            except adapter.server_errors() as exc:
                if not adapter.is_unreachable(exc):
                    raise
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > UNREACHABLE_GIVE_UP_S:
                    raise
                log.warning("could not ask the server for a %s slot (%s); asking again", self.name,
                            exc)  # fmt: skip
                granted, lease, retry_after = False, None, UNREACHABLE_RETRY_S
            finally:
                with self._cond:
                    self._asking -= 1
            if granted:
                with self._cond:
                    self._busy += 1
                    if lease is not None:
                        self._held.add(lease)
                        self._record()
                if lease is not None:
                    self._start_renewer()
                return lease
            # Refused (all slots taken): a gone process's slots given back, then the server's
            # Retry-After, or one of ours coming free.
            if self._reclaim():
                continue
            deadline = time.monotonic() + retry_after
            with self._cond:
                while not self._idle and time.monotonic() < deadline:
                    self._cond.wait(min(POLL_S, deadline - time.monotonic()))
                    cancel.check()

    def _ask(self) -> tuple[bool, UUID | None, float]:
        """(granted, lease or None when the server has no such limit, seconds to wait if not)."""
        if time.monotonic() < self._no_limit_until:
            return True, None, 0.0
        granted, lease, retry_after = adapter.take_slot(self._client, self.name, LEASE_S)
        if granted and lease is None:
            self._no_limit_until = time.monotonic() + NO_LIMIT_RECHECK_S
        return granted, lease, retry_after

    def _record(self) -> None:
        """Under ``_cond``: the process's lease file says what this pool holds now."""
        _lease_files.record(self._api, self.name, self._held)

    def _reclaim(self) -> bool:
        """Give back the slots of this machine's processes that are gone (at most every
        :data:`RECLAIM_EVERY_S`); True if any was."""
        if time.monotonic() - self._reclaimed_at < RECLAIM_EVERY_S:
            return False
        self._reclaimed_at = time.monotonic()
        given = _lease_files.reclaim(self._api, lambda lease: self._release(lease))
        if given:
            log.info("gave back %d slot(s) of %s held by processes that are gone", given,
                     self.name)  # fmt: skip
        return given > 0

    # -- giving back -----------------------------------------------------------------------------
    def _give_back(self, lease: UUID | None) -> None:
        with self._cond:
            self._busy -= 1
            if lease is None or lease not in self._held:  # no limit, or the lease was lost
                self._cond.notify()
                return
            if self._waiting > len(self._idle):
                self._idle.append(lease)  # the next run of this process takes it over
                self._cond.notify()
                return
            self._held.discard(lease)
            self._record()
        self._release(lease)

    def _release(self, lease: UUID) -> None:
        try:
            adapter.release_slot(self._client, lease)
        except adapter.server_errors() as exc:  # it expires by itself
            log.warning("could not release a %s slot (%s); it frees when its lease expires",
                        self.name, exc)  # fmt: skip

    def release_all(self) -> None:
        with self._cond:
            leases = list(self._held)
            self._held.clear()
            self._idle.clear()
            self._record()
        for lease in leases:
            self._release(lease)

    # -- renewing --------------------------------------------------------------------------------
    def _start_renewer(self) -> None:
        with self._cond:
            if self._renewer is not None:
                return
            self._renewer = threading.Thread(
                target=self._renew_forever, name=f"mediaflows-{self.name}-leases", daemon=True
            )
        self._renewer.start()

    def _renew_forever(self) -> None:
        while True:
            time.sleep(RENEW_EVERY_S)
            with self._cond:
                leases = list(self._held)
            for lease in leases:
                try:
                    renewed = adapter.renew_slot(self._client, lease, LEASE_S)
                except adapter.server_errors() as exc:  # the server is away: try again next time
                    log.warning("could not renew a %s lease: %s", self.name, exc)
                    continue
                if not renewed:  # expired: the slot is gone
                    log.warning("the %s lease %s expired; not handing it over", self.name, lease)
                    with self._cond:
                        self._held.discard(lease)
                        self._record()
                        if lease in self._idle:
                            self._idle.remove(lease)


class _LeaseFiles:
    """The leases each process holds, one JSON file per process under ``<home>/leases``, named
    by machine, pid and the process's start time (a pid used again is another process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], list[str]] = {}  # (api, limit) → lease ids
        self._pid: int | None = None

    @staticmethod
    def _dir() -> Path:
        return get_settings().home / "leases"

    @staticmethod
    def _started(pid: int) -> str:
        """When the process ``pid`` started (clock ticks since boot, from /proc; "" where there
        is no /proc, and then a pid used again is taken for the same process)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return ""
        return stat[stat.rindex(")") + 2 :].split()[19]

    def _path(self) -> Path:
        pid = os.getpid()
        return self._dir() / f"{socket.gethostname()}-{pid}-{self._started(pid)}.json"

    def record(self, api: str, limit: str, leases: set[UUID]) -> None:
        with self._lock:
            self._held[(api, limit)] = sorted(str(lease) for lease in leases)
            held = [[a, name, lease] for (a, name), ids in self._held.items() for lease in ids]
            path = self._path()
            try:
                if not held:
                    path.unlink(missing_ok=True)
                    return
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_suffix(".tmp")
                temporary.write_text(json.dumps(held))
                temporary.replace(path)
            except OSError as exc:  # the leases then expire by themselves if we die
                log.warning("could not record the slots this process holds: %s", exc)

    def _gone(self, name: str) -> bool:
        host, _, rest = name.removesuffix(".json").rpartition("-")
        host, _, pid = host.rpartition("-")
        if host != socket.gethostname() or not pid.isdigit():
            return False  # another machine's: its leases expire there
        if int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # alive, another user's
        return self._started(int(pid)) != rest

    def reclaim(self, api: str, release: Callable[[UUID], None]) -> int:
        """Give back (``release``) the leases on ``api`` of this machine's processes that are
        gone, forgetting them; how many."""
        given = 0
        try:
            files = [p for p in self._dir().glob("*.json") if self._gone(p.name)]
        except OSError:
            return 0
        for path in files:
            try:
                held = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            for lease in (lease for a, _, lease in held if a == api):
                release(UUID(lease))
                given += 1
            rest = [entry for entry in held if entry[0] != api]
            try:
                if rest:
                    path.write_text(json.dumps(rest))
                else:
                    path.unlink(missing_ok=True)
            except OSError:
                pass
        return given


_lease_files = _LeaseFiles()
_pools: dict[tuple[str, str, int], _Pool] = {}
_pools_lock = threading.Lock()


def _pool(tag: str, limit: int) -> _Pool:
    settings = adapter.current_settings()
    key = (str(settings.settings.api.url), tag, limit)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            client = adapter.process_client(settings)
            pool = _pools[key] = _Pool(tag, limit, client, key[0])
        return pool


@contextlib.contextmanager
def hold(tag: str, limit: int) -> Iterator[None]:
    """Hold one slot of the server's ``tag`` limit (and one of this process's ``limit``) for
    the block: taken over from a run of this process that just finished with it, or asked of
    the server. Raises :class:`~mediaflows.errors.RunCancelledError` if the run is cancelled
    while it waits. The tasks inside must not carry ``tag`` (Prefect would take a second
    slot)."""
    with _pool(tag, limit).hold():
        yield


@atexit.register
def _release_all() -> None:
    with _pools_lock:
        pools = list(_pools.values())
    for pool in pools:
        pool.release_all()  # each release that fails is logged; the lease then expires
