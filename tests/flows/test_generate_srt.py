"""transcribe and generate_srt end to end: the bundled model, real ffmpeg, a real Prefect server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from flows.batch import BATCHES
from flows.generate_srt import generate_srt
from flows.transcribe import transcribe
from mediaflows.errors import MediaError, UnsafeMediaError
from mediaflows.models import (
    BatchResult,
    CueRules,
    GenerateSrtRequest,
    SrtResult,
    TranscribeResult,
)
from mediaflows.store import ProfileStore
from tasks.prefect_adapter import state_of
from tests import prefect_api
from tests.media_factory import SPEECH_CONTAINERS, SPEECH_TEXT
from tests.runs import run_flow
from tests.subtitle_rules import parse, rule_violations
from tests.wer import wer


def _task_names(run_id: Any, expect: int) -> dict[str, str]:
    runs = prefect_api.task_runs(run_id, expect=expect)
    return {r.task_key.rsplit("-", 1)[0]: r.state.type.value for r in runs if r.state}


@pytest.mark.parametrize("name", sorted(SPEECH_CONTAINERS))
def test_speech_in_any_container(
    name: str, local_store: ProfileStore, speech_media: dict[str, Path]
) -> None:
    source = local_store.import_file("dave", speech_media[name])
    state = run_flow(
        generate_srt, "dave", source.id, GenerateSrtRequest(vtt=True, json_output=True)
    )
    assert state.is_completed(), state.message
    result: SrtResult = state.result()
    heard = " ".join(sub.content.replace("\n", " ") for sub in parse(result.content))
    assert wer(SPEECH_TEXT, heard) <= 0.25, heard
    assert rule_violations(result.content) == []
    assert result.qa.ok and result.qa.cues == len(parse(result.content))
    # The stored SRT is the content returned; VTT and JSON are stored beside it.
    srt_file = local_store.get("dave", result.file_id)
    assert local_store.read_text(srt_file) == result.content
    assert srt_file.kind == "subtitle" and srt_file.source_file_id == source.id
    assert result.vtt_file_id and result.json_file_id
    vtt = local_store.read_text(local_store.get("dave", result.vtt_file_id))
    assert vtt.startswith("WEBVTT")
    doc = json.loads(local_store.read_text(local_store.get("dave", result.json_file_id)))
    assert doc["segments"] and doc["segments"][0]["words"] and len(doc["cues"]) == result.qa.cues


def test_formats_are_stored_beside_the_srt_with_its_cues_and_times(
    local_store: ProfileStore, speech_media: dict[str, Path]
) -> None:
    """``formats`` with the flags: every format is stored, each read back (by the format table,
    found from its content) gives the SRT's cues at its times (ASS: to the centisecond); TTML
    is XML in the spoken language. Asked the other way round (flags as formats, another order),
    the same files are found, the model not run again."""
    from xml.etree import ElementTree

    from mediaflows.subtitles.formats import FORMATS, read_subtitles

    source = local_store.import_file("dave", speech_media["speech.ogg"])
    request = GenerateSrtRequest(language="en", vtt=True, formats=("ass", "ttml", "sbv", "json"))
    result: SrtResult = run_flow(generate_srt, "dave", source.id, request).result()
    assert list(result.files) == ["vtt", "ass", "ttml", "sbv", "json"]
    assert set(result.urls) == set(result.files) and result.json_file_id == result.files["json"]
    srt = read_subtitles(result.content.encode(), "x.srt").cues
    for fmt, file_id in result.files.items():
        stored = local_store.get("dave", file_id)
        assert stored.name == f"speech{FORMATS[fmt].extensions[0]}", stored.name
        parsed = read_subtitles(local_store.read_bytes(stored), "subtitles")  # no extension
        assert parsed.format == fmt
        step = FORMATS[fmt].time_step_ms
        assert [(c.start_ms // step, c.end_ms // step, c.text) for c in parsed.cues] == [
            (c.start_ms // step, c.end_ms // step, c.text) for c in srt
        ], fmt
    ttml = ElementTree.fromstring(
        local_store.read_bytes(local_store.get("dave", result.files["ttml"]))
    )
    assert ttml.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    flags = GenerateSrtRequest(
        language="en", json_output=True, formats=("sbv", "ttml", "vtt", "ass")
    )
    again: SrtResult = run_flow(generate_srt, "dave", source.id, flags).result()
    assert again.cached and again.file_id == result.file_id
    assert again.files == result.files


def test_transcript_is_stored_with_segments(
    local_store: ProfileStore, speech_media: dict[str, Path]
) -> None:
    source = local_store.import_file("dave", speech_media["speech.ogg"])
    state = run_flow(transcribe, "dave", source.id)
    result: TranscribeResult = state.result()
    assert wer(SPEECH_TEXT, result.text) <= 0.25 and result.language == "en"
    assert 9 < result.duration < 20 and result.segments >= 1
    stored = json.loads(local_store.read_text(local_store.get("dave", result.transcript_id)))
    assert stored["text"] == result.text and stored["segments"][0]["words"]


def test_silence_gives_zero_cues_and_completes(local_store: ProfileStore, silence: Path) -> None:
    source = local_store.import_file("dave", silence)
    srt_state = run_flow(generate_srt, "dave", source.id)
    assert srt_state.is_completed()
    assert srt_state.result().content == "" and srt_state.result().qa.cues == 0
    text_state = run_flow(transcribe, "dave", source.id)
    assert text_state.is_completed() and text_state.result().text == ""


def test_second_run_does_not_run_the_model(
    local_store: ProfileStore, speech_media: dict[str, Path]
) -> None:
    source = local_store.import_file("dave", speech_media["speech.mp3"])
    request = GenerateSrtRequest(beam_size=2)
    first = run_flow(generate_srt, "dave", source.id, request)
    assert _task_names(first.state_details.flow_run_id, 4)["transcribe_media"] == "COMPLETED"
    second = run_flow(generate_srt, "dave", source.id, request)
    assert second.result().cached and second.result().content == first.result().content
    assert "transcribe_media" not in _task_names(second.state_details.flow_run_id, 2)
    # Other cue rules: a new SRT, but the transcription comes from Prefect's persisted cache.
    third = run_flow(generate_srt, "dave", source.id,
                 GenerateSrtRequest(beam_size=2, rules=CueRules(max_line_chars=30)))  # fmt: skip
    assert not third.result().cached and third.result().file_id != first.result().file_id
    tasks = _task_names(third.state_details.flow_run_id, 4)
    assert tasks["transcribe_media"] == "COMPLETED"  # Cached is a Completed state type
    runs = prefect_api.task_runs(third.state_details.flow_run_id, expect=4)
    model_run = next(r for r in runs if r.task_key.startswith("transcribe_media"))
    assert model_run.state.name == "Cached"
    assert rule_violations(third.result().content, CueRules(max_line_chars=30)) == []
    # transcribe with the same options reuses it as well.
    fourth = run_flow(transcribe, "dave", source.id, request.transcribe_request())
    runs = prefect_api.task_runs(fourth.state_details.flow_run_id, expect=4)
    assert next(r for r in runs if r.task_key.startswith("transcribe_media")).state.name == "Cached"


def test_on_s3_too(store: ProfileStore, speech_media: dict[str, Path]) -> None:
    if not store.url.startswith("s3://"):
        pytest.skip("the local store is covered above")
    source = store.import_file("erin", speech_media["speech.mkv"])
    result = run_flow(generate_srt, "erin", source.id).result()
    assert result.media_url.startswith("http://127.0.0.1") and result.qa.cues >= 2
    assert store.read_text(store.get("erin", result.file_id)) == result.content


@pytest.mark.parametrize("name,error", [("empty.mp4", MediaError), ("text.mp4", MediaError),
                                        ("playlist.mp4", UnsafeMediaError)])  # fmt: skip
def test_bad_input_is_an_input_error_without_retries(
    name: str, error: type[Exception], local_store: ProfileStore, bad_inputs: dict[str, Path]
) -> None:
    source = local_store.import_file("dave", bad_inputs[name])
    state = run_flow(generate_srt, "dave", source.id)
    with pytest.raises(error):
        state.result()
    failed = [r for r in prefect_api.task_runs(state.state_details.flow_run_id, 2, failed=1)
              if r.state.is_failed()]  # fmt: skip
    assert len(failed) == 1 and failed[0].run_count == 1
    assert [f.id for f in local_store.list_files("dave")] == [source.id]


@pytest.mark.parametrize("name", ["speech.mkv", "speech.mp3"])
def test_a_truncated_file_is_refused_not_subtitled_in_part(
    name: str, local_store: ProfileStore, speech_media: dict[str, Path], tmp_path: Path
) -> None:
    """A partial upload (the first 60 % of the bytes) probes fine and decodes without an error:
    ffmpeg reads what there is and exits 0. The run must fail as an input error, once (no
    retries), store nothing, and a batch must count the file as failed."""
    data = speech_media[name].read_bytes()
    cut = tmp_path / f"cut-{name}"
    cut.write_bytes(data[: len(data) * 6 // 10])
    source = local_store.import_file("dave", cut)
    state = run_flow(generate_srt, "dave", source.id)
    with pytest.raises(MediaError, match="truncated or corrupt"):
        state.result()
    failed = [r for r in prefect_api.task_runs(state.state_details.flow_run_id, 3, failed=1)
              if r.state.is_failed()]  # fmt: skip
    assert [(r.task_key.rsplit("-", 1)[0], r.run_count) for r in failed] == [
        ("transcribe_media", 1)
    ]
    assert [f.id for f in local_store.list_files("dave")] == [source.id]

    whole = local_store.import_file("dave", speech_media[name])
    batch = asyncio.run(
        state_of(BATCHES["generate_srt"], profile="dave", file_ids=[whole.id, source.id])
    )
    assert batch.is_failed()
    result = batch.result(raise_on_failure=False)
    assert isinstance(result, BatchResult), result
    assert [(c.file_id, c.status) for c in result.children] == [
        (whole.id, "completed"),
        (source.id, "failed"),
    ]
    assert "truncated or corrupt" in (result.children[1].error or "")


def test_qa_artifact_and_progress_on_the_run(local_store: ProfileStore, jfk: Path) -> None:
    source = local_store.import_file("dave", jfk)
    state = run_flow(generate_srt, "dave", source.id)
    artifacts = prefect_api.artifacts(state.state_details.flow_run_id)
    kinds = {a.type for a in artifacts}
    assert {"progress", "table"} <= kinds
    progress = next(a for a in artifacts if a.type == "progress")
    assert progress.data == 100.0 and "cues" in progress.description


def test_the_detected_language_and_its_probability_are_in_the_result(
    local_store: ProfileStore, tmp_path: Path
) -> None:
    """German speech, the bundled multilingual model, no language given: detected and said so."""
    import subprocess

    from tests.core.test_whisper import GERMAN

    wav = tmp_path / "guten-morgen.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-s", "140", "-w", str(wav), GERMAN], check=True)
    source = local_store.import_file("dave", wav)
    state = run_flow(generate_srt, "dave", source.id, GenerateSrtRequest(model="base"))
    result: SrtResult = state.result()
    assert result.language == "de" and result.language_probability is not None
    assert 0.5 < result.language_probability < 1.0 and not result.language_doubtful
    assert wer(GERMAN, " ".join(c.content for c in parse(result.content))) <= 0.4
    stored = local_store.get("dave", result.file_id)
    assert stored.details["language_probability"] == result.language_probability
    assert stored.tools["whisper"].endswith("bundled:base")
