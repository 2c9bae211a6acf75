"""Subtitle building, reading and repair for the flows: reading a profile SRT is a Prefect
task; the rest are plain calls (pysubs2 reads and writes the files)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from mediaflows import llm, subtitles
from mediaflows.llm import ChunkFix
from mediaflows.models import CueRules, ProfileFile
from mediaflows.store import ProfileStore
from mediaflows.subtitles import ParsedSrt, RenderedSubtitles
from mediaflows.whisper import Transcription
from tasks._retry import RETRYING

# Building and merging subtitles are pure, fast and never fail for a transient reason: plain
# calls, not tasks (a task run would cost the Prefect server more than the work, per file).


def build_subtitles(
    transcription: Transcription, rules: CueRules, vtt: bool, json_output: bool
) -> RenderedSubtitles:
    """Readable cues from the words, as SRT (and WebVTT/JSON), with a QA report."""
    return subtitles.render(transcription, rules, vtt=vtt, json_output=json_output)


def transcript_json(transcription: Transcription) -> str:
    """The transcript as stored: text, language, segments and words."""
    return subtitles.to_json(transcription)


@task(name="read_profile_srt", cache_policy=NONE, **RETRYING)
def read_profile_srt(file: ProfileFile) -> ParsedSrt:
    """The cues of a profile SRT file, whatever its encoding, line ends or tags."""
    return subtitles.read_srt(ProfileStore.from_settings().read_bytes(file), file.name)


def merge_fixes(parsed: ParsedSrt, fixes: list[ChunkFix], normalise: bool) -> RenderedSubtitles:
    """The repaired SRT: the source's cues and times with the accepted text, and its QA."""
    return llm.render_fixed(parsed, fixes, normalise)
