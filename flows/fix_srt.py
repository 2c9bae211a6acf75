"""The ``fix_srt`` flow: a profile SRT file → the same cues, times untouched, with their text
repaired by an LLM (any OpenAI-compatible endpoint), stored in the profile."""

from __future__ import annotations

from typing import Any

from prefect.futures import PrefectFuture
from prefect.logging import get_run_logger

from flows._operation import Job, Output, operation_flow
from mediaflows import cancel, endpoint, llm
from mediaflows.errors import ChunkRefusedError, ConfigurationError
from mediaflows.llm import ChunkFix, SrtChunk
from mediaflows.models import FixSrtRequest
from mediaflows.operations import FIX_SRT, fix_srt_options
from mediaflows.settings import get_settings
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
    never times, in chunks sent at once up to the `llm` limit (fewer when the endpoint queues);
    an invalid answer is asked again with its fault shown, then the chunk keeps its text; a
    damaged cue (markup, lines, debris) keeps its text. Times come from the source: zero drift;
    its BOM and line ends are kept.

    Every refusal is in the result, the artifacts and the run's log; a run where most chunks
    got no valid answer fails and stores nothing. A refused connection or request stops the run
    at once. Chunk answers are cached, so a re-run after a failure asks only for the missing
    chunks; the same request returns the stored SRT."""
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
    fixed = merge_fixes(parsed, fixes, job.request.normalise)
    report = llm.summarize(parsed, fixed, fixes, model)
    logger = get_run_logger()
    for problem in report.problems:
        logger.warning("%s", problem)
    publish_fix_report(parsed.cues, fixed.cues, report, f"{job.profile}/{job.source.name}")
    llm.check_outcome(report, settings.llm.max_fallback_share)
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
    summary = f"{report.changed} of {report.cues} cues changed"
    if report.fallback_chunks or report.rejected_cues:
        summary += (
            f"; {len(report.fallback_chunks)} chunks and {len(report.rejected_cues)} cues "
            "kept their text"
        )
    return Output(stored, fixed.srt, summary)


def _fix_chunks(
    chunks: list[SrtChunk],
    model: str,
    request: FixSrtRequest,
    limit: int,
    progress: RunProgress,
) -> list[ChunkFix]:
    """Every chunk's fix, at most ``limit`` requests in flight from this run, fewer when the
    endpoint serves fewer at once (:class:`mediaflows.endpoint.Window`); the server's ``llm`` limit
    bounds all runs together. A chunk without a valid answer keeps its text. A failed chunk
    does not stop the others (they finish and are cached, then its error is raised), except a
    configuration error (a refused request or connection): then nothing more is sent.
    """
    queue = list(chunks)
    running: list[PrefectFuture[Any]] = []
    fixes: dict[int, ChunkFix] = {}
    failed: list[BaseException] = []
    window = endpoint.window(get_settings().llm, model, limit)
    # Runs in one process (a batch's children) share the slots here first: a chunk the server
    # turns away waits out its Retry-After even when a slot comes free at once.
    slots = runtime.process_slots(LLM_TAG, limit)
    while queue or running:
        cancel.check()
        while queue and len(running) < min(limit, window.size):
            if not slots.acquire(blocking=not running):
                break  # all taken: take the next when one of ours (or anyone's) finishes
            chunk = queue.pop(0)
            future = fix_chunk.submit(chunk, model, request.sys_msg, request.glossary, limit)
            runtime.on_done(future, slots.release)
            running.append(future)
        for future in runtime.wait_first(running):
            running.remove(future)
            value = future.result(raise_on_failure=False)
            if isinstance(value, ChunkFix):
                fixes[value.index] = value
            elif isinstance(value, ChunkRefusedError):
                fixes[value.fix.index] = value.fix
            else:
                failed.append(value)
                if isinstance(value, ConfigurationError):
                    queue.clear()  # the circuit breaker: nothing more is sent
        finished = len(fixes) + len(failed)
        progress.stage(Stage.CALLING_PROVIDER, f"repairing {finished}/{len(chunks)} chunks",
                       finished / max(len(chunks), 1))  # fmt: skip
    if failed:
        first = next((e for e in failed if isinstance(e, ConfigurationError)), failed[0])
        raise first  # the run fails with the chunk's error class
    return [fixes[c.index] for c in chunks]
