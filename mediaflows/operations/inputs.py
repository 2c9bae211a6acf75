"""What the subtitle operations read (fix_srt, translate_srt): a profile's subtitle file in any
format the table reads, or a subtitle track of a profile video, taken out once and stored as a
file of its own (:func:`extracted_track`)."""

from __future__ import annotations

from pathlib import Path

from mediaflows.media import tracks
from mediaflows.media.probe import probe
from mediaflows.media.tools import ffmpeg_version
from mediaflows.models import ProfileFile
from mediaflows.operations.spec import stem_of
from mediaflows.settings import get_settings
from mediaflows.store import ProfileStore
from mediaflows.subtitles import ParsedSrt, read_subtitles


def read_subtitle_input(
    store: ProfileStore, profile: str, file: ProfileFile, track: str | None, workspace: Path
) -> ParsedSrt:
    """The cues of ``file`` (SRT, WebVTT, ASS/SSA, TTML/DFXP, SBV; the format from its content,
    whatever its encoding, line ends or tags); or, with ``track`` (a language such as ``eng``,
    or a number from 0), those of that subtitle track of the video ``file``, its language the
    track's when the subtitles name none."""
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
    file_id = tracks.track_file_id(video.sha256, options)
    found = store.find(profile, file_id)
    if found is not None:
        return found, track.language
    workspace.mkdir(parents=True, exist_ok=True)
    local = local or store.local_file(video) or store.stage(video, workspace)
    path = tracks.extract_track(local, track, workspace, video.name, settings)
    name = f"{stem_of(video)}.{track.language or f'track{track.track}'}.{track.format}"
    return store.put_file(
        profile, file_id, path, name=name, kind="subtitle", source_file_id=video.id,
        operation="extract_track", options={**options, "track": track.track},
        tools={"ffmpeg": ffmpeg_version(settings.media.ffmpeg_binary)},
        details=track.model_dump(exclude_none=True), move=True,
    ), track.language  # fmt: skip
