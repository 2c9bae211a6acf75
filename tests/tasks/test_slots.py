"""Slots of a server concurrency limit kept by the process (tasks/slots.py), against the test's
Prefect server: handed over between runs of one process, exclusive across processes, released
when no run wants them, and a cancelled run stops waiting."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

from mediaflows.cancel import RunCancelledError
from mediaflows.settings import get_settings
from tasks import prefect_adapter, slots
from tests.cancelling import cancel_after


@pytest.fixture
def tag() -> Iterator[str]:
    """A fresh tag whose server limit is 1 slot."""
    name = f"slot-test-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=f"tag:{name}", limit=1)
        )
    yield name
    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name(f"tag:{name}")


def _active_slots(tag: str) -> int:
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(f"tag:{tag}").active_slots


def _asks(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Times at which this process asks the server for a slot (through its shared client)."""
    asked: list[float] = []
    client = prefect_adapter.process_client(prefect_adapter.current_settings())
    ask = client.increment_concurrency_slots_with_lease

    def counting(*args: Any, **kwargs: Any) -> Any:
        asked.append(time.monotonic())
        return ask(*args, **kwargs)

    monkeypatch.setattr(client, "increment_concurrency_slots_with_lease", counting)
    return asked


def test_runs_of_one_process_hand_the_slot_over_without_asking_the_server(
    tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _asks(monkeypatch)
    spans: list[tuple[float, float]] = []
    active_inside: list[int] = []

    def run(limit: int) -> None:
        with slots.hold(tag, limit):
            start = time.monotonic()
            active_inside.append(_active_slots(tag))
            time.sleep(0.2)
            spans.append((start, time.monotonic()))

    def four_at_once(limit: int) -> None:
        threads = [threading.Thread(target=run, args=(limit,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    four_at_once(1)
    # One request for all four: the others queued here and took the slot over in turn.
    assert len(asked) == 1, asked
    assert active_inside == [1, 1, 1, 1]  # the server saw one slot taken all along
    assert _active_slots(tag) == 0  # given back once nobody here wanted it
    # With the process allowed more than the server, the server's 1 still holds.
    four_at_once(4)
    spans.sort()
    assert len(spans) == 8
    assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans)), spans
    assert active_inside == [1] * 8
    assert _active_slots(tag) == 0


_OTHER = """
import sys, time
from tasks import prefect_adapter, slots
from tests.cancelling import cancel_after
with slots.hold(sys.argv[1], 1):
    print("holding", flush=True)
    time.sleep(2.0)
print(time.time(), flush=True)
"""


def test_the_slot_is_exclusive_across_processes(tag: str) -> None:
    other = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_OTHER), tag], stdout=subprocess.PIPE, text=True
    )
    assert other.stdout is not None
    assert other.stdout.readline().strip() == "holding"
    with slots.hold(tag, 1):
        entered = time.time()
        assert _active_slots(tag) == 1
    released = float(other.stdout.readline())
    assert other.wait(timeout=30) == 0
    assert entered >= released - 0.05
    assert _active_slots(tag) == 0


_KILLED = """
import sys, time
from tasks import slots
with slots.hold(sys.argv[1], 1):
    print("holding", flush=True)
    time.sleep(600)
"""


def test_the_slot_of_a_killed_process_comes_back_before_its_lease_ends(tag: str) -> None:
    """kill -9 of a process holding the slot: the next process of the machine that asks for it
    gives it back at once from the dead one's lease file, not when its 60 s lease expires."""
    killed = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_KILLED), tag], stdout=subprocess.PIPE, text=True
    )
    assert killed.stdout is not None
    assert killed.stdout.readline().strip() == "holding"
    leases = get_settings().home / "leases"
    (recorded,) = [p for p in leases.glob(f"*-{killed.pid}-*.json")]
    killed.kill()
    killed.wait(timeout=10)
    assert _active_slots(tag) == 1  # the server still counts the dead process's slot
    started = time.monotonic()
    with slots.hold(tag, 1):
        waited = time.monotonic() - started
        assert _active_slots(tag) == 1
    assert waited < slots.LEASE_S / 2, waited
    assert not recorded.exists()  # forgotten once given back
    assert _active_slots(tag) == 0


def test_a_cancelled_run_stops_waiting_for_a_slot(tag: str) -> None:
    holding, done = threading.Event(), threading.Event()

    def holder() -> None:
        with slots.hold(tag, 1):
            holding.set()
            done.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    assert holding.wait(10)

    def wait_for_slot() -> None:
        with slots.hold(tag, 1):
            pass

    raised, stopped_in = cancel_after(wait_for_slot, 1.0)
    assert isinstance(raised, RunCancelledError)
    assert stopped_in < 1.0, stopped_in
    done.set()
    thread.join(timeout=10)
    assert _active_slots(tag) == 0  # the cancelled run took nothing, the holder gave it back


def test_a_tag_without_a_limit_is_bounded_by_the_process_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = _asks(monkeypatch)
    tag = f"unlimited-{uuid.uuid4().hex[:8]}"
    inside = 0
    most = 0
    lock = threading.Lock()

    def run() -> None:
        nonlocal inside, most
        with slots.hold(tag, 2):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.2)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=run) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert most == 2
    # The server was asked (by the first two at once), said there is no such limit, and was not
    # asked again for the next three.
    assert 1 <= len(asked) <= 2, asked
