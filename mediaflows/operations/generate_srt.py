"""``generate_srt``: a profile audio/video file → readable subtitles (SRT, and on request in other
formats: WebVTT, ASS, TTML … and the transcript as JSON) with a QA report; with target
languages, their translations too, listed in a manifest stored last.

The procedure, step by step as the flow runs it: :func:`check_request` (before any work), the
transcription, :func:`check_spoken` (a target that is the spoken language is refused),
:func:`subtitle_files` (the cues and every format, the SRT last), then for translations either a
child ``translate_srt`` run on the stored SRT (:func:`translation_request`,
:func:`translations_from`) or Whisper's own English (:func:`english_request`,
:func:`english_file`, :func:`english_formats`, :func:`english_refs`), and the
:func:`manifest`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from pydantic import Field

from mediaflows.errors import InputError, MediaError
from mediaflows.ids import output_file_id
from mediaflows.languages import parse_language, same_language
from mediaflows.media import MediaInfo
from mediaflows.models import (
    ExtraFormat,
    FileKind,
    GenerateSrtRequest,
    PackageRequest,
    ProfileFile,
    SrtDetails,
    SrtResult,
    StoredFile,
    TranscribeRequest,
    TranslateSrtRequest,
    TranslateSrtResult,
    TranslationRef,
)
from mediaflows.operations import spec
from mediaflows.operations.spec import OperationSpec, OutputIds, TextOutput
from mediaflows.operations.translate_srt import (
    files_of,
    linked_files,
    manifest_text,
    translations_of,
)
from mediaflows.settings import Settings
from mediaflows.speech import Transcription, model_name, tool_version
from mediaflows.speech.guard import GUARD_VERSION
from mediaflows.subtitles import RenderedSubtitles, render, translation
from mediaflows.subtitles.chunks import llm_options
from mediaflows.subtitles.cues import CUES_VERSION
from mediaflows.subtitles.formats import FORMATS, write_subtitles
from mediaflows.subtitles.lines import rules_for


class GenerateSrtIds(OutputIds):
    """The ids of every output: the SRT and its other formats (WebVTT, JSON, ASS … the same
    whatever languages the request also translates into: adding a language later does not
    transcribe again), the manifest, and the English SRT of Whisper's own translate task and
    its other formats. ``main`` is the manifest with target languages, else the SRT."""

    srt: str
    formats: dict[str, str] = Field(default_factory=dict)
    manifest: str
    english: str
    english_formats: dict[str, str] = Field(default_factory=dict)


def output_ids(
    source: ProfileFile, request: GenerateSrtRequest, settings: Settings
) -> GenerateSrtIds:
    """Every id of the run, from the input's content, the request and the model (the LLM's
    options too for the manifest of LLM translations)."""
    tool = f"{tool_version(request.transcribe_request(), settings)}|{CUES_VERSION}|{GUARD_VERSION}"
    subtitles = request.subtitle_options()

    def file_id(variant: str) -> str:
        return output_file_id(source.sha256, "generate_srt", subtitles, tool, variant)

    srt, english = file_id("srt"), file_id("whisper-en")
    options: dict[str, Any] = request.id_options()
    if request.translation == "llm" and request.target_languages:
        options["llm"] = llm_options(request.translation_model, settings)
    manifest = output_file_id(source.sha256, "generate_srt", options, tool, "manifest")
    return GenerateSrtIds(
        main=manifest if request.target_languages else srt,
        srt=srt,
        formats={fmt: file_id(fmt) for fmt in request.extra_formats()},
        manifest=manifest,
        english=english,
        english_formats={fmt: file_id(f"whisper-en-{fmt}") for fmt in request.subtitle_formats()},
    )


def _result(
    stored: StoredFile,
    details: SrtDetails,
    content: str | None,
    cached: bool,
    urls: Mapping[str, str],
) -> SrtResult:
    """An SRT result; from the manifest when the request had target languages (the result is
    then the source SRT's, with the translations)."""
    plain = spec.result_builder(SrtResult, "file_id", "content")
    if details.srt_file_id is None:
        return plain(stored, details, content, cached, urls)
    data: dict[str, Any] = json.loads(content) if content else {"srt": "", "translations": {}}
    unlisted = details.model_copy(update={"translations": ()})
    return plain(stored, unlisted, data["srt"], cached, urls).model_copy(
        update={
            "file_id": details.srt_file_id,
            "media_url": urls[details.srt_file_id],
            "manifest_id": stored.file.id,
            "translations": translations_of(details.translations, data["translations"], urls),
            "package_url": urls.get(details.package_file_id or ""),
        }
    )


def _linked(details: SrtDetails) -> tuple[str, ...]:
    if details.srt_file_id is None:
        return tuple(details.files.values())
    packaged = (details.package_file_id,) if details.package_file_id else ()
    return (details.srt_file_id, *details.files.values(), *linked_files(details.translations),
            *packaged)  # fmt: skip


GENERATE_SRT: OperationSpec[GenerateSrtRequest, SrtResult, SrtDetails, GenerateSrtIds] = (
    OperationSpec(
        "generate_srt", "audio/video → subtitles (SRT, VTT, ASS, TTML, JSON …)", GenerateSrtRequest,
        SrtResult, SrtDetails, input_kinds=("video", "audio"),
        stages=spec.LOCAL_OR_PROVIDER_WORK, output_ids=output_ids, build_result=_result,
        content=spec.as_is, linked=_linked, cli_flags={"target_languages": "--to"},
    )
)  # fmt: skip


def check_request(request: GenerateSrtRequest, settings: Settings) -> None:
    """Refuse, before any work, what cannot be done: Whisper's own translation on an
    English-only model."""
    if request.translation == "whisper" and request.target_languages:
        model = model_name(request.transcribe_request(), settings)
        if model.endswith(".en"):
            raise InputError(
                f"translation 'whisper' needs a multilingual model, not {model!r} (model: base)"
            )


def check_spoken(transcription: Transcription, request: GenerateSrtRequest, name: str) -> None:
    """Refuse a target language that is the language heard (the request named none)."""
    spoken = transcription.language
    targets = request.target_languages if request.translation == "llm" else ()
    if any(same_language(spoken, target) for target in targets):
        raise InputError(
            f"{name}: the speech is in {spoken!r} ({_how_sure(transcription)}), a target "
            "language; leave it out or pass the spoken language (language)"
        )


def _how_sure(transcription: Transcription) -> str:
    probability = transcription.language_probability
    return "detected" if probability is None else f"detected, probability {probability:.2f}"


def _tools(request: GenerateSrtRequest, settings: Settings) -> dict[str, str]:
    """What made every file of a run (the model's version), computed once a run."""
    return {"whisper": tool_version(request.transcribe_request(), settings)}


def _file(
    source: ProfileFile,
    request: GenerateSrtRequest,
    tools: dict[str, str],
    file_id: str,
    suffix: str,
    kind: FileKind,
    text: str,
    details: SrtDetails | None = None,
) -> TextOutput:
    return GENERATE_SRT.text_output(
        source, file_id, suffix, kind, text, options=request.id_options(), tools=tools,
        details=details,
    )  # fmt: skip


def _format_files(
    source: ProfileFile,
    request: GenerateSrtRequest,
    tools: dict[str, str],
    ids: Mapping[str, str],
    subs: RenderedSubtitles,
    language: str,
    prefix: str = "",
) -> dict[str, TextOutput]:
    """The cues in each of the other formats (``ids``: by format), as they are stored:
    ``<name>.<prefix><extension>``; JSON is the transcript (segments and words)."""
    files = {}
    for fmt, file_id in ids.items():
        if fmt == "json":
            assert subs.json_text is not None
            files[fmt] = _file(source, request, tools, file_id, f"{prefix}json", "transcript",
                               subs.json_text)  # fmt: skip
            continue
        text = write_subtitles(subs.cues, fmt, language)
        suffix = prefix + FORMATS[fmt].extensions[0].lstrip(".")
        files[fmt] = _file(source, request, tools, file_id, suffix, "subtitle", text)
    return files


def subtitle_files(
    source: ProfileFile,
    request: GenerateSrtRequest,
    ids: GenerateSrtIds,
    transcription: Transcription,
    settings: Settings,
) -> tuple[RenderedSubtitles, list[TextOutput]]:
    """The cues in every requested format, and the files to store in order: the other formats
    first, the SRT last (its presence means the whole output is complete)."""
    rules = rules_for(transcription.language, request.rules)
    subs = render(transcription, rules, json_output="json" in request.extra_formats())
    tools = _tools(request, settings)
    others = _format_files(source, request, tools, ids.formats, subs, transcription.language)
    files = list(others.values())
    details = SrtDetails(
        language=transcription.language,
        language_probability=transcription.language_probability,
        language_doubtful=transcription.language_doubtful,
        duration=transcription.duration,
        qa=subs.qa,
        vtt_file_id=ids.formats.get("vtt"),
        json_file_id=ids.formats.get("json"),
        files={fmt: f.file_id for fmt, f in others.items()},
        dropped_segments=transcription.dropped,
        asr=transcription.asr,
    )
    files.append(_file(source, request, tools, ids.srt, "srt", "subtitle", subs.srt, details))
    return subs, files


def translation_request(
    request: GenerateSrtRequest, transcription: Transcription
) -> TranslateSrtRequest:
    """What the child translate_srt run is asked: the targets, the model, the layout, and the
    language heard as the source (when it is one mediaflows knows)."""
    try:
        known: str | None = parse_language(transcription.language).tag
    except InputError:  # a language Whisper knows and mediaflows does not: guessed from the text
        known = None
    others = request.subtitle_formats()
    return TranslateSrtRequest(
        target_languages=request.target_languages,
        source_language=known,
        model=request.translation_model,
        bilingual=request.bilingual,
        # WebVTT by its flag, as before formats existed: the child's manifest keeps its id.
        vtt="vtt" in others,
        formats=cast(tuple[ExtraFormat, ...], tuple(f for f in others if f != "vtt")),
        review=request.review,
        review_timeout_s=request.review_timeout_s,
        review_timeout=request.review_timeout,
    )


def translations_from(
    child: TranslateSrtResult,
) -> tuple[tuple[TranslationRef, ...], dict[str, str], dict[str, str]]:
    """What the manifest lists of a child translate_srt run's result: a reference per language,
    its text, and its fresh URL (by file id)."""
    refs = tuple(
        TranslationRef(
            language=t.language,
            file_id=t.file_id,
            qa=t.qa,
            report=t.report,
            vtt_file_id=t.vtt_file_id,
            files=t.files,
        )
        for t in child.translations
    )
    texts = {t.language: t.content for t in child.translations}
    urls = {t.file_id: t.media_url for t in child.translations}
    urls |= {t.files[fmt]: url for t in child.translations for fmt, url in t.urls.items()
             if fmt in t.files}  # fmt: skip
    return refs, texts, urls


def english_request(
    request: GenerateSrtRequest, spoken: Transcription, name: str
) -> TranscribeRequest:
    """The model's own translate task over the same audio (a second pass, cached like the
    first); :class:`InputError` when the speech is English already."""
    if spoken.language == "en":
        raise InputError(f"{name}: the speech is in English already")
    return request.transcribe_request().model_copy(update={"task": "translate"})


def english_file(
    source: ProfileFile,
    request: GenerateSrtRequest,
    ids: GenerateSrtIds,
    english: Transcription,
    settings: Settings,
) -> tuple[RenderedSubtitles, TextOutput]:
    """Whisper's English, as cues and as the file stored (``<name>.en.srt``)."""
    subs = render(english, rules_for("en", request.rules))
    details = SrtDetails(language="en", qa=subs.qa)
    tools = _tools(request, settings)
    return subs, _file(source, request, tools, ids.english, "en.srt", "subtitle", subs.srt, details)


def english_formats(
    source: ProfileFile,
    request: GenerateSrtRequest,
    ids: GenerateSrtIds,
    english: RenderedSubtitles,
    settings: Settings,
) -> dict[str, TextOutput]:
    """Whisper's English in the other subtitle formats asked for (``<name>.en.vtt``,
    ``Language: en`` …), by format."""
    tools = _tools(request, settings)
    return _format_files(source, request, tools, ids.english_formats, english, "en", "en.")


def english_refs(
    english: RenderedSubtitles, stored: StoredFile, others: Mapping[str, StoredFile]
) -> tuple[tuple[TranslationRef, ...], dict[str, str], dict[str, str]]:
    """What the manifest lists of Whisper's English: its reference (no LLM report, its other
    formats), its text, and fresh URLs (by file id)."""
    files = {fmt: found.file.id for fmt, found in others.items()}
    ref = TranslationRef(language="en", file_id=stored.file.id, qa=english.qa,
                         vtt_file_id=files.get("vtt"), files=files)  # fmt: skip
    urls = {f.file.id: f.media_url for f in (stored, *others.values())}
    return (ref,), {"en": english.srt}, urls


def check_package(request: GenerateSrtRequest, info: MediaInfo, name: str) -> None:
    """Refuse ``package`` for a file without a video stream, before any work."""
    if request.package and info.video is None:
        raise MediaError(name, "has no video stream to package the subtitles with")


def package_request(srt_file_id: str, refs: Sequence[TranslationRef]) -> PackageRequest:
    """What the child package run is asked: a track per target language, in the request's
    order (the first the default), then the spoken language's SRT."""
    return PackageRequest(subtitles=(*(r.file_id for r in refs), srt_file_id))


def manifest(
    source: ProfileFile,
    request: GenerateSrtRequest,
    ids: GenerateSrtIds,
    srt: TextOutput,
    refs: Sequence[TranslationRef],
    texts: Mapping[str, str],
    package_file_id: str | None = None,
) -> TextOutput:
    """The manifest stored last (``<name>.subtitles.json``): the SRT, every translation, and the
    packaged MP4 if there is one."""
    assert isinstance(srt.details, SrtDetails)
    details = srt.details.model_copy(update={"srt_file_id": srt.file_id,
                                             "translations": tuple(refs),
                                             "package_file_id": package_file_id})  # fmt: skip
    spoken = details.language
    files = [{"language": spoken, "format": "srt", "file_id": srt.file_id}]
    files += [{"language": spoken, "format": fmt, "file_id": file_id}
              for fmt, file_id in details.files.items()]  # fmt: skip
    files += files_of(refs)
    if package_file_id:
        files.append({"language": "mul", "format": "mp4", "file_id": package_file_id})
    text = manifest_text(texts, srt.text, files)
    return _file(source, request, srt.tools, ids.manifest, "subtitles.json", "other", text,
                 details)  # fmt: skip


def summary(subs: RenderedSubtitles, refs: Sequence[TranslationRef] = ()) -> str:
    """The run's last word in the UI: the cues, and a line per translation."""
    return "; ".join(
        [f"{subs.qa.cues} cues"] + [translation.qa_line(r.language, r.qa, r.report) for r in refs]
    )
