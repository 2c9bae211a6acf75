"""Reading a profile's subtitle files, as Prefect tasks (building, merging and rendering cues are
plain core calls: pure, fast and never transient, a task run would cost the server more)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from mediaflows.media import tracks
from mediaflows.media.probe import probe
from mediaflows.media.tools import ffmpeg_version
from mediaflows.models import PackageRequest, ProfileFile
from mediaflows.operations import package
from mediaflows.operations.spec import stem_of
from mediaflows.settings import get_settings
from mediaflows.store import ProfileStore
from mediaflows.subtitles import ParsedSrt, read_subtitles
from tasks.retry import RETRYING


@task(name="read_profile_subtitles", cache_policy=NONE, **RETRYING)
def read_profile_subtitles(
    profile: str, file: ProfileFile, track: str | None, workspace: Path
) -> ParsedSrt:
    """The cues of a profile subtitle file in any format the table reads (SRT, WebVTT, ASS/SSA,
    TTML/DFXP, SBV; the format from its content), whatever its encoding, line ends or tags; or,
    with ``track`` (a language such as ``eng``, or a number from 0), those of that subtitle
    track of a profile video (:func:`extracted_track`)."""
    store = ProfileStore.from_settings()
    if track is None:
        return read_subtitles(store.read_bytes(file), file.name)
    stored, language = extracted_track(store, profile, file, track, workspace)
    parsed = read_subtitles(store.read_bytes(stored), stored.name)
    return parsed.model_copy(update={"language": parsed.language or language})


def extracted_track(
    store: ProfileStore, profile: str, video: ProfileFile, wanted: str, workspace: Path
) -> tuple[ProfileFile, str | None]:
    """The subtitle track ``wanted`` of ``video`` as a profile file of its own (named
    ``<video>.<language>.<format>``, operation ``extract_track``, its id from the video's content
    and the stream), taken out by ffmpeg the first time, found in the store after; and the
    track's language. The tracks the import listed are used when it listed them, so a track
    taken out before needs no copy of the video."""
    listed = tracks.listed_tracks(video.details)
    local: Path | None = None
    if listed is None:
        workspace.mkdir(parents=True, exist_ok=True)
        local = store.local_file(video) or store.stage(video, workspace)
        listed = tracks.subtitle_tracks(probe(local, video.name))
    track = tracks.choose_track(listed, wanted, video.name)
    settings = get_settings()
    options = {"stream": track.stream, "codec": track.codec}
    tool = ffmpeg_version(settings.media.ffmpeg_binary)
    file_id = tracks.track_file_id(video.sha256, options)
    found = store.find(profile, file_id)
    if found is not None:
        return found, track.language
    workspace.mkdir(parents=True, exist_ok=True)
    local = local or store.local_file(video) or store.stage(video, workspace)
    path = tracks.extract_track(local, track, workspace, video.name, settings)
    name = f"{stem_of(video)}.{track.language or f'track{track.track}'}.{track.format}"
    stored = store.put_file(
        profile, file_id, path, name=name, kind="subtitle", source_file_id=video.id,
        operation="extract_track", options={**options, "track": track.track},
        tools={"ffmpeg": tool}, details=track.model_dump(exclude_none=True), move=True,
    )  # fmt: skip
    return stored, track.language


@task(name="choose_subtitles", cache_policy=NONE, **RETRYING)
def choose_subtitles(
    profile: str, source: ProfileFile, request: PackageRequest
) -> tuple[list[package.Chosen], list[ParsedSrt]]:
    """The request's subtitle files, each checked to be a subtitle output of ``source``
    (through the imported file both were made from; a missing one fails at once), then read.
    One task, not one per file: the reads take less than a task run costs."""
    store = ProfileStore.from_settings()

    def find(file_id: str) -> ProfileFile | None:
        return store.find(profile, file_id)

    files = [store.get(profile, file_id) for file_id in request.subtitles]
    subtitles = [(f, package.root_of(f, find)) for f in files]
    chosen = package.choose(source, package.root_of(source, find), subtitles, request)
    return chosen, [read_subtitles(store.read_bytes(c.file), c.file.name) for c in chosen]
