"""Prefect tasks over subtitle building (pysubs2 writes the files)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from mediaflows import subtitles
from mediaflows.models import CueRules, RenderedSubtitles, Transcription


@task(name="build_subtitles", cache_policy=NONE)
def build_subtitles(
    transcription: Transcription, rules: CueRules, vtt: bool, json_output: bool
) -> RenderedSubtitles:
    """Readable cues from the words, as SRT (and WebVTT/JSON), with a QA report."""
    return subtitles.render(transcription, rules, vtt=vtt, json_output=json_output)


@task(name="transcript_json", cache_policy=NONE)
def transcript_json(transcription: Transcription) -> str:
    """The transcript as stored: text, language, segments and words."""
    return subtitles.to_json(transcription)
