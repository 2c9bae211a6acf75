"""The Prefect side of a reviewer in the loop: a run waits for a person with a resume form made
from its flagged cues, reads the answer back, and the Python API, the CLI and the workers find
what waits.

How a run waits (:func:`wait_for_review`):

* **Under a deployment** (a top-level run a worker started) the run is **suspended**
  (``suspend_flow_run``): its process ends and its worker slot is free. Resumed, the run is
  scheduled again and runs from the start; its tasks (the chunks' answers, the reading) come
  from their caches, and this same wait, already answered, returns the answer at once.
* **In-process** (the Python API with no worker, ``mediaflows run``) and as a batch's child
  (Prefect suspends no subflow) it **pauses** (``pause_flow_run``): the thread waits.

What waits is stored on the run as a flow-run input (``mediaflows-review-<attempt>``,
:class:`ReviewWait`: the cues, the deadline, the rule) beside Prefect's own form schema, so that
anyone with the run id can read it. The form has one text field per flagged cue, filled with the
text the run would deliver, and the reviewer's name; its description is the cue list in
markdown (also published as the run's ``review`` artifact).

A review nobody answers: at its deadline the run is resumed **without an answer** (by the
workers' housekeeping, :func:`resume_expired`, for a suspended run; by a timer in the waiting
process for a paused one), and the run applies ``review_timeout``: the automatic text delivered,
or :class:`~mediaflows.errors.ReviewTimedOutError`. Prefect's own pause timeout stays behind as a
backstop (a paused run whose process died; a suspended ``fail`` run with no worker left).

An answer that breaks the rules is refused with its reason (in the run's log, its artifact and
the next wait's record) and the run waits again (attempt 2, 3 …) until its deadline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from mediaflows import cancel
from mediaflows.errors import ReviewRefusedError, ReviewTimedOutError, RunCancelledError
from mediaflows.models import ReviewCue, ReviewOptions, ReviewRecord, ReviewTimeoutRule
from mediaflows.subtitles import review
from tasks import prefect_adapter as adapter
from tasks.progress import RunProgress

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.input import RunInput

log = logging.getLogger("mediaflows.review")  # a worker logs it (deployments.crashes)

#: Where a run keeps what waits (a flow-run input per attempt: ``mediaflows-review-1`` …).
WAIT_KEY = "mediaflows-review"
#: Seconds past the deadline after which Prefect itself fails a wait nobody ended.
BACKSTOP_S = 600
#: The resume form's field for the reviewer's name.
REVIEWER = "reviewer"


class ReviewWait(BaseModel):
    """What a waiting run asks: its flagged cues, until when, and what happens then."""

    model_config = ConfigDict(frozen=True)

    run_id: UUID
    title: str
    attempt: int = Field(description="1 for the first wait, one more after each refused answer.")
    deadline: datetime
    timeout: ReviewTimeoutRule
    suspended: bool = Field(description="True: suspended (no worker holds it); False: paused.")
    cues: tuple[ReviewCue, ...]
    refused: str = Field(default="", description="Why the previous answer was refused.")
    kept: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="The chunks that got no valid answer (their fallbacks, by request key): a "
        "resumed run takes them from here rather than asking the model again.",
    )

    @property
    def expired(self) -> bool:
        return datetime.now(UTC) >= self.deadline


#: Called with each wait this process starts (the CLI tells its user how to answer).
_watchers: list[Callable[[ReviewWait], None]] = []


def watch(watcher: Callable[[ReviewWait], None]) -> None:
    """Call ``watcher(wait)`` when a run of this process starts waiting for a reviewer."""
    _watchers.append(watcher)


class _Answer(BaseModel):
    texts: dict[str, str | None]
    reviewer: str
    at: datetime | None


def form_model(cues: Sequence[ReviewCue], description: str) -> type[RunInput]:
    """The resume form: the reviewer's name, and a text field per cue (its current text as the
    default: left as it is, the cue is accepted)."""
    from prefect.input import RunInput
    from pydantic import create_model

    fields: dict[str, Any] = {
        REVIEWER: (str, Field(default="", title="Reviewer", description="Your name (recorded).")),
    }
    for cue in cues:
        where = f"{cue.language} " if cue.language else ""
        fields[cue.field] = (
            str,
            Field(
                default=cue.current,
                title=f"{where}cue {cue.number} · {cue.start} → {cue.end}",
                description=f"{'; '.join(cue.reasons)}. Source: {cue.source!r}. At most "
                f"{cue.max_lines} lines of {cue.max_line_chars} characters.",
            ),
        )
    model: type[RunInput] = create_model("ReviewAnswer", __base__=RunInput, **fields)
    return model.with_initial_data(description=description)


def _keyset(suspended: bool, key: str) -> dict[str, str]:
    """The flow-run input keys Prefect gives a pause or suspension's form and answer. CHECK
    (Prefect 3.8, ``prefect.input.run_input.keyset_from_paused_state``): the state's name,
    lowered, then the pause key; tests/flows/test_review.py reads answers through it."""
    from prefect.input.run_input import keyset_from_base_key

    keyset = keyset_from_base_key(f"{'suspended' if suspended else 'paused'}-{key}")
    return {name: value for name, value in keyset.items()}


def read_waits(client: SyncPrefectClient, run_id: UUID) -> list[ReviewWait]:
    """Every wait a run recorded, first to last."""
    found = client.filter_flow_run_input(run_id, WAIT_KEY, limit=100, exclude_keys=set())
    waits = [ReviewWait.model_validate(f.decoded_value) for f in found]
    return sorted(waits, key=lambda w: w.attempt)


def _save_wait(client: SyncPrefectClient, wait: ReviewWait) -> None:
    client.create_flow_run_input(wait.run_id, f"{WAIT_KEY}-{wait.attempt}", wait.model_dump_json())


def _read_answer(
    client: SyncPrefectClient, run_id: UUID, keyset: Mapping[str, str], cues: Sequence[ReviewCue]
) -> _Answer | None:
    found = client.filter_flow_run_input(run_id, keyset["response"], limit=1, exclude_keys=set())
    if not found:
        return None  # resumed without an answer: the deadline (or a bare resume)
    values = dict(found[0].decoded_value or {})
    return _Answer(
        texts={c.key: values.get(c.field) for c in cues},
        reviewer=str(values.get(REVIEWER) or ""),
        at=found[0].created,
    )


def paused_children(client: SyncPrefectClient, run_id: UUID) -> list[UUID]:
    """The child runs of ``run_id`` that are paused (mediaflows pauses only for a review)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    paused = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
        ),
        limit=200,
    )
    return [r.id for r in paused]


def waiting_children(client: SyncPrefectClient, run_id: UUID) -> list[UUID]:
    """The child runs of ``run_id`` that wait for a review (paused, with a wait recorded)."""
    return [r for r in paused_children(client, run_id) if read_waits(client, r)]


def count_waiting_children() -> int:
    """How many child runs of the current run wait for a review (a batch's progress)."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return 0
    try:
        with get_client(sync_client=True) as client:
            return len(paused_children(client, context.flow_run.id))  # one request a count
    except Exception as exc:  # a view: the next count tries again
        log.warning("could not count the runs waiting for review: %s", exc)
        return 0


def resume_unanswered(client: SyncPrefectClient, run_id: UUID) -> bool:
    """Resume a waiting run without an answer (its deadline passed); False if it was not
    waiting any more (answered meanwhile, cancelled)."""
    from prefect.client.schemas.objects import StateType

    state = client.read_flow_run(run_id).state
    if state is None or state.type != StateType.PAUSED:
        return False
    outcome = client.resume_flow_run(run_id, run_input=None)
    return outcome.status.value == "ACCEPT"


def _wait(
    client: SyncPrefectClient, wait: ReviewWait, model: type[RunInput], poll_s: float
) -> _Answer | None:
    from prefect.exceptions import FlowPauseTimeout
    from prefect.states import Running

    key = f"review-{wait.attempt}"
    remaining = max(1, int((wait.deadline - datetime.now(UTC)).total_seconds()) + 1)
    if wait.suspended:
        backstop = remaining + BACKSTOP_S if wait.timeout == "fail" else None
        # The first time, this raises Prefect's Pause: the run ends here and comes back,
        # resumed, from the start; then Prefect sees this key fired and returns at once.
        adapter.suspend(model, key, backstop)
    else:
        timer = threading.Timer(remaining, _resume_at_deadline, (wait.run_id,))
        timer.daemon = True
        timer.start()
        try:
            adapter.wait_paused(model, key, remaining + BACKSTOP_S, poll_s,
                                partial(_stop_if_cancelled, client, wait.run_id))  # fmt: skip
        except FlowPauseTimeout:  # nobody resumed it, not even the timer: go on unanswered
            adapter.force_state(client, wait.run_id, Running())
        finally:
            timer.cancel()
    return _read_answer(client, wait.run_id, _keyset(wait.suspended, key), wait.cues)


def _stop_if_cancelled(client: SyncPrefectClient, run_id: UUID) -> None:
    """Raise :class:`RunCancelledError` when a paused run was cancelled (the UI's Cancel, a
    worker stopping it, SIGTERM): its wait ends, its work files are removed as on any cancel."""
    cancel.check()
    state = client.read_flow_run(run_id).state
    if state is None or state.is_cancelling() or state.is_final():
        what = state.name if state else "gone"
        raise RunCancelledError(f"run {run_id} was {what} while it waited for a review")


def _resume_at_deadline(run_id: UUID) -> None:
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            resume_unanswered(client, run_id)
    except Exception as exc:  # the pause's own timeout ends the wait a little later
        log.warning("could not end the review of run %s at its deadline: %s", run_id, exc)


def wait_for_review(
    cues: Sequence[ReviewCue],
    options: ReviewOptions,
    title: str,
    progress: RunProgress,
    poll_s: float = 2.0,
    kept: Mapping[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, str], ReviewRecord]:
    """Wait for a reviewer's answer on ``cues``; the new text of each cue they changed (by key)
    and the record of the review. ``kept``: the run's fallback chunks, kept with the wait
    (:func:`kept_chunks`). Must be called from the flow (not a task)."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext
    from prefect.logging import get_run_logger

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("a review waits in a flow run")
    run = context.flow_run
    suspended = run.deployment_id is not None and run.parent_task_run_id is None
    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        waits = read_waits(client, run.id)
        deadline = waits[0].deadline if waits else (
            datetime.now(UTC) + timedelta(seconds=options.review_timeout_s)
        )  # fmt: skip
        attempt, refused_reason = 1, ""
        while True:
            wait = next((w for w in waits if w.attempt == attempt), None)
            if wait is None:
                wait = ReviewWait(
                    run_id=run.id, title=title, attempt=attempt, deadline=deadline,
                    timeout=options.review_timeout, suspended=suspended, cues=tuple(cues),
                    refused=refused_reason, kept=dict(kept or {}),
                )  # fmt: skip
                _save_wait(client, wait)
                _announce(wait, progress, logger)
            note = f"The last answer was refused: {wait.refused}" if wait.refused else ""
            model = form_model(cues, review.markdown(cues, title, note))
            answer = _wait(client, wait, model, poll_s)
            if answer is None:
                if options.review_timeout == "fail":
                    raise ReviewTimedOutError(
                        f"nobody reviewed the {len(cues)} flagged cues of {title} within "
                        f"{options.review_timeout_s} s (review_timeout: fail)"
                    )
                logger.warning("review of %s not answered in time: automatic text kept", title)
                return {}, review.record(cues, {}, timed_out=True, refused=attempt - 1)
            try:
                changed = review.check_answer(cues, answer.texts)
            except ReviewRefusedError as exc:
                logger.warning("review answer %d refused: %s", attempt, exc)
                attempt, refused_reason = attempt + 1, str(exc)
                continue
            logger.info("review answered by %s: %d cues changed", answer.reviewer or "?",
                        len(changed))  # fmt: skip
            return changed, review.record(
                cues, changed, answer.reviewer, answer.at, refused=attempt - 1
            )


def kept_chunks() -> dict[str, dict[str, Any]]:
    """The fallback chunks the current run kept with its first review wait (none when it never
    waited): a run resumed after a review does not ask the model for them again."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return {}
    with get_client(sync_client=True) as client:
        waits = read_waits(client, context.flow_run.id)
    return dict(waits[0].kept) if waits else {}


def _announce(wait: ReviewWait, progress: RunProgress, logger: Any) -> None:
    """The cue list as the run's review artifact, the stage, a line in the log."""
    note = f"The last answer was refused: {wait.refused}" if wait.refused else ""
    then = "the automatic text is delivered" if wait.timeout == "deliver" else "the run fails"
    how = (
        f"Answer in the Prefect UI (the run's Resume button), with `mediaflows review "
        f"{wait.run_id} --edits FILE.json`, or `deployments.resume(...)` before "
        f"{wait.deadline:%Y-%m-%d %H:%M:%S} UTC; after that, {then}."
    )
    text = review.markdown(wait.cues, wait.title, "\n\n".join(p for p in (note, how) if p))
    try:
        adapter.create_markdown_artifact(text, f"awaiting review: {len(wait.cues)} cues",
                                         key=f"review-{wait.run_id}")  # fmt: skip
    except Exception as exc:  # a view: the form carries the same list
        log.warning("could not publish the review artifact: %s", exc)
    progress.awaiting_review(f"{len(wait.cues)} cues")
    for watcher in _watchers:
        try:
            watcher(wait)
        except Exception as exc:  # a view: never fail a run for it
            log.warning("review watcher: %s", exc)
    logger.info("awaiting review: %d cues (attempt %d, until %s)", len(wait.cues), wait.attempt,
                wait.deadline.isoformat(timespec="seconds"))  # fmt: skip


def expire_reviews(client: SyncPrefectClient, pool: str) -> list[UUID]:
    """Resume, without an answer, the suspended runs of ``pool`` whose review deadline passed
    (the workers' housekeeping); returns their ids."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        WorkPoolFilter,
        WorkPoolFilterName,
    )
    from prefect.client.schemas.objects import StateType

    paused = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
        ),
        work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
        limit=200,
    )
    ended = []
    for flow_run in paused:
        waits = read_waits(client, flow_run.id)
        expired = bool(waits) and waits[-1].suspended and waits[-1].expired
        if expired and resume_unanswered(client, flow_run.id):
            log.warning("run %s: review not answered by its deadline: resumed", flow_run.id)
            ended.append(flow_run.id)
    return ended
