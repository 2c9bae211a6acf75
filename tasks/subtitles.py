"""Reading a profile's subtitle files, as Prefect tasks (building, merging and rendering cues are
plain core calls: pure, fast and never transient, a task run would cost the server more)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from mediaflows.models import PackageRequest, ProfileFile
from mediaflows.operations import package
from mediaflows.store import ProfileStore
from mediaflows.subtitles import ParsedSrt, read_srt
from tasks.retry import RETRYING


@task(name="read_profile_srt", cache_policy=NONE, **RETRYING)
def read_profile_srt(file: ProfileFile) -> ParsedSrt:
    """The cues of a profile SRT file, whatever its encoding, line ends or tags."""
    return read_srt(ProfileStore.from_settings().read_bytes(file), file.name)


@task(name="choose_subtitles", cache_policy=NONE, **RETRYING)
def choose_subtitles(
    profile: str, source: ProfileFile, request: PackageRequest
) -> tuple[list[package.Chosen], list[ParsedSrt]]:
    """The request's SRTs, each checked to be a subtitle output of ``source`` (through the
    imported file both were made from; a missing one fails at once), then read. One task, not
    one per file: the reads take less than a task run costs."""
    store = ProfileStore.from_settings()

    def find(file_id: str) -> ProfileFile | None:
        return store.find(profile, file_id)

    files = [store.get(profile, file_id) for file_id in request.subtitles]
    subtitles = [(f, package.root_of(f, find)) for f in files]
    chosen = package.choose(source, package.root_of(source, find), subtitles, request)
    return chosen, [read_srt(store.read_bytes(c.file), c.file.name) for c in chosen]
