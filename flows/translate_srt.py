"""The ``translate_srt`` flow: a profile SRT file → one SRT per target language, the same cues
and times, stored in the profile with a manifest listing them."""

from __future__ import annotations

from functools import partial

from prefect.logging import get_run_logger

from flows._operation import Job, Output, operation_flow
from flows._requests import ask_all
from mediaflows import llm, translation
from mediaflows.errors import InputError
from mediaflows.languages import parse_language, same_language
from mediaflows.models import (
    QAReport,
    TranslateSrtDetails,
    TranslateSrtRequest,
    TranslationRef,
    TranslationReport,
)
from mediaflows.operations import TRANSLATE_SRT, llm_options, manifest_text, translate_srt_ids
from mediaflows.stages import Stage
from tasks.llm import translate_chunk
from tasks.progress import publish_translation_report
from tasks.store import find_output, read_text_output, store_text_output
from tasks.subtitles import read_profile_srt


@operation_flow(TRANSLATE_SRT)
def translate_srt(job: Job[TranslateSrtRequest]) -> Output:
    """Translate a profile SRT file into each target language with an LLM and store one SRT per
    language: the same cues and timecodes, the text re-wrapped to the language's line rules
    (42 characters a line for Latin scripts, 16 for Chinese, 2 lines), markup kept. The model
    sees cue numbers and text only, in chunks sent at once up to the `llm` limit; an invalid
    answer is asked again, then the chunk keeps its source text and is reported. A cue that
    is not in the target language (left as it was, another language) keeps its source text
    and counts as untranslated; a cue read faster than the language allows is counted.

    A language already stored for this SRT and these options is not asked again, and chunk
    answers are cached per language: adding a language translates only that one. A run where
    most chunks of a language got no valid answer fails and stores nothing."""
    settings, request = job.settings, job.request
    llm_part = llm_options(request.model, settings)  # the model resolved, the endpoint settings
    model = str(llm_part["model"])
    _, ids = translate_srt_ids(job.source, request, settings)
    job.progress.stage(Stage.UPLOAD_RECEIVED, "reading")
    parsed = read_profile_srt(job.source)
    job.progress.stage(Stage.PREPARING, "planning chunks")
    source = translation.source_language(parsed, request.source_language)
    for lang in request.target_languages:
        if source is not None and same_language(source, lang):
            how = "given" if request.source_language else "guessed from its text"
            raise InputError(
                f"{job.source.name} is in {lang} ({how}): not a target language"
                + ("" if request.source_language else "; pass source_language if it is not")
            )
    stored = {lang: find_output(job.profile, ids[lang]) for lang in request.target_languages}
    todo = [lang for lang, found in stored.items() if found is None]
    chunks = llm.plan_chunks(parsed.cues, settings.llm.chunk_cues, settings.llm.context_cues)
    limit = settings.orchestration.llm_limit
    job.progress.stage(Stage.CALLING_PROVIDER, f"translating 0/{len(chunks) * len(todo)} chunks")
    answers = ask_all(
        [((lang, c.index), partial(translate_chunk.submit, c, model, lang, source,
                                   request.sys_msg, request.glossary, limit))
         for lang in todo for c in chunks],
        model, limit, job.progress, "translating",
    )  # fmt: skip
    job.progress.stage(Stage.PROCESSING_RESULT, "checking")
    logger = get_run_logger()
    made: dict[str, tuple[str, QAReport, TranslationReport]] = {}
    for lang in todo:  # every language checked before any is stored: nothing half-written
        target = parse_language(lang)
        fixes = [answers[(lang, c.index)] for c in chunks]
        rendered = translation.render_translation(
            parsed, fixes, target, request.bilingual, request.normalise
        )
        report = translation.summarize(parsed, fixes, rendered, target, model, source)
        for problem in report.problems:
            logger.warning("%s: %s", lang, problem)
        translation.check_outcome(report, settings.llm.max_fallback_share)
        made[lang] = (rendered.srt, rendered.qa, report)
    job.progress.stage(Stage.PROCESSING_RESULT, "storing", 0.5)
    refs, texts = [], {}
    for lang in request.target_languages:
        found = stored[lang]
        if found is None:
            srt, qa, report = made[lang]
            found = store_text_output(
                job.profile,
                ids[lang],
                srt,
                name=f"{job.stem}.{lang}.srt",
                kind="subtitle",
                source=job.source,
                operation=TRANSLATE_SRT.name,
                options={**request.for_language(lang), **llm_part},
                tools={"llm": model, "prompt": translation.PROMPT_VERSION},
                details={"language": lang, "qa": qa.model_dump(mode="json"),
                         "translation": report.model_dump(mode="json")},
            )  # fmt: skip
        else:
            srt = read_text_output(found.file)
        details = found.file.details
        refs.append(TranslationRef(language=lang, file_id=found.file.id, qa=details["qa"],
                                   report=details["translation"]))  # fmt: skip
        texts[lang] = srt
    publish_translation_report(refs, f"{job.profile}/{job.source.name}")
    content = manifest_text(texts)
    manifest = store_text_output(
        job.profile,
        job.output_id,
        content,
        name=f"{job.stem}.translations.json",
        kind="other",
        source=job.source,
        operation=TRANSLATE_SRT.name,
        options={**request.model_dump(mode="json"), **llm_part},
        tools={"llm": model, "prompt": translation.PROMPT_VERSION},
        details=TranslateSrtDetails(source_language=source or "", translations=tuple(refs))
        .model_dump(mode="json"),
    )  # fmt: skip
    summary = "; ".join(translation.qa_line(r.language, r.qa, r.report) for r in refs) + (
        f" ({len(request.target_languages) - len(todo)} already stored)"
        if len(todo) < len(refs)
        else ""
    )
    return Output(manifest, content, summary)
