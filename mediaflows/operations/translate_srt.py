"""``translate_srt``: a profile SRT → one SRT per target language (and on request a WebVTT), the
same cues and times, the text translated by an LLM and re-wrapped to each language's line rules;
a manifest listing them is stored last (its presence means every language is done).

The procedure, step by step as the flow runs it: :func:`plan` (the source language, the chunks,
the model), the chunks asked of the model (one task each, per language), :func:`finish` (every
language rendered and summarised) and :func:`check` (every language checked before any is
stored: nothing half-written), then each language's :func:`translation_file` (and
:func:`format_file` per other format) and the :func:`manifest`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from mediaflows.errors import InputError
from mediaflows.ids import output_file_id
from mediaflows.languages import parse_language, same_language
from mediaflows.models import (
    ProfileFile,
    QAReport,
    ReviewCue,
    ReviewRecord,
    SrtDetails,
    StoredFile,
    TranslateSrtDetails,
    TranslateSrtRequest,
    TranslateSrtResult,
    Translation,
    TranslationRef,
    TranslationReport,
)
from mediaflows.operations.spec import PROVIDER_WORK, OperationSpec, OutputIds, TextOutput, as_is
from mediaflows.settings import Settings
from mediaflows.subtitles import review, translation, windows
from mediaflows.subtitles.chunks import ChunkFix, SrtChunk, llm_options, plan_chunks
from mediaflows.subtitles.formats import FORMATS, read_srt, write_subtitles
from mediaflows.subtitles.lines import line_rules
from mediaflows.subtitles.qa import qa_report
from mediaflows.subtitles.records import ParsedSrt, TimedCue


class TranslateSrtIds(OutputIds):
    """The manifest's id (``main``), each language's SRT id and, per other format asked for
    (``formats``, ``vtt``), each language's file id in it. A language's ids do not depend on the
    other targets or formats: a run with one more language or format finds the others stored."""

    languages: dict[str, str]
    formats: dict[str, dict[str, str]] = Field(default_factory=dict)


def _tool(llm: Mapping[str, Any]) -> str:
    return f"{llm['model']}|{translation.PROMPT_VERSION}"


def output_ids(
    source: ProfileFile, request: TranslateSrtRequest, settings: Settings
) -> TranslateSrtIds:
    """Every id of the run: the request, the model resolved and the endpoint's settings, the
    prompt version (:func:`~mediaflows.subtitles.chunks.llm_options`)."""
    llm = llm_options(request.model, settings)
    options = {**request.id_options(), **llm}

    def one(language: str, variant: str) -> str:
        per_language = {**request.for_language(language), **llm}
        return output_file_id(source.sha256, "translate_srt", per_language, _tool(llm), variant)

    targets = request.target_languages
    return TranslateSrtIds(
        main=output_file_id(source.sha256, "translate_srt", options, _tool(llm), "manifest"),
        languages={language: one(language, language) for language in request.target_languages},
        formats={
            fmt: {language: one(language, f"{language}.{fmt}") for language in targets}
            for fmt in request.extra_formats()
        },
    )


def manifest_text(
    translations: Mapping[str, str],
    srt: str | None = None,
    files: Sequence[Mapping[str, str]] = (),
    reviewed: ReviewRecord | None = None,
) -> str:
    """A manifest's content: each translation's SRT by language (and the source SRT), every
    file of the run (language, format, file id), and what a reviewer did (if one was asked)."""
    data: dict[str, Any] = {
        "srt": srt,
        "translations": dict(translations),
        "files": [dict(f) for f in files],
    }
    if reviewed is not None:
        data["review"] = reviewed.model_dump(mode="json")
    return json.dumps(data, ensure_ascii=False)


def files_of(refs: Sequence[TranslationRef]) -> list[dict[str, str]]:
    """Every file the translations are stored as, for the manifest: language, format, id."""
    files = []
    for r in refs:
        for fmt, file_id in {"srt": r.file_id, **_others(r)}.items():
            files.append({"language": r.language, "format": fmt, "file_id": file_id})
    return files


def _others(ref: TranslationRef) -> dict[str, str]:
    """A translation's files in the other formats (its WebVTT also where only ``vtt_file_id``
    names it: a manifest of an earlier release)."""
    vtt = {"vtt": ref.vtt_file_id} if ref.vtt_file_id else {}
    return {**vtt, **ref.files}


def translations_of(
    refs: Sequence[TranslationRef], texts: Mapping[str, str], urls: Mapping[str, str]
) -> tuple[Translation, ...]:
    """The translations a manifest lists, with their text and fresh URLs."""
    return tuple(
        Translation(
            **r.model_dump(),
            media_url=urls[r.file_id],
            content=texts.get(r.language, ""),
            vtt_url=urls.get(r.vtt_file_id) if r.vtt_file_id else None,
            urls={fmt: urls[i] for fmt, i in _others(r).items() if i in urls},
        )
        for r in refs
    )


def linked_files(refs: Sequence[TranslationRef]) -> tuple[str, ...]:
    """Every file a manifest's translations name: each SRT, and its other formats."""
    return tuple(dict.fromkeys(i for r in refs for i in (r.file_id, *_others(r).values())))


def _result(
    stored: StoredFile,
    details: TranslateSrtDetails,
    content: str | None,
    cached: bool,
    urls: Mapping[str, str],
) -> TranslateSrtResult:
    texts = json.loads(content)["translations"] if content else {}
    return TranslateSrtResult(
        profile=stored.file.profile,
        source_file_id=stored.file.source_file_id or "",
        media_url=stored.media_url,
        cached=cached,
        file_id=stored.file.id,
        source_language=details.source_language,
        translations=translations_of(details.translations, texts, urls),
        review=details.review,
    )


TRANSLATE_SRT: OperationSpec[
    TranslateSrtRequest, TranslateSrtResult, TranslateSrtDetails, TranslateSrtIds
] = OperationSpec(
    "translate_srt", "SRT → one SRT per target language, the same cues and times, by an LLM",
    TranslateSrtRequest, TranslateSrtResult, TranslateSrtDetails, input_kinds=("subtitle",),
    stages=PROVIDER_WORK, output_ids=output_ids, build_result=_result, content=as_is,
    linked=lambda details: linked_files(details.translations),
    cli_flags={"target_languages": "--to"},
)  # fmt: skip


@dataclass(frozen=True)
class TranslationPlan:
    """What a run asks of the model: the source language (given, guessed, or None: the model
    works it out), the model and the LLM options that enter output ids, the chunks."""

    source: str | None
    model: str
    llm: dict[str, Any]
    chunks: list[SrtChunk]
    pairs: tuple[windows.Pair, ...] = ()


def plan(
    parsed: ParsedSrt, request: TranslateSrtRequest, settings: Settings, name: str
) -> TranslationPlan:
    """The run's plan; :class:`InputError` when the SRT is in a target language already."""
    source = translation.source_language(parsed, request.source_language)
    for language in request.target_languages:
        if source is not None and same_language(source, language):
            how = "given" if request.source_language else "guessed from its text"
            raise InputError(
                f"{name} is in {language} ({how}): not a target language"
                + ("" if request.source_language else "; pass source_language if it is not")
            )
    llm = llm_options(request.model, settings)
    pairs = windows.short_pairs(parsed.cues) if request.merge_short else ()
    asked = windows.merged(parsed, pairs).cues
    chunks = plan_chunks(asked, settings.llm.chunk_cues, settings.llm.context_cues)
    return TranslationPlan(
        source=source, model=str(llm["model"]), llm=llm, chunks=chunks, pairs=pairs
    )


@dataclass(frozen=True)
class Translated:
    """One language's translation, checked, not yet stored."""

    srt: str
    qa: QAReport
    report: TranslationReport
    cues: tuple[TimedCue, ...] = ()


def finish(
    plan: TranslationPlan,
    parsed: ParsedSrt,
    answers: Mapping[tuple[str, int], ChunkFix],
    languages: Sequence[str],
    request: TranslateSrtRequest,
    edits: Mapping[str, Mapping[int, str]] | None = None,
) -> dict[str, Translated]:
    """Each language's file rendered from its chunks' answers (with a reviewer's ``edits`` by
    language and cue number in place), and its report."""
    made = {}
    for language in languages:
        target = parse_language(language)
        asked = [answers[(language, c.index)] for c in plan.chunks]
        fixes = windows.split_fixes(asked, parsed, plan.pairs, target)
        fixes = review.reviewed_fixes(fixes, (edits or {}).get(language, {}))
        source = translation.known_language(plan.source)
        rendered = translation.render_translation(
            parsed, fixes, target, request.bilingual, request.normalise, source
        )
        report = translation.summarize(parsed, fixes, rendered, target, plan.model, plan.source)
        if plan.pairs:
            reading = report.reading.model_copy(update={"windows": len(plan.pairs)})
            report = report.model_copy(update={"reading": reading})
        cues = translation.translated_cues(parsed, fixes, target, source)
        made[language] = Translated(rendered.srt, rendered.qa, report, tuple(cues))
    return made


def flagged(parsed: ParsedSrt, made: Mapping[str, Translated]) -> list[ReviewCue]:
    """The cues of every language a reviewer is asked about (language by language)."""
    return [
        cue for translated in made.values()
        for cue in review.translation_flags(parsed.cues, translated.cues, translated.report)
    ]  # fmt: skip


def check(made: Mapping[str, Translated], settings: Settings) -> None:
    """Raise :class:`~mediaflows.errors.LLMOutputError` for the first language where most
    chunks got no valid answer (or nothing was translated): nothing is stored then."""
    for translated in made.values():
        translation.check_outcome(translated.report, settings.llm.max_fallback_share)


def _tools(plan: TranslationPlan) -> dict[str, str]:
    return {"llm": plan.model, "prompt": translation.PROMPT_VERSION}


def translation_file(
    source: ProfileFile,
    request: TranslateSrtRequest,
    plan: TranslationPlan,
    ids: TranslateSrtIds,
    language: str,
    translated: Translated,
) -> TextOutput:
    """One language's SRT as it is stored: ``<name>.<language>.srt``."""
    details = SrtDetails(language=language, qa=translated.qa, translation=translated.report)
    return TRANSLATE_SRT.text_output(
        source, ids.languages[language], f"{language}.srt", "subtitle", translated.srt,
        options={**request.for_language(language), **plan.llm}, tools=_tools(plan),
        details=details,
    )  # fmt: skip


def format_file(
    source: ProfileFile,
    request: TranslateSrtRequest,
    plan: TranslationPlan,
    ids: TranslateSrtIds,
    language: str,
    fmt: str,
    srt: str,
) -> TextOutput:
    """One language's file in another format (``vtt``, ``ass``, ``ttml`` …) as it is stored,
    ``<name>.<language>.<extension>``: the cues and times of its stored SRT (``srt``: made now,
    or read back when the SRT was stored before), positions and italics as the format keeps
    them, the language where the format has a place for it (WebVTT's header, TTML's
    ``xml:lang``, ASS's Script Info)."""
    parsed = read_srt(srt.encode(), f"{language}.srt")
    qa = qa_report(parsed.cues, line_rules(parse_language(language)))
    extension = FORMATS[fmt].extensions[0]
    return TRANSLATE_SRT.text_output(
        source, ids.formats[fmt][language], f"{language}{extension}", "subtitle",
        write_subtitles(parsed.cues, fmt, language),
        options={**request.for_language(language), **plan.llm, "format": fmt},
        tools=_tools(plan), details=SrtDetails(language=language, qa=qa),
    )  # fmt: skip


def ref_of(
    language: str, stored: StoredFile, others: Mapping[str, StoredFile] | None = None
) -> TranslationRef:
    """A stored translation as a manifest lists it (from its details), with its files in the
    other formats (by format)."""
    details = SrtDetails.model_validate(stored.file.details)
    files = {fmt: found.file.id for fmt, found in (others or {}).items()}
    return TranslationRef(
        language=language, file_id=stored.file.id, qa=details.qa, report=details.translation,
        vtt_file_id=files.get("vtt"), files=files,
    )  # fmt: skip


def manifest(
    source: ProfileFile,
    request: TranslateSrtRequest,
    plan: TranslationPlan,
    ids: TranslateSrtIds,
    refs: Sequence[TranslationRef],
    texts: Mapping[str, str],
    reviewed: ReviewRecord | None = None,
) -> TextOutput:
    """The manifest as it is stored last: ``<name>.translations.json``, every language's SRT
    (and what a reviewer did)."""
    details = TranslateSrtDetails(
        source_language=plan.source or "", translations=tuple(refs), review=reviewed
    )
    return TRANSLATE_SRT.text_output(
        source, ids.main, "translations.json", "other",
        manifest_text(texts, files=files_of(refs), reviewed=reviewed),
        options={**request.model_dump(mode="json"), **plan.llm}, tools=_tools(plan),
        details=details,
    )  # fmt: skip


def summary(refs: Sequence[TranslationRef], already: int) -> str:
    """The run's last word in the UI: a line per language, and how many were stored before."""
    line = "; ".join(translation.qa_line(r.language, r.qa, r.report) for r in refs)
    return line + (f" ({already} already stored)" if already else "")
