"""The ``fix_srt`` flow: a profile SRT file → the same cues, times untouched, with their text
repaired by an LLM (any OpenAI-compatible endpoint), stored in the profile."""

from __future__ import annotations

from functools import partial

from prefect.logging import get_run_logger

from flows._operation import Job, Output, operation_flow
from flows._requests import ask_all
from mediaflows import llm
from mediaflows.models import FixSrtRequest
from mediaflows.operations import FIX_SRT, fix_srt_options
from mediaflows.stages import Stage
from tasks.llm import fix_chunk
from tasks.progress import publish_fix_report
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
    request, limit = job.request, settings.orchestration.llm_limit
    answers = ask_all(
        [(c.index, partial(fix_chunk.submit, c, model, request.sys_msg, request.glossary, limit))
         for c in chunks],
        model, limit, job.progress, "repairing",
    )  # fmt: skip
    fixes = [answers[c.index] for c in chunks]
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
