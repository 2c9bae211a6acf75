"""``package``: a profile video (or the ``convert`` output) and chosen SRT outputs of it → one
MP4 with a soft ``mov_text`` track per language (ISO 639-2 tag, its name in its language, the
first the default), the moov atom first, video and audio copied; optionally one language burnt
into the picture (the video re-encoded). Stored in the same profile.

The procedure, step by step as the flow runs it: :func:`choose` (each SRT belongs to this video
and has a language, one track a language, the burnt-in language among them), :func:`check_video`,
:func:`tracks`
(each SRT written clean into the workspace), the packaging (``media.package``), :func:`mp4`;
and :func:`preview_lines` for the preview frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaflows.errors import InputError, MediaError
from mediaflows.ids import output_file_id
from mediaflows.languages import same_language
from mediaflows.media.package import PackagedMedia, Track, track_language
from mediaflows.media.probe import MediaInfo
from mediaflows.media.tools import ffmpeg_version
from mediaflows.models import (
    PackageDetails,
    PackageRequest,
    PackageResult,
    PackageTrack,
    ProfileFile,
)
from mediaflows.operations.spec import (
    LOCAL_WORK,
    FileOutput,
    OperationSpec,
    OutputIds,
    result_builder,
    stem_of,
)
from mediaflows.settings import Settings
from mediaflows.subtitles.formats import write_srt
from mediaflows.subtitles.records import ParsedSrt


def output_ids(source: ProfileFile, request: PackageRequest, settings: Settings) -> OutputIds:
    """The MP4's id: the video's content, the request (the SRTs' ids name their content) and
    the ffmpeg version."""
    tool = ffmpeg_version(settings.media.ffmpeg_binary)
    return OutputIds(
        main=output_file_id(source.sha256, "package", request.model_dump(mode="json"), tool)
    )


PACKAGE: OperationSpec[PackageRequest, PackageResult, PackageDetails, OutputIds] = OperationSpec(
    "package", "video + SRT outputs → MP4 with a subtitle track per language",
    PackageRequest, PackageResult, PackageDetails, input_kinds=("video",), stages=LOCAL_WORK,
    output_ids=output_ids, build_result=result_builder(PackageResult, "file_id"),
    cli_flags={"subtitles": "--subtitle"},
)  # fmt: skip

#: How far up a chain of outputs :func:`root_of` looks (an SRT of a translation of a fixed SRT
#: of a converted video is 4 steps).
_MAX_CHAIN = 16


def root_of(file: ProfileFile, find: Callable[[str], ProfileFile | None]) -> str:
    """The id of the imported file ``file`` was made from, following ``source_file_id`` (a
    translation → its SRT → the video it was made from → the imported video)."""
    for _ in range(_MAX_CHAIN):
        if file.source_file_id is None:
            return file.id
        parent = find(file.source_file_id)
        if parent is None:  # its source was deleted: the chain ends here
            return file.source_file_id
        file = parent
    return file.id


@dataclass(frozen=True)
class Chosen:
    """One SRT that becomes a track: its stored file and its language."""

    file: ProfileFile
    language: str


def choose(
    source: ProfileFile,
    source_root: str,
    subtitles: Sequence[tuple[ProfileFile, str]],
    request: PackageRequest,
) -> list[Chosen]:
    """The tracks, in the request's order, from each SRT and the root it was made from;
    :class:`InputError` for an SRT that is not a subtitle output of this video, one without a
    language, two in one language, or a ``burn_in`` language no track has."""
    chosen: list[Chosen] = []
    for file, root in subtitles:
        if file.kind != "subtitle" or file.suffix != ".srt":
            raise InputError(f"{file.name} ({file.id}) is not an SRT file; package takes SRTs")
        if root != source_root:
            raise InputError(
                f"{file.name} ({file.id}) holds subtitles of another file, not of {source.name}"
            )
        language = str(file.details.get("language") or "")
        if not language:
            raise InputError(
                f"{file.name} ({file.id}) has no language recorded; package takes the SRT "
                "outputs of generate_srt, translate_srt and fix_srt"
            )
        twin = next((c for c in chosen if same_language(c.language, language)), None)
        if twin is not None:
            raise InputError(
                f"two subtitle files in {language}: {twin.file.id} and {file.id}; one a language"
            )
        chosen.append(Chosen(file, language))
    if request.burn_in is not None and not any(
        same_language(c.language, request.burn_in) for c in chosen
    ):
        have = ", ".join(c.language for c in chosen)
        raise InputError(f"burn_in {request.burn_in}: no subtitle track in it (tracks: {have})")
    return chosen


def check_video(info: MediaInfo, name: str) -> None:
    """:class:`MediaError` for a file without a video stream: nothing to package subtitles
    with."""
    if info.video is None:
        raise MediaError(name, "has no video stream to package subtitles with")


def tracks(
    chosen: Sequence[Chosen], parsed: Sequence[ParsedSrt], workspace: Path, duration: float
) -> list[Track]:
    """Each chosen SRT written into the workspace as clean UTF-8 SubRip (whatever its encoding,
    BOM or line ends were), as ffmpeg reads it. Cues are cut at the video's end (a cue past it
    would make the MP4 longer than its picture: players would show a timeline past the end)."""
    workspace.mkdir(parents=True, exist_ok=True)
    end_ms = int(duration * 1000)
    made = []
    for i, (choice, srt) in enumerate(zip(chosen, parsed, strict=True)):
        cues = [
            cue.model_copy(update={"end_ms": min(cue.end_ms, end_ms)})
            for cue in srt.cues
            if cue.start_ms < end_ms
        ]
        if not cues:
            raise InputError(
                f"{choice.file.name} ({choice.file.id}): no cue within the video's {duration:.1f} s"
            )
        path = workspace / f"track-{i}.srt"
        path.write_text(write_srt(cues), encoding="utf-8")
        made.append(Track(path, choice.language))
    return made


def burn_in_track(made: Sequence[Track], request: PackageRequest) -> Track | None:
    """The track to draw into the picture, if the request names one."""
    if request.burn_in is None:
        return None
    return next(t for t in made if same_language(t.language, request.burn_in))


def mp4(
    source: ProfileFile,
    request: PackageRequest,
    ids: OutputIds,
    chosen: Sequence[Chosen],
    packaged: PackagedMedia,
) -> FileOutput:
    """The packaged MP4 as it is stored: ``<name>.subtitled.mp4``, with its tracks."""
    listed = tuple(
        PackageTrack(language=c.language, file_id=c.file.id, code=track_language(c.language)[0],
                     title=track_language(c.language)[1], default=i == 0)
        for i, c in enumerate(chosen)
    )  # fmt: skip
    details = PackageDetails(
        mode=packaged.mode, duration=packaged.duration, tracks=listed, burn_in=request.burn_in
    )
    options, tools = request.model_dump(mode="json"), {"ffmpeg": packaged.tool}
    name = f"{stem_of(source)}.subtitled.mp4"
    return FileOutput(ids.main, name, PACKAGE.name, options, tools, details, packaged.path)


def preview_lines(
    chosen: Sequence[Chosen], parsed: Sequence[ParsedSrt], at: float
) -> list[tuple[str, str]]:
    """Each language's cue at ``at`` seconds (or, where none is shown then, its cue nearest to
    it), for the preview frame."""
    at_ms = at * 1000
    lines = []
    for choice, srt in zip(chosen, parsed, strict=True):
        cue = min(
            srt.cues,
            key=lambda c: 0 if c.start_ms <= at_ms <= c.end_ms else min(
                abs(c.start_ms - at_ms), abs(c.end_ms - at_ms)
            ),
        )  # fmt: skip
        lines.append((choice.language, cue.text))
    return lines


def summary(packaged: PackagedMedia, chosen: Sequence[Chosen], request: PackageRequest) -> str:
    """The run's last word in the UI."""
    languages = ", ".join(c.language for c in chosen)
    how = "streams copied" if request.burn_in is None else f"{request.burn_in} burnt in"
    return f"{len(chosen)} subtitle tracks ({languages}), {how}, {packaged.duration:.1f} s"
