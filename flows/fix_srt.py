"""The ``fix_srt`` flow: a profile SRT file → the same cues, times untouched, with their text
repaired by an LLM (any OpenAI-compatible endpoint), stored in the profile."""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import wait as wait_any
from pathlib import PurePath
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.futures import PrefectConcurrentFuture

from flows._steps import srt_result
from mediaflows import llm
from mediaflows.ids import FileId, ProfileName
from mediaflows.models import (
    ChunkFix,
    FixSrtRequest,
    SrtChunk,
    SrtResult,
)
from mediaflows.outputs import fix_srt_options, output_id
from mediaflows.settings import get_settings
from tasks._engine import process_slots, run_blocking
from tasks.llm import LLM_TAG, fix_chunk
from tasks.progress import publish_fix_report, report_progress, start_progress
from tasks.store import find_output, lookup_profile_file, read_text_output, store_text_output
from tasks.subtitles import merge_fixes, read_profile_srt


@flow(name="fix_srt", log_prints=False, validate_parameters=True, persist_result=True)
async def fix_srt(
    profile: ProfileName, file_id: FileId, request: FixSrtRequest | None = None
) -> SrtResult:
    """Repair the text of a profile SRT file with an LLM and store the result: spelling,
    punctuation, mishearings, names from the glossary. The model sees cue numbers and text only,
    never times, in chunks that run at once up to the `llm` limit; an invalid answer is asked
    again, then the chunk keeps its text. Times come from the source: zero drift.

    Chunk answers are cached, so a re-run after a failure asks only for the missing chunks; the
    same request returns the stored SRT."""
    return await run_blocking(_fix_srt, profile, file_id, request or FixSrtRequest())


def _fix_srt(profile: str, file_id: str, request: FixSrtRequest) -> SrtResult:
    settings = get_settings()
    progress = start_progress("fix_srt", f"{profile}/{file_id}")
    report_progress(progress, 1, "reading")
    source = lookup_profile_file(profile, file_id)
    options = fix_srt_options(request, settings)
    model = str(options["model"])
    srt_id = output_id("fix_srt", source, request, settings)
    existing = find_output(profile, srt_id)
    if existing is not None:
        report_progress(progress, 100, "done (already fixed)", wait=True)
        return srt_result(existing, read_text_output(existing.file), cached=True)

    parsed = read_profile_srt(source)
    chunks = llm.plan_chunks(parsed.cues, settings.llm.chunk_cues, settings.llm.context_cues)
    report_progress(progress, 5, f"repairing 0/{len(chunks)} chunks")
    fixes = _fix_chunks(chunks, model, request, settings.llm_limit, progress)
    report_progress(progress, 92, "storing")
    fixed = merge_fixes(parsed, fixes)
    report = llm.summarize(parsed, fixed, fixes, model)
    stem = PurePath(source.name).stem or source.id
    srt = store_text_output(
        profile,
        srt_id,
        fixed.srt,
        name=f"{stem}.fixed.srt",
        kind="subtitle",
        source=source,
        operation="fix_srt",
        options=options,
        tools={"llm": model, "prompt": llm.PROMPT_VERSION},
        details={"qa": fixed.qa.model_dump(mode="json"), "fix": report.model_dump(mode="json")},
    )
    publish_fix_report(parsed.cues, fixed.cues, report, f"{profile}/{source.name}")
    report_progress(progress, 100, f"done ({report.changed} of {report.cues} cues changed)",
                    wait=True)  # fmt: skip
    return srt_result(srt, fixed.srt, cached=False)


def _fix_chunks(
    chunks: list[SrtChunk], model: str, request: FixSrtRequest, limit: int, progress: UUID | None
) -> list[ChunkFix]:
    """Every chunk through ``fix_chunk``, ``limit`` at a time.

    The server's ``llm`` tag limit holds across all workers; submitting no more than that from
    here keeps this run's tasks from queueing on the server, where a freed slot can sit idle for
    seconds (Prefect's 423 back-off). A failed chunk does not stop the others: they finish and
    are cached, then the first failure is raised.
    """
    queue = list(chunks)
    running: dict[Any, PrefectConcurrentFuture[ChunkFix]] = {}
    fixes: dict[int, ChunkFix] = {}
    failed: list[PrefectConcurrentFuture[ChunkFix]] = []
    # Runs in one process (a batch's children) share the slots here first: a chunk the server
    # turns away waits out its Retry-After even when a slot comes free at once.
    slots = process_slots(LLM_TAG, limit)
    while queue or running:
        while queue and len(running) < limit:
            if not slots.acquire(blocking=not running):
                break  # all taken: take the next when one of ours (or anyone's) finishes
            future = fix_chunk.submit(queue.pop(0), model, request.sys_msg, request.glossary)
            future.wrapped_future.add_done_callback(lambda _: slots.release())
            running[future.wrapped_future] = future
        done, _ = wait_any(list(running), return_when=FIRST_COMPLETED)
        for inner in done:
            future = running.pop(inner)
            # The wrapped future holds the final state; future.state may still be the server's.
            value = future.result(raise_on_failure=False)
            if isinstance(value, ChunkFix):
                fixes[value.index] = value
            else:
                failed.append(future)
        finished = len(fixes) + len(failed)
        report_progress(progress, 5 + 85 * finished / max(len(chunks), 1),
                        f"repairing {finished}/{len(chunks)} chunks")  # fmt: skip
    if failed:
        failed[0].result()  # raises the chunk's error: the run fails with its class
    return [fixes[c.index] for c in chunks]
