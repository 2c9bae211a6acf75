"""What a run shows in the Prefect UI besides its state: its progress artifact (the stage and a
detail as description, the percent as value: see :mod:`mediaflows.stages`), and the tables and
reports it publishes. All of it is a view: a server that refuses an artifact never fails a run.
"""

from __future__ import annotations

import base64
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from mediaflows.batches import BatchPlan
from mediaflows.models import BatchResult, FixReport, QAReport, TranslationRef
from mediaflows.stages import Stage, describe
from mediaflows.subtitles import TimedCue
from tasks import prefect_adapter as adapter

if TYPE_CHECKING:
    from prefect.context import SettingsContext

log = logging.getLogger(__name__)

#: The diff table shows at most this many changed cues (the counts cover all).
MAX_DIFF_ROWS = 1000


# Updates go out from background threads so that a run never waits on the UI. Per artifact they
# are coalesced and spaced (only the latest value is sent, at most one every MIN_INTERVAL_S after
# the artifact's creation, one at a time so they stay in order): many runs in one process (a
# batch) never queue behind each other's stale updates, and a run of a second or two costs the
# server its creation and its last word, not one write per stage (measured: an in-process batch
# child made 5 updates at 0.5 s; every write is server CPU taken from the model on a small host).
MIN_INTERVAL_S = 1.0
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


def _send(settings: SettingsContext, artifact_id: UUID, percent: float, stage: str) -> None:
    try:
        adapter.update_artifact(
            settings, artifact_id, round(min(max(percent, 0.0), 100.0), 1), stage
        )
    except Exception as exc:  # progress is a view: never fail a run for it
        log.warning("could not update progress artifact: %s", exc)


#: Called with (percent, description) on every progress update of this process's runs (the
#: terminal's progress bar of ``mediaflows run``); a watcher that raises is dropped.
_watchers: list[Callable[[float, str], None]] = []


def watch(watcher: Callable[[float, str], None]) -> None:
    """Call ``watcher(percent, description)`` on every progress update of this process."""
    _watchers.append(watcher)


def _report(artifact_id: UUID, percent: float, description: str, wait: bool = False) -> None:
    """Set an artifact's percent and description (in the background unless ``wait``)."""
    for watcher in list(_watchers):
        try:
            watcher(percent, description)
        except Exception:  # a view: never fail a run for it
            _watchers.remove(watcher)
    # The sender thread must see the caller's Prefect settings (API URL), not the process's.
    settings = adapter.current_settings()
    with _idle:
        _pending[artifact_id] = (settings, percent, description)
        _latest[artifact_id] = percent
        if not wait:
            if artifact_id not in _scheduled and artifact_id not in _in_flight:
                _schedule(artifact_id)
            return
        _idle.wait_for(lambda: artifact_id not in _in_flight, timeout=30)
        _in_flight.add(artifact_id)
    _send_latest(artifact_id)  # now, from this thread: the run's last word is on the server
    with _idle:
        _last_sent.pop(artifact_id, None)
        _latest.pop(artifact_id, None)


_latest: dict[UUID, float] = {}


@dataclass(frozen=True)
class RunProgress:
    """One run's progress artifact. Created at 0 % ``queued``; each :meth:`stage` call moves it
    to the start of a stage's span (or ``fraction`` into it); :meth:`succeeded` and
    :meth:`failed` are the run's last word and wait until the server has it.

    ``stages``: the only stages the run may report (its operation's declaration); another one is
    a bug in the flow, refused with :class:`ValueError`. None: any stage (batches, the sweep)."""

    artifact_id: UUID | None
    stages: frozenset[Stage] | None = None

    @classmethod
    def start(cls, title: str, stages: Iterable[Stage] | None = None) -> RunProgress:
        """Create the run's progress artifact (no artifact if the server refused it)."""
        declared = frozenset(stages) if stages is not None else None
        try:
            artifact_id = adapter.create_progress_artifact(0.0, describe(Stage.QUEUED, title))
        except Exception as exc:  # progress is a view: never fail a run for it
            log.warning("could not create progress artifact: %s", exc)
            return cls(None, declared)
        with _idle:
            _last_sent[artifact_id] = time.monotonic()  # the creation was a write: space the next
        return cls(artifact_id, declared)

    def stage(self, stage: Stage, detail: str = "", fraction: float = 0.0) -> None:
        """The run is at ``stage``, ``fraction`` (0..1) of it done; ``detail`` says what."""
        if self.stages is not None and stage not in self.stages:
            declared = ", ".join(s.value for s in Stage if s in self.stages)
            raise ValueError(f"stage {stage.value!r} is not declared for this run ({declared})")
        if self.artifact_id is not None:
            _report(self.artifact_id, stage.percent(fraction), describe(stage, detail))

    def tracker(self, stage: Stage, label: str, every_s: float = 1.0) -> Callable[[float], None]:
        """A callback for a long step of ``stage``: called with its own 0..1 fraction, it shows
        ``"<label> 42%"`` at most every ``every_s`` seconds (and always at 100 %)."""
        last = [0.0]

        def report(fraction: float) -> None:
            now = time.monotonic()
            if fraction < 1.0 and now - last[0] < every_s:
                return
            last[0] = now
            self.stage(stage, f"{label} {fraction:.0%}", fraction)

        return report

    def awaiting_review(self, detail: str) -> None:
        """The run waits for a reviewer: sent at once (a suspended run's process ends next)."""
        stage = Stage.AWAITING_REVIEW
        if self.stages is not None and stage not in self.stages:
            raise ValueError(f"stage {stage.value!r} is not declared for this run")
        if self.artifact_id is not None:
            _report(self.artifact_id, stage.percent(), describe(stage, detail), wait=True)

    def succeeded(self, detail: str) -> None:
        if self.artifact_id is not None:
            _report(self.artifact_id, 100.0, describe(Stage.SUCCEEDED, detail), wait=True)

    def failed(self, detail: str) -> None:
        if self.artifact_id is not None:
            percent = _latest.get(self.artifact_id, 0.0)
            first_line = detail.strip().splitlines()[0][:300] if detail.strip() else "failed"
            _report(self.artifact_id, percent, describe(Stage.FAILED, first_line), wait=True)


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
        adapter.create_table_artifact(rows, description=f"Subtitle QA: {title}")
    except Exception as exc:
        log.warning("could not create QA artifact: %s", exc)


def publish_batch_plan(operation: str, profile: str, plan: BatchPlan) -> None:
    """The pre-flight summary of a batch as a table artifact (best effort)."""
    estimate = f"{plan.estimated_s:.0f} s" if plan.estimated_s is not None else "unknown"
    rows: list[dict[str, Any]] = [
        {"item": "files", "value": plan.files},
        {"item": "known media duration", "value": f"{plan.known_duration_s:.1f} s"},
        {"item": "files of unknown duration", "value": plan.unknown_duration},
        {"item": "total size", "value": f"{plan.total_bytes / 1e6:.1f} MB"},
        {"item": "estimated time (last measured speed)", "value": estimate},
    ]
    try:
        adapter.create_table_artifact(
            rows, key="batch-plan", description=f"{operation} {profile}: plan"
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
        adapter.create_markdown_artifact(
            "\n".join(lines), key="batch-result", description="batch children"
        )
    except Exception as exc:
        log.warning("could not create batch result artifact: %s", exc)


def _timecode(ms: int) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return f"{h:02d}:{m:02d}:{rest / 1000:06.3f}"


def publish_fix_report(
    before: Sequence[TimedCue], after: Sequence[TimedCue], report: FixReport, title: str
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
        f"{len(report.rejected_cues)} cue answers refused; "
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
        f"| refused answers (cues) | {len(report.rejected_cues)} |",
        f"| retried requests | {report.retries} |",
        f"| output mode | `{report.response_format or '-'}` |",
        f"| prompt tokens | {report.prompt_tokens} |",
        f"| completion tokens | {report.completion_tokens} |",
    ]
    if report.problems:
        lines += ["", "#### Refused answers and fallbacks", ""]
        lines += [f"- {p.replace('|', '/')}" for p in report.problems[:200]]
    try:
        adapter.create_table_artifact(
            rows or [{"cue": "", "start": "", "before": "(no change)", "after": ""}],
            description=f"fix_srt diff: {title} — {counts}",
        )
        adapter.create_markdown_artifact("\n".join(lines), description=f"fix_srt counts: {title}")
    except Exception as exc:
        log.warning("could not create fix_srt artifacts: %s", exc)


def publish_translation_report(refs: Sequence[TranslationRef], title: str) -> None:
    """translate_srt's outcome per language (cues translated, left untranslated, read too fast
    for the language's limit, before and after condensing, line rules broken) as a markdown
    artifact (best effort)."""
    lines = [
        f"### translate_srt: {title}",
        "",
        "| language | cues | translated | untranslated | too fast to read | too fast before "
        "condensing | characters over budget (before → after) | line rules broken "
        "| retries | tokens (prompt / completion) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    problems: list[str] = []
    for ref in refs:
        report, qa = ref.report, ref.qa
        broken = qa.violations.get("line_length", 0) + qa.violations.get("line_count", 0)
        if report is None:  # Whisper's own translation
            fast = qa.violations.get("reading_speed", 0)
            lines.append(
                f"| {ref.language} | {qa.cues} | (Whisper) | - | {fast} | - | - | {broken} | - "
                "| - |"
            )
            continue
        lines.append(
            f"| {ref.language} | {report.cues} | {report.translated} | "
            f"{len(report.untranslated)} {list(report.untranslated)[:10] or ''} | "
            f"{len(report.too_fast)} {list(report.too_fast)[:10] or ''} | "
            f"{report.reading.share_too_fast_before:.0%} → {report.reading.share_too_fast:.0%} | "
            f"{report.reading.chars_over_budget_before} → {report.reading.chars_over_budget} | "
            f"{broken} | {report.retries} | {report.prompt_tokens} / {report.completion_tokens} |"
        )
        problems += [f"- {ref.language}, {p.replace('|', '/')}" for p in report.problems[:100]]
    if problems:
        lines += ["", "#### Refused answers, untranslated cues, glossary misses", "", *problems]
    try:
        adapter.create_markdown_artifact("\n".join(lines), description=f"translations: {title}")
    except Exception as exc:
        log.warning("could not create the translation artifact: %s", exc)


def publish_preview(jpeg: bytes, title: str, languages: Sequence[str]) -> None:
    """A frame of the packaged video with each language's cue drawn, as an image artifact the
    UI shows (best effort). The image travels inside its URL (``data:``): it needs no store
    the reviewer's browser can reach, and no presigned URL that expires."""
    url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
    try:
        adapter.create_image_artifact(
            url, description=f"package: {title}, subtitles {', '.join(languages)}"
        )
    except Exception as exc:
        log.warning("could not create the preview artifact: %s", exc)
