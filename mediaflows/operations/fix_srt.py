"""``fix_srt``: a profile SRT → the same cues, times untouched, with their text repaired by an
LLM (spelling, punctuation, mishearings, glossary names), stored in the profile.

The procedure, step by step as the flow runs it: :func:`plan` (the model, the chunks), the
chunks asked of the model (one task each), :func:`finish` (the repaired file and its report),
:func:`~mediaflows.subtitles.repair.check_outcome` (nothing stored when most chunks got no
valid answer), then the :func:`repaired_file`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mediaflows.ids import output_file_id
from mediaflows.models import FixReport, FixSrtRequest, ProfileFile, SrtDetails, SrtResult
from mediaflows.operations.spec import (
    PROVIDER_WORK,
    OperationSpec,
    OutputIds,
    TextOutput,
    as_is,
    result_builder,
)
from mediaflows.settings import Settings
from mediaflows.subtitles import repair
from mediaflows.subtitles.chunks import ChunkFix, SrtChunk, llm_options, plan_chunks
from mediaflows.subtitles.records import ParsedSrt, RenderedSubtitles


def fix_srt_options(request: FixSrtRequest, settings: Settings) -> dict[str, Any]:
    """fix_srt's options as they enter its output id: the request and the LLM's
    (:func:`~mediaflows.subtitles.chunks.llm_options`)."""
    return {**request.id_options(), **llm_options(request.model, settings)}


def output_ids(source: ProfileFile, request: FixSrtRequest, settings: Settings) -> OutputIds:
    """The repaired SRT's id: the input's content, the options, the model and prompt version."""
    options = fix_srt_options(request, settings)
    tool = f"{options['model']}|{repair.PROMPT_VERSION}"
    return OutputIds(main=output_file_id(source.sha256, "fix_srt", options, tool))


FIX_SRT: OperationSpec[FixSrtRequest, SrtResult, SrtDetails, OutputIds] = OperationSpec(
    "fix_srt", "SRT → the same cues with their text repaired by an LLM", FixSrtRequest,
    SrtResult, SrtDetails, input_kinds=("subtitle",), stages=PROVIDER_WORK, output_ids=output_ids,
    build_result=result_builder(SrtResult, "file_id", "content"), content=as_is,
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
    """The repaired file (the source's cues and times, the accepted text) and its report."""

    fixed: RenderedSubtitles
    report: FixReport


def finish(
    parsed: ParsedSrt, plan: RepairPlan, fixes: Sequence[ChunkFix], request: FixSrtRequest
) -> Repaired:
    """The repaired file from the chunks' answers (the source's BOM and line ends unless
    ``normalise``), and what the run reports."""
    fixed = repair.render_fixed(parsed, fixes, request.normalise)
    return Repaired(fixed, repair.summarize(parsed, fixed, fixes, plan.model))


def repaired_file(
    source: ProfileFile, plan: RepairPlan, ids: OutputIds, repaired: Repaired
) -> TextOutput:
    """The repaired SRT as it is stored: ``<name>.fixed.srt``, with its QA and report."""
    return FIX_SRT.text_output(
        source, ids.main, "fixed.srt", "subtitle", repaired.fixed.srt, options=plan.options,
        tools={"llm": plan.model, "prompt": repair.PROMPT_VERSION},
        details=SrtDetails(qa=repaired.fixed.qa, fix=repaired.report),
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
