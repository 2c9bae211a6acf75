"""The ``generate_srt`` flow: a profile audio/video file → readable subtitles (SRT, and on
request other formats and the JSON transcript) stored in the profile, with a QA report."""

from __future__ import annotations

from flows._operation import Job, Output, operation_flow
from flows._speech import transcribe_audio
from flows.package import package
from flows.translate_srt import translate_srt
from mediaflows.models import GenerateSrtRequest, PackageResult, TranslateSrtResult
from mediaflows.operations import generate_srt as procedure
from mediaflows.operations.generate_srt import GENERATE_SRT, GenerateSrtIds
from mediaflows.stages import Stage
from tasks import prefect_adapter as adapter
from tasks.progress import publish_qa_report, publish_translation_report


@operation_flow(GENERATE_SRT)
def generate_srt(job: Job[GenerateSrtRequest, GenerateSrtIds]) -> Output:
    """Transcribe a profile audio or video file and store subtitles built from the words: at most
    42 characters a line, 2 lines a cue, 20 characters a second, 0.83–7 s a cue (by default).

    The transcription is cached by content, options and model, so other cue rules or formats for
    the same file do not run the model again; the same request returns the stored SRT. A file
    whose audio ends early (truncated) is refused, not subtitled in part.

    With target languages, each translation is a child translate_srt run on the stored SRT
    (or, for English with `translation: whisper`, the model's own translate task), and a
    manifest listing the SRT and its translations is stored last. With `package`, a child
    package run makes one MP4 of the video with a subtitle track per target language and the
    SRT, listed in the manifest too."""
    request, source, settings = job.request, job.source, job.settings
    procedure.check_request(request, settings)
    local, info = job.fetch_and_probe()
    procedure.check_package(request, info, source.name)
    heard = transcribe_audio(job, local, info, request.transcribe_request())
    procedure.check_spoken(heard, request, source.name)
    job.progress.stage(Stage.PROCESSING_RESULT, "building cues")
    subs, files = procedure.subtitle_files(source, request, job.ids, heard, settings)
    job.progress.stage(Stage.PROCESSING_RESULT, "storing", 0.5)
    stored = [job.store(f) for f in files]  # the other formats first, the SRT last
    srt, formats = stored[-1], {f.file.id: f.media_url for f in stored[:-1]}
    publish_qa_report(subs.qa, job.title)
    if not request.target_languages:
        return Output(srt, subs.srt, procedure.summary(subs), formats)
    if request.translation == "whisper":
        english_request = procedure.english_request(request, heard, source.name)
        english = transcribe_audio(job, local, info, english_request)
        english_subs, english_srt = procedure.english_file(source, request, job.ids, english,
                                                           settings)  # fmt: skip
        others = procedure.english_formats(source, request, job.ids, english_subs, settings)
        stored_others = {fmt: job.store(f) for fmt, f in others.items()}
        refs, texts, urls = procedure.english_refs(english_subs, job.store(english_srt),
                                                   stored_others)  # fmt: skip
    else:
        job.progress.stage(Stage.PROCESSING_RESULT, "translating (child runs)", 0.6)
        child: TranslateSrtResult = adapter.run_subflow(
            translate_srt, profile=job.profile, file_id=srt.file.id,
            request=procedure.translation_request(request, heard),
        )  # fmt: skip
        refs, texts, urls = procedure.translations_from(child)
    publish_translation_report(refs, job.title)
    packaged: PackageResult | None = None
    if request.package:
        job.progress.stage(Stage.PROCESSING_RESULT, "packaging (child run)", 0.8)
        tracks = procedure.package_request(srt.file.id, refs)
        packaged = adapter.run_subflow(package, profile=job.profile, file_id=source.id,
                                       request=tracks)  # fmt: skip
        urls = {**urls, packaged.file_id: packaged.media_url}
    manifest = procedure.manifest(source, request, job.ids, files[-1], refs, texts,
                                  packaged.file_id if packaged else None)  # fmt: skip
    return Output(job.store(manifest), manifest.text, procedure.summary(subs, refs),
                  {**urls, **formats, srt.file.id: srt.media_url})  # fmt: skip
