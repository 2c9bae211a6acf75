"""The Python API of a reviewer in the loop: what a waiting run asks, and the answer.

```python
from deployments import review, resume

waiting = review(run_id)           # ReviewWait: the flagged cues, the deadline
for cue in waiting.cues:
    print(cue.key, cue.start, cue.reasons, cue.current)
resume(run_id, {"de:5": "Wir brauchen getrennte Zimmer.", "de:6": "accept"}, reviewer="ana")
```

An answer is checked here, before anything is sent, by the rules the run itself applies
(:func:`mediaflows.subtitles.review.check_answer`): a cue that was not flagged, lost markup, text
that cannot fit the line rules, a run that is not waiting, a review past its deadline are refused
with :class:`~mediaflows.errors.ReviewRefusedError` (one line) and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from deployments.client import connect
from mediaflows.errors import ReviewRefusedError
from mediaflows.subtitles import review as rules
from tasks.review import REVIEWER, ReviewWait, read_waits, waiting_children

__all__ = ["ReviewWait", "resume", "review"]


def _waiting(run_id: UUID) -> ReviewWait:
    """The wait of ``run_id``, or of its one child run that waits (generate_srt's translation;
    a batch has one per file: each is answered by its own id)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            flow_run = client.read_flow_run(run_id)
        except ObjectNotFound:
            raise ReviewRefusedError(f"no run {run_id}") from None
        waits = read_waits(client, run_id)
        if not waits:
            children = waiting_children(client, run_id)
            if len(children) > 1:
                ids = ", ".join(str(c) for c in children)
                raise ReviewRefusedError(
                    f"run {run_id} has {len(children)} child runs waiting for a review; "
                    f"answer each by its id: {ids}"
                )
            if children:
                return _waiting(children[0])
    state = flow_run.state
    if not waits:
        raise ReviewRefusedError(f"run {run_id} ({flow_run.name}) is not waiting for a review")
    if state is None or state.type != StateType.PAUSED:
        what = state.name if state else "no state"
        raise ReviewRefusedError(f"run {run_id} is not waiting for a review (it is {what})")
    return waits[-1]


def review(run_id: UUID | str) -> ReviewWait:
    """What a waiting run asks: its flagged cues (key, times, source, current text, why, the
    limits), its deadline and what happens then, why its last answer was refused."""
    connect()
    return _waiting(UUID(str(run_id)))


def resume(run_id: UUID | str, edits: Mapping[str, str | None], reviewer: str = "") -> ReviewWait:
    """Answer a waiting run: per cue key (``"5"``, ``"de:5"``), its new text, or ``None`` /
    ``"accept"`` to keep it; cues not named are accepted. The run goes on (a suspended one is
    scheduled again). Returns the wait that was answered."""
    connect()
    from prefect.client.orchestration import get_client

    run_id = UUID(str(run_id))
    wait = _waiting(run_id)
    if wait.expired:
        raise ReviewRefusedError(
            f"the review of run {run_id} ended at {wait.deadline:%Y-%m-%d %H:%M:%S} UTC "
            f"({wait.timeout}): too late"
        )
    run_id = wait.run_id  # the child run that waits, when ``run_id`` is its parent's
    rules.check_answer(wait.cues, edits)  # refused here, before anything is sent
    answer = {REVIEWER: reviewer}
    for cue in wait.cues:
        text = edits.get(cue.key)
        answer[cue.field] = cue.current if text is None or text.strip() == rules.ACCEPT else text
    with get_client(sync_client=True) as client:
        outcome = client.resume_flow_run(run_id, run_input=answer)
    if outcome.status.value != "ACCEPT":
        reason = getattr(outcome.details, "reason", "") or outcome.status.value
        raise ReviewRefusedError(f"run {run_id} was not resumed: {reason}")
    return wait
