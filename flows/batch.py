"""Batch flows: one child flow run per file, a bounded number in flight.

``in-process`` children are subflows of the batch, run by the batch's own worker; ``distributed``
children are runs of the operation's deployment, linked to the batch and picked up by any worker
of its pool. The Prefect server's ``gpu`` (and ``llm``) limits bound the heavy tasks across all of
them; the in-flight bound keeps the server from being flooded. A failed child never stops the
others; the batch ends Failed, naming the files, when any failed. Children whose output exists
already return it without work, so a re-run redoes only what failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prefect import Flow, flow
from prefect.client.schemas.objects import State
from prefect.settings import PREFECT_UI_URL
from prefect.states import Failed
from pydantic import BaseModel

from flows.convert import convert
from flows.fix_srt import fix_srt
from flows.generate_srt import generate_srt
from flows.transcribe import transcribe
from mediaflows import batches
from mediaflows.ids import FileId, ProfileName
from mediaflows.models import (
    BatchChild,
    BatchResult,
    ConvertRequest,
    FanOut,
    FixSrtRequest,
    GenerateSrtRequest,
    ProfileFile,
    TranscribeRequest,
)
from mediaflows.outputs import INPUT_KINDS
from mediaflows.settings import get_settings
from tasks.progress import (
    publish_batch_plan,
    publish_batch_result,
    report_progress,
    start_progress,
)
from tasks.store import list_profile_media, lookup_batch_files


def _output_id(result: Any) -> str | None:
    return getattr(result, "file_id", None) or getattr(result, "transcript_id", None)


async def _outcome(file_id: str, state: State[Any], attempts: int = 1) -> BatchChild:
    run_id = str(state.state_details.flow_run_id) if state.state_details.flow_run_id else None
    if state.is_completed():
        result = await state.aresult()
        return BatchChild(
            file_id=file_id,
            status="cached" if getattr(result, "cached", False) else "completed",
            run_id=run_id,
            output_id=_output_id(result),
            attempts=attempts,
        )
    return BatchChild(
        file_id=file_id,
        status="failed",
        run_id=run_id,
        error=state.message or state.type.value,
        attempts=attempts,
    )


#: Starts one file's child run and waits for it: its final state and how many runs it took.
StartChild = Callable[[str], Awaitable[tuple[State[Any], int]]]


def _in_process(child: Flow[..., Any], profile: str, request: BaseModel) -> StartChild:
    async def run(file_id: str) -> tuple[State[Any], int]:
        state: State[Any] = await child(
            profile=profile, file_id=file_id, request=request, return_state=True
        )
        return state, 1

    return run


def _distributed(
    child: Flow[..., Any], profile: str, request: BaseModel, resubmits: int
) -> StartChild:
    from prefect.deployments import arun_deployment
    from prefect.logging import get_run_logger

    async def run(file_id: str) -> tuple[State[Any], int]:
        attempts = 0
        while True:
            attempts += 1
            flow_run = await arun_deployment(
                name=f"{child.name}/{child.name}",
                parameters={
                    "profile": profile,
                    "file_id": file_id,
                    "request": request.model_dump(mode="json"),
                },
                as_subflow=True,
                poll_interval=1,
            )
            assert flow_run.state is not None
            # Crashed: its worker died (or was killed) under it. The file's output is written
            # once, atomically, under an id fixed by input and options: running it again can
            # only finish what the dead run left, never write a second output.
            if not flow_run.state.is_crashed() or attempts > resubmits:
                return flow_run.state, attempts
            get_run_logger().warning(
                "%s: child run %s Crashed (%s); submitting it again (%d of %d)",
                file_id, flow_run.id, flow_run.state.message, attempts, resubmits,
            )  # fmt: skip

    return run


async def run_batch(
    operation: str,
    child: Flow[..., Any],
    profile: str,
    file_ids: list[str],
    request: BaseModel,
    mode: FanOut,
    in_flight: int | None,
    all_in_profile: bool = False,
) -> BatchResult | State[Any]:
    """Run ``child`` once per file, at most ``in_flight`` at a time; the batch's outcome."""
    settings = get_settings()
    started = time.perf_counter()
    ids = list(dict.fromkeys(file_ids))  # each file once, in the order given
    if all_in_profile:
        kinds = INPUT_KINDS[operation]  # type: ignore[index]
        listed = await asyncio.to_thread(list_profile_media, profile, kinds)
        ids += [i for i in listed if i not in set(ids)]
    found = await asyncio.to_thread(lookup_batch_files, profile, ids)
    files = [f for f in found.values() if isinstance(f, ProfileFile)]
    speed = batches.measured_speed(settings.home, operation)
    publish_batch_plan(operation, profile, batches.plan(files, speed))
    progress = start_progress(f"batch_{operation}", f"{profile} ({len(ids)} files)")

    start_child = (
        _in_process(child, profile, request)
        if mode == "in-process"
        else _distributed(child, profile, request, settings.batch_resubmits)
    )
    slots = asyncio.Semaphore(in_flight or settings.batch_in_flight)
    done = 0

    async def one(file_id: str) -> BatchChild:
        nonlocal done
        looked_up = found[file_id]
        if isinstance(looked_up, str):  # no such file: nothing to run
            outcome = BatchChild(file_id=file_id, status="failed", error=looked_up)
        else:
            async with slots:
                state, attempts = await start_child(file_id)
            outcome = await _outcome(file_id, state, attempts)
        done += 1
        report_progress(progress, 100 * done / max(len(ids), 1), f"{done}/{len(ids)} files")
        return outcome

    children = await asyncio.gather(*(one(file_id) for file_id in ids))
    result = batches.summarize(operation, profile, children)
    by_id = {f.id: f for f in files}
    media_s = sum(
        batches.file_duration(by_id[c.file_id]) or 0.0 for c in children if c.status == "completed"
    )
    batches.record_speed(settings.home, operation, media_s, time.perf_counter() - started)
    publish_batch_result(result, PREFECT_UI_URL.value())
    report_progress(progress, 100, f"done ({result.succeeded}/{result.total})", wait=True)
    if result.failed:
        return Failed(message=batches.failure_message(result), data=result)
    return result


@flow(name="batch_convert", validate_parameters=True, persist_result=True)
async def batch_convert(
    profile: ProfileName,
    file_ids: list[FileId],
    request: ConvertRequest | None = None,
    mode: FanOut = "in-process",
    in_flight: int | None = None,
    all_in_profile: bool = False,
) -> BatchResult:
    """``convert`` for many files: one child run per file (see the module's doc)."""
    result: Any = await run_batch(
        "convert",
        convert,
        profile,
        file_ids,
        request or ConvertRequest(),
        mode,
        in_flight,
        all_in_profile,
    )
    return result  # type: ignore[no-any-return]


@flow(name="batch_transcribe", validate_parameters=True, persist_result=True)
async def batch_transcribe(
    profile: ProfileName,
    file_ids: list[FileId],
    request: TranscribeRequest | None = None,
    mode: FanOut = "in-process",
    in_flight: int | None = None,
    all_in_profile: bool = False,
) -> BatchResult:
    """``transcribe`` for many files: one child run per file (see the module's doc)."""
    result: Any = await run_batch(
        "transcribe",
        transcribe,
        profile,
        file_ids,
        request or TranscribeRequest(),
        mode,
        in_flight,
        all_in_profile,
    )
    return result  # type: ignore[no-any-return]


@flow(name="batch_generate_srt", validate_parameters=True, persist_result=True)
async def batch_generate_srt(
    profile: ProfileName,
    file_ids: list[FileId],
    request: GenerateSrtRequest | None = None,
    mode: FanOut = "in-process",
    in_flight: int | None = None,
    all_in_profile: bool = False,
) -> BatchResult:
    """``generate_srt`` for many files: one child run per file (see the module's doc)."""
    result: Any = await run_batch(
        "generate_srt",
        generate_srt,
        profile,
        file_ids,
        request or GenerateSrtRequest(),
        mode,
        in_flight,
        all_in_profile,
    )
    return result  # type: ignore[no-any-return]


@flow(name="batch_fix_srt", validate_parameters=True, persist_result=True)
async def batch_fix_srt(
    profile: ProfileName,
    file_ids: list[FileId],
    request: FixSrtRequest | None = None,
    mode: FanOut = "in-process",
    in_flight: int | None = None,
    all_in_profile: bool = False,
) -> BatchResult:
    """``fix_srt`` for many SRT files: one child run per file; the ``llm`` limit bounds the
    LLM requests of all children together (see the module's doc)."""
    result: Any = await run_batch(
        "fix_srt",
        fix_srt,
        profile,
        file_ids,
        request or FixSrtRequest(),
        mode,
        in_flight,
        all_in_profile,
    )
    return result  # type: ignore[no-any-return]
