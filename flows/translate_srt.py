"""The ``translate_srt`` flow: a profile SRT file → one SRT (and on request a WebVTT) per target
language, the same cues and times, stored in the profile with a manifest listing them."""

from __future__ import annotations

from functools import partial

from prefect.logging import get_run_logger

from flows._operation import Job, Output, operation_flow
from flows._requests import ask_all
from flows._review import kept_before, reviewed
from mediaflows.models import TranslateSrtRequest
from mediaflows.operations import translate_srt as procedure
from mediaflows.operations.translate_srt import TRANSLATE_SRT, TranslateSrtIds
from mediaflows.stages import Stage
from tasks.llm import translate_chunk
from tasks.progress import publish_translation_report
from tasks.store import find_output, read_text_output
from tasks.subtitles import read_profile_subtitles


@operation_flow(TRANSLATE_SRT)
def translate_srt(job: Job[TranslateSrtRequest, TranslateSrtIds]) -> Output:
    """Translate a profile SRT file into each target language with an LLM and store one SRT per
    language: the same cues and timecodes, the text re-wrapped to the language's line rules
    (42 characters a line for Latin scripts, 16 for Chinese, 2 lines), markup kept. The model
    sees cue numbers and text only, in chunks sent at once up to the `llm` limit; an invalid
    answer is asked again, then the chunk keeps its source text and is reported. A cue that
    is not in the target language (left as it was, another language) keeps its source text
    and counts as untranslated. Each cue goes with its character budget (the language's
    characters a second × its duration); a cue whose answer is over it is asked once more to
    condense, and one still over is kept and counted (before and after in the report). With
    `vtt`, each language also gets a WebVTT file (its language in the header), made from its SRT.

    A language already stored for this SRT and these options is not asked again, and chunk
    answers are cached per language: adding a language translates only that one. A run where
    most chunks of a language got no valid answer fails and stores nothing.

    With `review`, the run waits for a reviewer on the flagged cues (awaiting_review) and
    stores their text, the times untouched; the manifest records the review."""
    request, limit = job.request, job.settings.orchestration.llm_limit
    job.progress.stage(Stage.UPLOAD_RECEIVED, "reading")
    parsed = read_profile_subtitles(job.profile, job.source, request.track, job.workspace)
    job.progress.stage(Stage.PREPARING, "planning chunks")
    plan = procedure.plan(parsed, request, job.settings, job.source.name)
    stored = {lang: find_output(job.profile, job.ids.languages[lang])
              for lang in request.target_languages}  # fmt: skip
    todo = [lang for lang, found in stored.items() if found is None]
    job.progress.stage(Stage.CALLING_PROVIDER,
                       f"translating 0/{len(plan.chunks) * len(todo)} chunks")  # fmt: skip
    answers = ask_all(
        [((lang, c.index), partial(translate_chunk.submit, c, plan.model, lang, plan.source,
                                   request.sys_msg, request.glossary, limit, request.condense))
         for lang in todo for c in plan.chunks],
        plan.model, limit, job.progress, "translating", kept_before(job),
    )  # fmt: skip
    job.progress.stage(Stage.PROCESSING_RESULT, "checking")
    made = procedure.finish(plan, parsed, answers, todo, request)
    for lang, translated in made.items():
        for problem in translated.report.problems:
            get_run_logger().warning("%s: %s", lang, problem)
    procedure.check(made, job.settings)  # every language before any is stored
    again = partial(procedure.finish, plan, parsed, answers, todo, request)
    made, review = reviewed(job, procedure.flagged(parsed, made), made, again, answers)
    job.progress.stage(Stage.PROCESSING_RESULT, "storing", 0.5)
    for lang in todo:
        stored[lang] = job.store(
            procedure.translation_file(job.source, request, plan, job.ids, lang, made[lang])
        )
    done = {lang: found for lang, found in stored.items() if found is not None}  # every one
    texts = {lang: made[lang].srt if lang in made else read_text_output(found.file)
             for lang, found in done.items()}  # fmt: skip
    others = {(lang, fmt): find_output(job.profile, file_id) or job.store(
                  procedure.format_file(job.source, request, plan, job.ids, lang, fmt, texts[lang]))
              for fmt, ids in job.ids.formats.items() for lang, file_id in ids.items()}  # fmt: skip
    refs = [procedure.ref_of(lang, found, {f: o for (lg, f), o in others.items() if lg == lang})
            for lang, found in done.items()]  # fmt: skip
    publish_translation_report(refs, job.title)
    manifest = procedure.manifest(job.source, request, plan, job.ids, refs, texts, review)
    urls = {found.file.id: found.media_url for found in (*done.values(), *others.values())}
    already = len(request.target_languages) - len(todo)
    return Output(job.store(manifest), manifest.text, procedure.summary(refs, already), urls)
