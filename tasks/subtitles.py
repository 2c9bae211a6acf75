"""Reading a profile's subtitle file, as a Prefect task (building, merging and rendering cues are
plain core calls: pure, fast and never transient, a task run would cost the server more)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from mediaflows.models import ProfileFile
from mediaflows.store import ProfileStore
from mediaflows.subtitles import ParsedSrt, read_srt
from tasks.retry import RETRYING


@task(name="read_profile_srt", cache_policy=NONE, **RETRYING)
def read_profile_srt(file: ProfileFile) -> ParsedSrt:
    """The cues of a profile SRT file, whatever its encoding, line ends or tags."""
    return read_srt(ProfileStore.from_settings().read_bytes(file), file.name)
