"""CPU seconds per test, for finding what makes the suite CPU-bound: ``./dev test -p
tests.cpu_report`` writes one JSON line per test phase to ``$MEDIAFLOWS_TEST_CPU_REPORT``
(default ``cpu-report.jsonl``) and prints the 25 costliest tests at the end.

A test's CPU is what its test worker's process tree (the worker, its Prefect server, the workers,
CLIs and ffmpeg it started, once reaped) used from the phase's start to its end, read from
/proc (Linux only). A process that is orphaned before it is reaped is not counted.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator
from pathlib import Path

import pytest

_TICK = os.sysconf("SC_CLK_TCK")
_REPORT = Path(os.environ.get("MEDIAFLOWS_TEST_CPU_REPORT", "cpu-report.jsonl"))


def _tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and its descendants, with their reaped children's."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(f) for f in fields[11:15]) / _TICK
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(p for p, parent in parents.items() if parent == pid)
    return total


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    cpu, wall = _tree_cpu(os.getpid()), time.monotonic()
    try:
        return (yield)
    finally:
        line = {"test": item.nodeid, "cpu_s": round(_tree_cpu(os.getpid()) - cpu, 2),
                "wall_s": round(time.monotonic() - wall, 2)}  # fmt: skip
        with _REPORT.open("a") as out:
            out.write(json.dumps(line) + "\n")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") or not _REPORT.exists():
        return
    rows = [json.loads(line) for line in _REPORT.read_text().splitlines()]
    terminalreporter.write_sep("=", f"CPU per test ({sum(r['cpu_s'] for r in rows):.0f} s in all)")
    for r in sorted(rows, key=lambda r: -r["cpu_s"])[:25]:
        terminalreporter.write_line(f"{r['cpu_s']:7.1f} s CPU {r['wall_s']:7.1f} s  {r['test']}")
