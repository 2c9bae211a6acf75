"""The ``sweep`` flow: run on a schedule, it brings a profile up to date: imports a watch folder,
finds the inputs without the requested output and runs the matching batch on them, and removes
outputs past the retention period."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import flow

from flows.batch import BATCHES
from mediaflows.ids import ProfileName
from mediaflows.models import BatchResult, FanOut, SweepResult
from mediaflows.operations import OperationName, get_operation
from mediaflows.stages import Stage
from tasks import prefect_adapter as adapter
from tasks.progress import RunProgress
from tasks.store import (
    find_pending_inputs,
    import_watch_folder,
    remove_expired_outputs,
    remove_stale_workspaces,
)


@flow(name="sweep", validate_parameters=True, persist_result=True)
async def sweep(
    profile: ProfileName,
    operation: OperationName,
    request: dict[str, Any] | None = None,
    watch_folder: str | None = None,
    mode: FanOut = "in-process",
    in_flight: int | None = None,
) -> SweepResult:
    """Bring ``profile`` up to date for ``operation``: import the new files of ``watch_folder``
    (if given), run the ``batch_<operation>`` flow on every input whose output is not stored
    yet, and remove outputs older than ``MEDIAFLOWS_STORE__OUTPUT_RETENTION_S`` (if set).

    Safe to schedule every few minutes: outputs have deterministic ids, so an input done before
    is not pending; nothing pending starts no batch. ``request`` holds the options of the
    operation's request model (e.g. ``{"rules": {"max_line_chars": 37}}`` for generate_srt);
    outputs made with other options do not count.
    """
    options = get_operation(operation).parse_request(request)
    progress = await asyncio.to_thread(RunProgress.start, f"sweep {profile} ({operation})")
    progress.stage(Stage.PREPARING, "removing expired outputs")
    removed = await asyncio.to_thread(remove_expired_outputs, profile)
    await asyncio.to_thread(remove_stale_workspaces)
    imported: list[str] = []
    if watch_folder:
        progress.stage(Stage.UPLOAD_RECEIVED, "importing")
        imported = await asyncio.to_thread(
            import_watch_folder, profile, Path(watch_folder), operation
        )
    progress.stage(Stage.PREPARING, "scanning", 0.5)
    pending = await asyncio.to_thread(find_pending_inputs, profile, operation, options)
    batch: BatchResult | None = None
    if pending:
        progress.stage(Stage.PROCESSING, f"{len(pending)} files")
        state = await adapter.state_of(
            BATCHES[operation],
            profile=profile,
            file_ids=pending,
            request=options,
            mode=mode,
            in_flight=in_flight,
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
    if pending and (batch is None or batch.failed):
        await asyncio.to_thread(progress.failed, "the batch failed for some files")
        return adapter.failed_with(f"sweep of {profile}: the batch failed for some files", result)
    summary = f"{len(pending)} new, {len(removed)} removed"
    await asyncio.to_thread(progress.succeeded, summary)
    return result
