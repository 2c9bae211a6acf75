"""The ``fix_srt`` flow: a profile SRT file → the same cues, times untouched, with their text
repaired by an LLM (any OpenAI-compatible endpoint), stored in the profile."""

from __future__ import annotations

from typing import Any

from prefect.futures import PrefectFuture

from flows._operation import Job, Output, operation_flow
from mediaflows import llm
from mediaflows.llm import ChunkFix, SrtChunk
from mediaflows.models import FixSrtRequest
from mediaflows.operations import FIX_SRT, fix_srt_options
from mediaflows.stages import Stage
from tasks import runtime
from tasks.llm import LLM_TAG, fix_chunk
from tasks.progress import RunProgress, publish_fix_report
from tasks.store import store_text_output
from tasks.subtitles import merge_fixes, read_profile_srt


@operation_flow(FIX_SRT)
def fix_srt(job: Job[FixSrtRequest]) -> Output:
    """Repair the text of a profile SRT file with an LLM and store the result: spelling,
    punctuation, mishearings, names from the glossary. The model sees cue numbers and text only,
    never times, in chunks that run at once up to the `llm` limit; an invalid answer is asked
    again, then the chunk keeps its text. Times come from the source: zero drift.

    Chunk answers are cached, so a re-run after a failure asks only for the missing chunks; the
    same request returns the stored SRT."""
    settings = job.settings
    options = fix_srt_options(job.request, settings)
    model = str(options["model"])
    job.progress.stage(Stage.UPLOAD_RECEIVED, "reading")
    parsed = read_profile_srt(job.source)
    job.progress.stage(Stage.PREPARING, "planning chunks")
    chunks = llm.plan_chunks(parsed.cues, settings.llm.chunk_cues, settings.llm.context_cues)
    job.progress.stage(Stage.CALLING_PROVIDER, f"repairing 0/{len(chunks)} chunks")
    fixes = _fix_chunks(chunks, model, job.request, settings.orchestration.llm_limit, job.progress)
    job.progress.stage(Stage.PROCESSING_RESULT, "storing")
    fixed = merge_fixes(parsed, fixes)
    report = llm.summarize(parsed, fixed, fixes, model)
    stored = store_text_output(
        job.profile,
        job.output_id,
        fixed.srt,
        name=f"{job.stem}.fixed.srt",
        kind="subtitle",
        source=job.source,
        operation=FIX_SRT.name,
        options=options,
        tools={"llm": model, "prompt": llm.PROMPT_VERSION},
        details={"qa": fixed.qa.model_dump(mode="json"), "fix": report.model_dump(mode="json")},
    )
    publish_fix_report(parsed.cues, fixed.cues, report, f"{job.profile}/{job.source.name}")
    return Output(stored, fixed.srt, f"{report.changed} of {report.cues} cues changed")


def _fix_chunks(
    chunks: list[SrtChunk],
    model: str,
    request: FixSrtRequest,
    limit: int,
    progress: RunProgress,
) -> list[ChunkFix]:
    """Every chunk's fix, at most ``limit`` requests in flight from this run (the server's ``llm``
    limit bounds all runs together; a task it turns away waits and asks again, with
    back-off). A failed chunk does not stop the others: they finish and are cached, then the
    first failure is raised.
    """
    queue = list(chunks)
    running: list[PrefectFuture[Any]] = []
    fixes: dict[int, ChunkFix] = {}
    failed: list[PrefectFuture[Any]] = []
    # Runs in one process (a batch's children) share the slots here first: a chunk the server
    # turns away waits out its Retry-After even when a slot comes free at once.
    slots = runtime.process_slots(LLM_TAG, limit)
    while queue or running:
        while queue and len(running) < limit:
            if not slots.acquire(blocking=not running):
                break  # all taken: take the next when one of ours (or anyone's) finishes
            future = fix_chunk.submit(queue.pop(0), model, request.sys_msg, request.glossary)
            runtime.on_done(future, slots.release)
            running.append(future)
        for future in runtime.wait_first(running):
            running.remove(future)
            value = future.result(raise_on_failure=False)
            if isinstance(value, ChunkFix):
                fixes[value.index] = value
            else:
                failed.append(future)
        finished = len(fixes) + len(failed)
        progress.stage(Stage.CALLING_PROVIDER, f"repairing {finished}/{len(chunks)} chunks",
                       finished / max(len(chunks), 1))  # fmt: skip
    if failed:
        failed[0].result()  # raises the chunk's error: the run fails with its class
    return [fixes[c.index] for c in chunks]
