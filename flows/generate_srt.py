"""The ``generate_srt`` flow: a profile audio/video file → readable subtitles (SRT, and on
request WebVTT and JSON) stored in the profile, with a QA report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows._asr import transcribe_audio
from flows._operation import Job, Output, operation_flow
from mediaflows import translation, whisper
from mediaflows.errors import InputError
from mediaflows.languages import LANGUAGES
from mediaflows.media import MediaInfo
from mediaflows.models import (
    FileKind,
    GenerateSrtRequest,
    SrtDetails,
    StoredFile,
    TranslateSrtRequest,
    TranslateSrtResult,
    TranslationRef,
)
from mediaflows.operations import (
    GENERATE_SRT,
    generate_srt_ids,
    generate_srt_translation_ids,
    manifest_text,
)
from mediaflows.stages import Stage
from mediaflows.whisper import Transcription
from tasks import runtime
from tasks.progress import publish_qa_report, publish_translation_report
from tasks.store import store_text_output
from tasks.subtitles import build_subtitles


@operation_flow(GENERATE_SRT)
def generate_srt(job: Job[GenerateSrtRequest]) -> Output:
    """Transcribe a profile audio or video file and store subtitles built from the words: at most
    42 characters a line, 2 lines a cue, 20 characters a second, 0.83–7 s a cue (by default).

    The transcription is cached by content, options and model, so other cue rules or formats for
    the same file do not run the model again; the same request returns the stored SRT. A file
    whose audio ends early (truncated) is refused, not subtitled in part.

    With target languages, each translation is a child translate_srt run on the stored SRT
    (or, for English with `translation: whisper`, the model's own translate task), and a
    manifest listing the SRT and its translations is stored last."""
    request = job.request
    transcribe_request = request.transcribe_request()
    if request.translation == "whisper" and request.target_languages:
        model = whisper.model_name(transcribe_request, job.settings)
        if model.endswith(".en"):
            raise InputError(
                f"translation 'whisper' needs a multilingual model, not {model!r} (model: base)"
            )
    local, info = job.fetch_and_probe()
    transcription = transcribe_audio(job, local, info, transcribe_request)
    spoken = transcription.language
    if request.translation == "llm" and spoken in {
        t.split("-")[0] for t in request.target_languages
    }:
        raise InputError(
            f"{job.source.name}: the speech is in {spoken!r} (detected, probability "
            f"{transcription.language_probability:.2f}), a target language; leave it out "
            "or pass the spoken language (language)"
        )
    job.progress.stage(Stage.PROCESSING_RESULT, "building cues")
    subs = build_subtitles(transcription, request.rules, request.vtt, request.json_output)
    job.progress.stage(Stage.PROCESSING_RESULT, "storing", 0.5)
    srt_id, vtt_id, json_id = generate_srt_ids(job.source, request, job.settings)
    tool = whisper.tool_version(transcribe_request, job.settings)

    def store(
        file_id: str, text: str, suffix: str, kind: FileKind, details: dict[str, Any] | None = None
    ) -> StoredFile:
        return store_text_output(
            job.profile,
            file_id,
            text,
            name=f"{job.stem}.{suffix}",
            kind=kind,
            source=job.source,
            operation=GENERATE_SRT.name,
            options=request.model_dump(mode="json"),
            tools={"whisper": tool},
            details=details,
        )

    # Extra formats first, the SRT last: its presence means the whole output is complete.
    if subs.vtt is not None:
        store(vtt_id, subs.vtt, "vtt", "subtitle")
    if subs.json_text is not None:
        store(json_id, subs.json_text, "json", "transcript")
    details = SrtDetails(
        language=transcription.language,
        language_probability=round(transcription.language_probability, 4),
        duration=transcription.duration,
        qa=subs.qa,
        vtt_file_id=vtt_id if subs.vtt is not None else None,
        json_file_id=json_id if subs.json_text is not None else None,
        dropped_segments=transcription.dropped,
        asr=transcription.asr,
    )
    srt = store(srt_id, subs.srt, "srt", "subtitle", details.model_dump(mode="json"))
    publish_qa_report(subs.qa, f"{job.profile}/{job.source.name}")
    if not request.target_languages:
        return Output(srt, subs.srt, f"{subs.qa.cues} cues")
    if request.translation == "whisper":
        refs, texts = _whisper_english(job, local, info, transcription, store)
    else:
        job.progress.stage(Stage.PROCESSING_RESULT, "translating (child runs)", 0.6)
        from flows.translate_srt import translate_srt  # a flow: imported where it runs

        known = transcription.language if transcription.language in LANGUAGES else None
        child: TranslateSrtResult = runtime.run_subflow(
            translate_srt,
            profile=job.profile,
            file_id=srt.file.id,
            request=TranslateSrtRequest(
                target_languages=request.target_languages,
                source_language=known,
                model=request.translation_model,
                bilingual=request.bilingual,
            ),
        )
        refs = [TranslationRef.model_validate(t.model_dump(include={"language", "file_id", "qa",
                                                                    "report"}))
                for t in child.translations]  # fmt: skip
        texts = {t.language: t.content for t in child.translations}
    manifest_id, _ = generate_srt_translation_ids(job.source, request, job.settings)
    publish_translation_report(refs, f"{job.profile}/{job.source.name}")
    manifest = store(
        manifest_id,
        manifest_text(texts, subs.srt),
        "subtitles.json",
        "other",
        details.model_copy(update={"srt_file_id": srt.file.id, "translations": tuple(refs)})
        .model_dump(mode="json"),
    )  # fmt: skip
    summary = "; ".join([f"{subs.qa.cues} cues"] + [
        translation.qa_line(r.language, r.qa, r.report) for r in refs
    ])  # fmt: skip
    return Output(manifest, manifest_text(texts, subs.srt), summary)


def _whisper_english(
    job: Job[GenerateSrtRequest],
    local: Path,
    info: MediaInfo,
    spoken: Transcription,
    store: Callable[..., StoredFile],
) -> tuple[list[TranslationRef], dict[str, str]]:
    """English subtitles from the model's own translate task (a second pass over the audio,
    cached like the first), stored as ``<name>.en.srt``."""
    request = job.request
    english_request = request.transcribe_request().model_copy(update={"task": "translate"})
    if spoken.language == "en":
        raise InputError(f"{job.source.name}: the speech is in English already")
    english = transcribe_audio(job, local, info, english_request)
    subs = build_subtitles(english, request.rules, False, False)
    _, english_id = generate_srt_translation_ids(job.source, request, job.settings)
    stored = store(english_id, subs.srt, "en.srt", "subtitle",
                   {"language": "en", "qa": subs.qa.model_dump(mode="json")})  # fmt: skip
    return [TranslationRef(language="en", file_id=stored.file.id, qa=subs.qa)], {"en": subs.srt}
