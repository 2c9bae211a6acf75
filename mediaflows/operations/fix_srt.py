"""``fix_srt``: a profile SRT → the same cues, times untouched, with their text repaired by an
LLM (spelling, punctuation, mishearings, glossary names), stored in the profile.

The procedure, step by step as the flow runs it: :func:`plan` (the model, the chunks), the
chunks asked of the model (one task each), :func:`finish` (the repaired file and its report),
:func:`~mediaflows.subtitles.repair.check_outcome` (nothing stored when most chunks got no
valid answer), then the :func:`repaired_file`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from mediaflows.ids import output_file_id
from mediaflows.models import (
    CueRules,
    FixReport,
    FixSrtRequest,
    ProfileFile,
    ReviewCue,
    ReviewRecord,
    SrtDetails,
    SrtResult,
)
from mediaflows.operations.spec import (
    PROVIDER_WORK,
    OperationSpec,
    OutputIds,
    TextOutput,
    as_is,
    result_builder,
)
from mediaflows.settings import Settings
from mediaflows.subtitles import repair, review
from mediaflows.subtitles.chunks import ChunkFix, SrtChunk, apply_fixes, llm_options, plan_chunks
from mediaflows.subtitles.formats import FORMATS, format_of_name, write_subtitles
from mediaflows.subtitles.lines import rules_for
from mediaflows.subtitles.records import ParsedSrt, RenderedSubtitles, TimedCue


def fix_srt_options(request: FixSrtRequest, settings: Settings) -> dict[str, Any]:
    """fix_srt's options as they enter its output id: the request and the LLM's
    (:func:`~mediaflows.subtitles.chunks.llm_options`)."""
    return {**request.id_options(), **llm_options(request.model, settings)}


class FixSrtIds(OutputIds):
    """The repaired SRT's id (``main``) and, per other format, the repaired file's in it."""

    formats: dict[str, str] = Field(default_factory=dict)


def extra_formats(source: ProfileFile, request: FixSrtRequest) -> tuple[str, ...]:
    """The formats the repaired file is also stored in: the input's own when it is a subtitle
    file in another format than SRT (named so), then those asked for."""
    own = format_of_name(source.name) if request.track is None else None
    given = (own,) if own in ("vtt", "ass", "ssa", "ttml", "sbv") else ()
    return tuple(dict.fromkeys((*given, *request.formats)))


def output_ids(source: ProfileFile, request: FixSrtRequest, settings: Settings) -> FixSrtIds:
    """The repaired SRT's id: the input's content, the options, the model and prompt version;
    each other format's, the same and the format."""
    options = fix_srt_options(request, settings)
    tool = f"{options['model']}|{repair.PROMPT_VERSION}"
    return FixSrtIds(
        main=output_file_id(source.sha256, "fix_srt", options, tool),
        formats={
            fmt: output_file_id(source.sha256, "fix_srt", options, tool, fmt)
            for fmt in extra_formats(source, request)
        },
    )


def _linked(details: SrtDetails) -> tuple[str, ...]:
    return tuple(details.files.values())


FIX_SRT: OperationSpec[FixSrtRequest, SrtResult, SrtDetails, FixSrtIds] = OperationSpec(
    "fix_srt", "SRT → the same cues with their text repaired by an LLM", FixSrtRequest,
    SrtResult, SrtDetails, input_kinds=("subtitle",), stages=PROVIDER_WORK, output_ids=output_ids,
    build_result=result_builder(SrtResult, "file_id", "content"), content=as_is, linked=_linked,
)  # fmt: skip


@dataclass(frozen=True)
class RepairPlan:
    """What a run asks of the model: which model, with which options, in which chunks."""

    model: str
    options: dict[str, Any]
    chunks: list[SrtChunk]


def plan(parsed: ParsedSrt, request: FixSrtRequest, settings: Settings) -> RepairPlan:
    """The run's plan: the model resolved, the cues with text in chunks."""
    options = fix_srt_options(request, settings)
    chunks = plan_chunks(parsed.cues, settings.llm.chunk_cues, settings.llm.context_cues)
    return RepairPlan(model=str(options["model"]), options=options, chunks=chunks)


@dataclass(frozen=True)
class Repaired:
    """The repaired file (the source's cues and times, the accepted text; as written in SRT,
    and as read, with what other formats keep) and its report."""

    fixed: RenderedSubtitles
    report: FixReport
    cues: tuple[TimedCue, ...] = ()
    language: str | None = None


def finish(
    parsed: ParsedSrt,
    plan: RepairPlan,
    fixes: Sequence[ChunkFix],
    request: FixSrtRequest,
    edits: Mapping[str, Mapping[int, str]] | None = None,
) -> Repaired:
    """The repaired file from the chunks' answers (with a reviewer's ``edits``, under ``""``
    by cue number, in place; the source's BOM and line ends unless ``normalise``), and what the
    run reports."""
    fixes = review.reviewed_fixes(fixes, (edits or {}).get("", {}))
    fixed = repair.render_fixed(parsed, fixes, request.normalise)
    report = repair.summarize(parsed, fixed, fixes, plan.model)
    return Repaired(fixed, report, tuple(apply_fixes(parsed.cues, fixes)), parsed.language)


def flagged(parsed: ParsedSrt, fixes: Sequence[ChunkFix], repaired: Repaired) -> list[ReviewCue]:
    """The cues a reviewer is asked about: those that kept their text for want of a valid
    answer, under the file's line rules."""
    rules = rules_for(parsed.language or "en", CueRules())
    return review.repair_flags(parsed.cues, fixes, repaired.report, rules)


def format_files(
    source: ProfileFile, plan: RepairPlan, ids: FixSrtIds, repaired: Repaired
) -> list[tuple[str, TextOutput]]:
    """The repaired file in each other format, ``<name>.fixed.<extension>`` (stored before the
    SRT, whose presence means the run is done): the source's cues, with what the format keeps
    of them (cue settings, speakers, styles), and the text accepted."""
    tools = {"llm": plan.model, "prompt": repair.PROMPT_VERSION}
    return [
        (fmt, FIX_SRT.text_output(
            source, file_id, f"fixed{FORMATS[fmt].extensions[0]}", "subtitle",
            write_subtitles(repaired.cues, fmt, repaired.language),
            options={**plan.options, "format": fmt}, tools=tools,
            details=SrtDetails(qa=repaired.fixed.qa),
        ))
        for fmt, file_id in ids.formats.items()
    ]  # fmt: skip


def repaired_file(
    source: ProfileFile,
    plan: RepairPlan,
    ids: OutputIds,
    repaired: Repaired,
    files: Mapping[str, str] | None = None,
    reviewed: ReviewRecord | None = None,
) -> TextOutput:
    """The repaired SRT as it is stored: ``<name>.fixed.srt``, with its QA and report, the ids
    of the other formats' files (``files``, by format), and what a reviewer did."""
    details = SrtDetails(
        qa=repaired.fixed.qa, fix=repaired.report, files=dict(files or {}), review=reviewed
    )
    return FIX_SRT.text_output(
        source, ids.main, "fixed.srt", "subtitle", repaired.fixed.srt, options=plan.options,
        tools={"llm": plan.model, "prompt": repair.PROMPT_VERSION}, details=details,
    )  # fmt: skip


def summary(report: FixReport) -> str:
    """The run's last word in the UI."""
    line = f"{report.changed} of {report.cues} cues changed"
    if report.fallback_chunks or report.rejected_cues:
        line += (
            f"; {len(report.fallback_chunks)} chunks and {len(report.rejected_cues)} cues "
            "kept their text"
        )
    return line
