"""Reading a profile's subtitle files, as Prefect tasks (building, merging and rendering cues are
plain core calls: pure, fast and never transient, a task run would cost the server more)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from mediaflows.models import PackageRequest, ProfileFile
from mediaflows.operations import inputs, package
from mediaflows.store import ProfileStore
from mediaflows.subtitles import ParsedSrt, read_subtitles
from tasks.retry import RETRYING


@task(name="read_profile_subtitles", cache_policy=NONE, **RETRYING)
def read_profile_subtitles(
    profile: str, file: ProfileFile, track: str | None, workspace: Path
) -> ParsedSrt:
    """The cues of a profile subtitle file in any format, or of a subtitle track of a profile
    video (``track``: a language such as ``eng``, or a number from 0), taken out once
    (:func:`mediaflows.operations.inputs.read_subtitle_input`)."""
    store = ProfileStore.from_settings()
    return inputs.read_subtitle_input(store, profile, file, track, workspace)


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
