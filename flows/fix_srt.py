"""The ``fix_srt`` flow: a profile SRT file → the same cues, times untouched, with their text
repaired by an LLM (any OpenAI-compatible endpoint), stored in the profile."""

from __future__ import annotations

from functools import partial

from prefect.logging import get_run_logger

from flows._operation import Job, Output, operation_flow
from flows._requests import ask_all
from flows._review import kept_before, reviewed
from mediaflows.models import FixSrtRequest
from mediaflows.operations import fix_srt as procedure
from mediaflows.operations.fix_srt import FIX_SRT, FixSrtIds
from mediaflows.stages import Stage
from mediaflows.subtitles import repair
from tasks.llm import fix_chunk
from tasks.progress import publish_fix_report
from tasks.subtitles import read_profile_subtitles


@operation_flow(FIX_SRT)
def fix_srt(job: Job[FixSrtRequest, FixSrtIds]) -> Output:
    """Repair the text of a profile SRT file with an LLM and store the result: spelling,
    punctuation, mishearings, names from the glossary. The model sees cue numbers and text only,
    never times, in chunks sent at once up to the `llm` limit (fewer when the endpoint queues);
    an invalid answer is asked again with its fault shown, then the chunk keeps its text; a
    damaged cue (markup, lines, debris) keeps its text. Times come from the source: zero drift;
    its BOM and line ends are kept.

    Every refusal is in the result, the artifacts and the run's log; a run where most chunks
    got no valid answer fails and stores nothing. A refused connection or request stops the run
    at once. Chunk answers are cached, so a re-run after a failure asks only for the missing
    chunks; the same request returns the stored SRT. With `review`, the run waits for a
    reviewer on the cues that kept their text (awaiting_review) and stores their text."""
    request, limit = job.request, job.settings.orchestration.llm_limit
    job.progress.stage(Stage.UPLOAD_RECEIVED, "reading")
    parsed = read_profile_subtitles(job.profile, job.source, request.track, job.workspace)
    job.progress.stage(Stage.PREPARING, "planning chunks")
    plan = procedure.plan(parsed, request, job.settings)
    job.progress.stage(Stage.CALLING_PROVIDER, f"repairing 0/{len(plan.chunks)} chunks")
    answers = ask_all(
        [(c.index, partial(fix_chunk.submit, c, plan.model, request.sys_msg, request.glossary,
                           limit)) for c in plan.chunks],
        plan.model, limit, job.progress, "repairing", kept_before(job),
    )  # fmt: skip
    job.progress.stage(Stage.PROCESSING_RESULT, "storing")
    fixes = [answers[c.index] for c in plan.chunks]
    repaired = procedure.finish(parsed, plan, fixes, request)
    for problem in repaired.report.problems:
        get_run_logger().warning("%s", problem)
    publish_fix_report(parsed.cues, repaired.fixed.cues, repaired.report, job.title)
    repair.check_outcome(repaired.report, job.settings.llm.max_fallback_share)
    again = partial(procedure.finish, parsed, plan, fixes, request)
    flagged = procedure.flagged(parsed, fixes, repaired)
    repaired, review = reviewed(job, flagged, repaired, again, answers)
    others = {fmt: job.store(f) for fmt, f in procedure.format_files(job.source, plan, job.ids,
                                                                      repaired)}  # fmt: skip
    files = {fmt: found.file.id for fmt, found in others.items()}
    stored = job.store(procedure.repaired_file(job.source, plan, job.ids, repaired, files, review))
    urls = {found.file.id: found.media_url for found in others.values()}
    return Output(stored, repaired.fixed.srt, procedure.summary(repaired.report), urls)
