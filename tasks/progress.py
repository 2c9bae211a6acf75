"""Run progress in the Prefect UI: one progress artifact per flow run, with the stage as its
description (``fetching``, ``probing``, ``converting 42%``, ``storing``, ``done``)."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
)
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import ArtifactUpdate
from prefect.context import SettingsContext

from mediaflows.models import BatchPlan, BatchResult, Cue, FixReport, QAReport, TimedCue

log = logging.getLogger(__name__)

#: The diff table shows at most this many changed cues (the counts cover all).
MAX_DIFF_ROWS = 1000


def start_progress(operation: str, subject: str) -> UUID | None:
    """Create the run's progress artifact at 0 % (``None`` if the server refused it)."""
    try:
        # _sync: also from an async flow's body, where Prefect would hand back a coroutine.
        return create_progress_artifact(
            progress=0.0, description=f"{operation} {subject}: queued", _sync=True
        )
    except Exception as exc:  # progress is a view: never fail a run for it
        log.warning("could not create progress artifact: %s", exc)
        return None


# Updates go out from background threads so that a run never waits on the UI. Per artifact they
# are coalesced and spaced (only the latest value is sent, at most one every MIN_INTERVAL_S, one
# at a time so they stay in order): many runs in one process (a batch) never queue behind each
# other's stale updates, and a short run costs the server a couple of writes, not one per stage.
MIN_INTERVAL_S = 0.5
_sender = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mediaflows-progress")
_idle = threading.Condition()
_pending: dict[UUID, tuple[SettingsContext, float, str]] = {}
_scheduled: set[UUID] = set()
_in_flight: set[UUID] = set()
_last_sent: dict[UUID, float] = {}


def _schedule(artifact_id: UUID) -> None:
    """Send this artifact's latest value when its interval allows (``_idle`` held)."""
    _scheduled.add(artifact_id)
    delay = _last_sent.get(artifact_id, 0.0) + MIN_INTERVAL_S - time.monotonic()
    if delay <= 0:
        _sender.submit(contextvars.Context().run, _drain, artifact_id)
    else:
        timer = threading.Timer(
            delay, _sender.submit, (contextvars.Context().run, _drain, artifact_id)
        )
        timer.daemon = True
        timer.start()


def _send_latest(artifact_id: UUID) -> None:
    """Send the pending value, if any (called with ``_idle`` released, after marking in flight)."""
    with _idle:
        item = _pending.pop(artifact_id, None)
    try:
        if item is not None:
            _send(item[0], artifact_id, item[1], item[2])
    finally:
        with _idle:
            _in_flight.discard(artifact_id)
            _last_sent[artifact_id] = time.monotonic()
            _idle.notify_all()


def _drain(artifact_id: UUID) -> None:
    with _idle:
        _scheduled.discard(artifact_id)
        _idle.wait_for(lambda: artifact_id not in _in_flight)
        _in_flight.add(artifact_id)
    _send_latest(artifact_id)
    with _idle:
        if artifact_id in _pending and artifact_id not in _scheduled:
            _schedule(artifact_id)  # arrived while this one was sent


_clients: dict[str, SyncPrefectClient] = {}


def _client(settings: SettingsContext) -> SyncPrefectClient:
    # A client of our own, kept for the process: the run's clients close when their task ends,
    # and a new client per update costs an SSL context.
    url = str(settings.settings.api.url)
    if url not in _clients:
        with SettingsContext(profile=settings.profile, settings=settings.settings):
            client = get_client(sync_client=True)
        client.__enter__()
        _clients[url] = client
    return _clients[url]


def _send(settings: SettingsContext, artifact_id: UUID, percent: float, stage: str) -> None:
    try:
        _client(settings).update_artifact(
            artifact_id=artifact_id,
            artifact=ArtifactUpdate(
                data=round(min(max(percent, 0.0), 100.0), 1), description=stage
            ),
        )
    except Exception as exc:  # progress is a view: never fail a run for it
        log.warning("could not update progress artifact: %s", exc)


def report_progress(
    artifact_id: UUID | None, percent: float, stage: str, wait: bool = False
) -> None:
    """Set the run's progress and stage (best effort, in the background unless ``wait``)."""
    if artifact_id is None:
        return
    # The sender thread must see the caller's Prefect settings (API URL), not the run's client.
    settings = SettingsContext.get()
    assert settings is not None
    with _idle:
        _pending[artifact_id] = (settings, percent, stage)
        if not wait:
            if artifact_id not in _scheduled and artifact_id not in _in_flight:
                _schedule(artifact_id)
            return
        _idle.wait_for(lambda: artifact_id not in _in_flight, timeout=30)
        _in_flight.add(artifact_id)
    _send_latest(artifact_id)  # now, from this thread: the run's last word is on the server
    with _idle:
        _last_sent.pop(artifact_id, None)


class StageProgress:
    """Maps a stage's own 0..1 fraction onto its slice of the run's 0..100 %, throttled."""

    def __init__(
        self, artifact_id: UUID | None, stage: str, start: float, end: float, every_s: float = 1.0
    ) -> None:
        self.artifact_id = artifact_id
        self.stage = stage
        self.start = start
        self.end = end
        self.every_s = every_s
        self._last = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < self.every_s:
            return
        self._last = now
        percent = self.start + (self.end - self.start) * fraction
        report_progress(self.artifact_id, percent, f"{self.stage} {fraction:.0%}")


def publish_qa_report(qa: QAReport, title: str) -> None:
    """The subtitle QA report as a table artifact on the run (best effort)."""
    rows = [
        {
            "rule": rule,
            "cues breaking it": count,
            "examples": ", ".join(map(str, qa.examples.get(rule, []))),
        }
        for rule, count in qa.violations.items()
    ]
    rows.append({"rule": "total cues", "cues breaking it": qa.cues, "examples": ""})
    rows.append(
        {
            "rule": "reading speed (cps)",
            "cues breaking it": f"mean {qa.mean_cps}, max {qa.max_cps}",
            "examples": "",
        }
    )
    try:
        create_table_artifact(table=rows, description=f"Subtitle QA: {title}", _sync=True)
    except Exception as exc:
        log.warning("could not create QA artifact: %s", exc)


def publish_batch_plan(operation: str, profile: str, plan: BatchPlan) -> None:
    """The pre-flight summary of a batch as a table artifact (best effort)."""
    estimate = f"{plan.estimated_s:.0f} s" if plan.estimated_s is not None else "unknown"
    rows = [
        {"item": "files", "value": plan.files},
        {"item": "known media duration", "value": f"{plan.known_duration_s:.1f} s"},
        {"item": "files of unknown duration", "value": plan.unknown_duration},
        {"item": "total size", "value": f"{plan.total_bytes / 1e6:.1f} MB"},
        {"item": "estimated time (last measured speed)", "value": estimate},
    ]
    try:
        create_table_artifact(
            table=rows, key="batch-plan", description=f"{operation} {profile}: plan", _sync=True
        )
    except Exception as exc:
        log.warning("could not create batch plan artifact: %s", exc)


def publish_batch_result(result: BatchResult, ui_url: str | None) -> None:
    """Every child of a batch, linked to its run, as a markdown table (best effort)."""
    lines = [
        f"**{result.operation}** on `{result.profile}`: {result.succeeded} of {result.total} "
        f"succeeded ({result.cached} cached), {result.failed} failed",
        "",
        "| file | status | run | output / error |",
        "| --- | --- | --- | --- |",
    ]
    for child in result.children:
        run = "—"
        if child.run_id:
            run = (
                f"[{child.run_id[:8]}]({ui_url}/runs/flow-run/{child.run_id})"
                if ui_url
                else child.run_id[:8]
            )
        detail = child.output_id or (child.error or "").replace("|", "/").replace("\n", " ")[:200]
        lines.append(f"| `{child.file_id}` | {child.status} | {run} | {detail} |")
    try:
        create_markdown_artifact(
            markdown="\n".join(lines), key="batch-result", description="batch children", _sync=True
        )
    except Exception as exc:
        log.warning("could not create batch result artifact: %s", exc)


def _timecode(ms: int) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return f"{h:02d}:{m:02d}:{rest / 1000:06.3f}"


def publish_fix_report(
    before: Sequence[TimedCue], after: Sequence[Cue], report: FixReport, title: str
) -> None:
    """fix_srt's diff (a table of the changed cues, before / after) and its counts, as
    artifacts on the run (best effort)."""
    rows = [
        {"cue": b.id, "start": _timecode(b.start_ms), "before": b.text, "after": a.text}
        for b, a in zip(before, after, strict=True)
        if b.text != a.text
    ][:MAX_DIFF_ROWS]
    counts = (
        f"{report.changed} changed, {report.kept} kept of {report.cues} cues; "
        f"{len(report.fallback_chunks)} of {report.chunks} chunks kept their text; "
        f"{len(report.rejected_cues)} answers refused as rewrites; "
        f"tokens: {report.prompt_tokens} prompt, {report.completion_tokens} completion"
    )
    lines = [
        f"### fix_srt: {title}",
        "",
        "| count | value |",
        "| --- | --- |",
        f"| model | `{report.model}` |",
        f"| source encoding | `{report.encoding}` |",
        f"| cues | {report.cues} |",
        f"| changed | {report.changed} |",
        f"| kept | {report.kept} |",
        f"| chunks | {report.chunks} |",
        f"| fallback chunks | {len(report.fallback_chunks)} "
        f"{list(report.fallback_chunks)[:20] if report.fallback_chunks else ''} |",
        f"| refused rewrites (cues) | {len(report.rejected_cues)} |",
        f"| prompt tokens | {report.prompt_tokens} |",
        f"| completion tokens | {report.completion_tokens} |",
    ]
    try:
        create_table_artifact(
            table=rows or [{"cue": "", "start": "", "before": "(no change)", "after": ""}],
            description=f"fix_srt diff: {title} — {counts}",
            _sync=True,
        )
        create_markdown_artifact(
            markdown="\n".join(lines), description=f"fix_srt counts: {title}", _sync=True
        )
    except Exception as exc:
        log.warning("could not create fix_srt artifacts: %s", exc)
