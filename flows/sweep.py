"""The ``sweep`` flow: run on a schedule, it brings a profile up to date: imports a watch folder,
finds the inputs without the requested output and runs the matching batch on them, and removes
outputs past the retention period."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import Flow, flow
from prefect.states import Failed

from flows.batch import batch_convert, batch_fix_srt, batch_generate_srt, batch_transcribe
from mediaflows.ids import ProfileName
from mediaflows.models import BatchResult, FanOut, SweepResult
from mediaflows.outputs import REQUEST_MODELS, Operation
from tasks.progress import report_progress, start_progress
from tasks.store import (
    find_pending_inputs,
    import_watch_folder,
    remove_expired_outputs,
    remove_stale_workspaces,
)

BATCHES: dict[Operation, Flow[..., Any]] = {
    "convert": batch_convert,
    "transcribe": batch_transcribe,
    "generate_srt": batch_generate_srt,
    "fix_srt": batch_fix_srt,
}


@flow(name="sweep", validate_parameters=True, persist_result=True)
async def sweep(
    profile: ProfileName,
    operation: Operation,
    request: dict[str, Any] | None = None,
    watch_folder: str | None = None,
    mode: FanOut = "in-process",
    in_flight: int | None = None,
) -> SweepResult:
    """Bring ``profile`` up to date for ``operation``: import the new files of ``watch_folder``
    (if given), run the ``batch_<operation>`` flow on every input whose output is not stored
    yet, and remove outputs older than ``MEDIAFLOWS_OUTPUT_RETENTION_S`` (if set).

    Safe to schedule every few minutes: outputs have deterministic ids, so an input done before
    is not pending; nothing pending starts no batch. ``request`` holds the options of the
    operation's request model (e.g. ``{"rules": {"max_line_chars": 37}}`` for generate_srt);
    outputs made with other options do not count.
    """
    options = REQUEST_MODELS[operation].model_validate(request or {})
    progress = start_progress("sweep", f"{profile} ({operation})")
    report_progress(progress, 1, "preparing")
    removed = await asyncio.to_thread(remove_expired_outputs, profile)
    await asyncio.to_thread(remove_stale_workspaces)
    imported: list[str] = []
    if watch_folder:
        report_progress(progress, 5, "importing")
        imported = await asyncio.to_thread(
            import_watch_folder, profile, Path(watch_folder), operation
        )
    report_progress(progress, 10, "scanning")
    pending = await asyncio.to_thread(find_pending_inputs, profile, operation, options)
    batch: BatchResult | None = None
    if pending:
        report_progress(progress, 15, f"processing {len(pending)} files")
        state = await BATCHES[operation](
            profile=profile,
            file_ids=pending,
            request=options,
            mode=mode,
            in_flight=in_flight,
            return_state=True,
        )
        value = await state.aresult(raise_on_failure=False)
        batch = value if isinstance(value, BatchResult) else None
    result = SweepResult(
        profile=profile,
        operation=operation,
        imported=tuple(imported),
        pending=tuple(pending),
        batch=batch,
        removed=tuple(removed),
    )
    report_progress(progress, 100, f"done ({len(pending)} new, {len(removed)} removed)", wait=True)
    if pending and (batch is None or batch.failed):
        return Failed(  # type: ignore[return-value]
            message=f"sweep of {profile}: the batch failed for some files", data=result
        )
    return result
