"""Batch flows: ``batch_<operation>`` for every operation, one child flow run per file, a bounded
number in flight.

``in-process`` children are subflows of the batch, run by the batch's own worker; ``distributed``
children are runs of the operation's deployment, linked to the batch and picked up by any worker
of its pool. The Prefect server's ``gpu`` (and ``llm``) limits bound the heavy tasks across all of
them; the in-flight bound keeps the server from being flooded. A failed child never stops the
others; the batch ends Failed, naming the files, when any failed. Children whose output exists
already return it without work, so a re-run redoes only what failed.

Each batch flow is made here from its operation's flow (one body, one typed ``request``
parameter per operation, so the UI's run form shows the operation's fields): a new operation
is one line in each table at the end of this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from prefect import Flow, flow
from prefect.client.schemas.objects import State
from prefect.settings import PREFECT_UI_URL
from pydantic import BaseModel

from flows._operation import OperationFlow
from flows.convert import convert
from flows.fix_srt import fix_srt
from flows.generate_srt import generate_srt
from flows.package import package
from flows.transcribe import transcribe
from flows.translate_srt import translate_srt
from mediaflows import batches
from mediaflows.ids import FileId, ProfileName
from mediaflows.models import BatchChild, BatchResult, FanOut, OperationResult, ProfileFile
from mediaflows.operations import OperationSpec, get_operation
from mediaflows.settings import get_settings
from mediaflows.stages import Stage
from tasks import prefect_adapter as adapter
from tasks.progress import RunProgress, publish_batch_plan, publish_batch_result
from tasks.review import count_waiting_children
from tasks.store import list_profile_media, lookup_batch_files


async def _outcome(file_id: str, state: State[Any], attempts: int = 1) -> BatchChild:
    run_id = str(state.state_details.flow_run_id) if state.state_details.flow_run_id else None
    if state.is_completed():
        result = await state.aresult()
        assert isinstance(result, OperationResult)
        return BatchChild(
            file_id=file_id,
            status="cached" if result.cached else "completed",
            run_id=run_id,
            output_id=result.output_id,
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


def _in_process(child: OperationFlow[Any], profile: str, request: BaseModel) -> StartChild:
    async def run(file_id: str) -> tuple[State[Any], int]:
        state = await adapter.state_of(child, profile=profile, file_id=file_id, request=request)
        return state, 1

    return run


def _distributed(name: str, profile: str, request: BaseModel, resubmits: int) -> StartChild:
    from prefect.deployments import arun_deployment
    from prefect.logging import get_run_logger
    from prefect.runtime import deployment

    # The batch's own deployment names its children's: a batch on the docker pool
    # (batch_generate_srt/docker) keeps them there (generate_srt/docker).
    own = deployment.name
    target = f"{name}/{own}" if own and own != f"batch_{name}" else f"{name}/{name}"

    async def run(file_id: str) -> tuple[State[Any], int]:
        attempts = 0
        while True:
            attempts += 1
            flow_run = await arun_deployment(
                name=target,
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


class _Tally:
    """A batch's progress line: the files done, and the children waiting for a reviewer (each
    waits alone: the others go on)."""

    def __init__(self, progress: RunProgress, total: int, every_s: float) -> None:
        self.progress, self.total, self.every_s = progress, total, every_s
        self.done = self.waiting = 0

    def show(self) -> None:
        reviews = f", {self.waiting} awaiting review" if self.waiting else ""
        self.progress.stage(Stage.PROCESSING, f"{self.done}/{self.total} files{reviews}",
                            self.done / max(self.total, 1))  # fmt: skip

    async def _count(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            now = await asyncio.to_thread(count_waiting_children)
            if now != self.waiting:
                self.waiting = now
                self.show()

    @contextlib.asynccontextmanager
    async def counting_reviews(self, reviewed: bool) -> AsyncIterator[None]:
        """Count the waiting children while the block runs (when the request has a review)."""
        counting = asyncio.create_task(self._count()) if reviewed else None
        try:
            yield
        finally:
            if counting is not None:
                counting.cancel()


async def run_batch(
    spec: OperationSpec[Any, Any, Any, Any],
    child: OperationFlow[Any],
    profile: str,
    file_ids: list[str],
    request: BaseModel,
    mode: FanOut,
    in_flight: int | None,
    all_in_profile: bool = False,
) -> BatchResult:
    """Run the operation once per file, at most ``in_flight`` at a time; the batch's outcome
    (the run ends Failed, with it as its result, when any child failed)."""
    settings = get_settings()
    started = time.perf_counter()
    listed = (
        await asyncio.to_thread(list_profile_media, profile, spec.input_kinds)
        if all_in_profile
        else []
    )
    ids = batches.batch_ids(file_ids, listed)
    found = await asyncio.to_thread(lookup_batch_files, profile, ids)
    files = [f for f in found.values() if isinstance(f, ProfileFile)]
    publish_batch_plan(spec.name, profile, batches.plan(files, settings.home, spec.name))
    progress = await asyncio.to_thread(
        RunProgress.start, f"{spec.batch_name} {profile} ({len(ids)} files)"
    )

    start_child = (
        _in_process(child, profile, request)
        if mode == "in-process"
        else _distributed(spec.name, profile, request, settings.orchestration.batch_resubmits)
    )
    slots = asyncio.Semaphore(in_flight or settings.orchestration.batch_in_flight)
    # Children waiting for a reviewer are counted as often as a paused run looks for its answer.
    tally = _Tally(progress, len(ids), max(0.5, settings.orchestration.review_poll_s))

    async def one(file_id: str) -> BatchChild:
        looked_up = found[file_id]
        if isinstance(looked_up, str):  # no such file: nothing to run
            outcome = BatchChild(file_id=file_id, status="failed", error=looked_up)
        else:
            async with slots:
                state, attempts = await start_child(file_id)
            outcome = await _outcome(file_id, state, attempts)
        tally.done += 1
        tally.show()
        return outcome

    async with tally.counting_reviews(getattr(request, "review", "never") != "never"):
        children = await asyncio.gather(*(one(file_id) for file_id in ids))
    result = batches.summarize(spec.name, profile, children)
    batches.record_speed(settings.home, spec.name, files, children, time.perf_counter() - started)
    publish_batch_result(result, PREFECT_UI_URL.value())
    summary = f"{result.succeeded}/{result.total} files"
    if result.failed:
        await asyncio.to_thread(progress.failed, f"{result.failed} of {result.total} files failed")
        return adapter.failed_with(batches.failure_message(result), result)
    await asyncio.to_thread(progress.succeeded, summary)
    return result


#: A batch flow: async, called with (profile, file_ids, request, mode, …), returning its result.
BatchFlow = Flow[..., Coroutine[Any, Any, BatchResult]]


def batch_flow(operation: OperationFlow[Any]) -> BatchFlow:
    """The ``batch_<name>`` flow of an operation's flow."""
    spec = get_operation(operation.name)

    async def run(
        profile: ProfileName,
        file_ids: list[FileId],
        request: BaseModel | None = None,
        mode: FanOut = "in-process",
        in_flight: int | None = None,
        all_in_profile: bool = False,
    ) -> Any:
        parsed = spec.parse_request(request)
        return await run_batch(
            spec, operation, profile, file_ids, parsed, mode, in_flight, all_in_profile
        )

    adapter.retype(
        run,
        spec.batch_name,
        f"``{spec.name}`` ({spec.summary}) for many files: one child run per file, at most "
        "``in_flight`` at once; ``all_in_profile`` adds every input of the profile. A failed "
        "child never stops the others; the batch ends Failed naming them.",
        BatchResult,
        request=spec.request | None,
    )
    made: BatchFlow = flow(name=spec.batch_name, validate_parameters=True, persist_result=True)(run)
    return made


# ---- the tables: one line per operation in each ---------------------------------------------

#: Every operation's flow, by operation name, in the order of ``mediaflows.operations``.
OPERATION_FLOWS: dict[str, OperationFlow[Any]] = {
    made.name: made for made in (convert, transcribe, generate_srt, fix_srt, translate_srt, package)
}

# The batch flows as module attributes: prefect.yaml's entrypoints are flows/batch.py:batch_<name>.
batch_convert = batch_flow(convert)
batch_transcribe = batch_flow(transcribe)
batch_generate_srt = batch_flow(generate_srt)
batch_fix_srt = batch_flow(fix_srt)
batch_translate_srt = batch_flow(translate_srt)
batch_package = batch_flow(package)

#: Every operation's batch flow, by operation name.
BATCHES: dict[str, BatchFlow] = {
    made.name.removeprefix("batch_"): made
    for made in (batch_convert, batch_transcribe, batch_generate_srt, batch_fix_srt,
                 batch_translate_srt, batch_package)
}  # fmt: skip
