"""Every mediaflows flow by name: each operation's, its batch's, the sweep, and the window of a
long file that a transcription hands to the pool. What a warm
worker runs for a flow run of a mediaflows deployment, what the Python API runs in-process, and
what the generated docs describe."""

from __future__ import annotations

from typing import Any

from prefect import Flow

from flows.batch import BATCHES, OPERATION_FLOWS
from flows.sweep import sweep
from flows.windows import transcribe_window

#: Every flow of mediaflows' deployments, by flow name.
FLOWS: dict[str, Flow[..., Any]] = {
    **OPERATION_FLOWS,
    **{made.name: made for made in BATCHES.values()},
    sweep.name: sweep,
    transcribe_window.name: transcribe_window,
}


def flow_by_name(name: str) -> Flow[..., Any] | None:
    """The mediaflows flow called ``name`` (an operation, its batch, or the sweep); None for
    any other name."""
    return FLOWS.get(name)
