"""Raw Prefect, no mediaflows code: a parent flow that gathers N async subflows at once (each
with two trivial tasks), as a naive batch would. Prints one JSON line: the parent's state, the
children that completed and the client's back-offs on retryable statuses (503)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from prefect import flow, task

from tasks.prefect_adapter import state_of


class Backoffs(logging.Handler):
    count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retryable status code" in record.getMessage():
            Backoffs.count += 1


@task
def double(i: int) -> int:
    return 2 * i


@flow
async def child(i: int) -> int:
    return double(i) + double(i)


@flow
async def parent(n: int) -> int:
    states = await asyncio.gather(*(child(i, return_state=True) for i in range(n)))
    return sum(1 for s in states if s.is_completed())


def main() -> None:
    client_log = logging.getLogger("prefect.client")
    client_log.addHandler(Backoffs())
    client_log.setLevel(logging.DEBUG)
    state = asyncio.run(state_of(parent, n=int(sys.argv[1])))
    completed = state.result(raise_on_failure=False) if state.is_completed() else None
    print(json.dumps({"state": state.type.value, "completed": completed,
                      "backoffs": Backoffs.count}))  # fmt: skip


if __name__ == "__main__":
    main()
