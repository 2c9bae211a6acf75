"""generate_srt with target languages: the bundled model, real ffmpeg, a real Prefect server and
the loopback LLM server (its fixed translation table)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from flows.generate_srt import generate_srt
from mediaflows.errors import InputError
from mediaflows.models import GenerateSrtRequest, SrtResult
from mediaflows.store import ProfileStore
from mediaflows.subtitles import read_srt
from tests.llm_server import LLMServer, translate
from tests.runs import child_runs, run_flow
from tests.srt_samples import timecodes
from tests.wer import wer

#: Every word is in the test server's translation tables.
SPEECH = "I did not receive the letter. That is weird, because I sent it. See you tomorrow."


def _speech(tmp_path: Path, text: str = SPEECH, voice: str = "en-us") -> Path:
    wav = tmp_path / f"{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(wav), text], check=True)
    return wav


def test_two_target_languages_store_three_srts_and_a_linked_child_run(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    source = local_store.import_file("dave", _speech(tmp_path))
    request = GenerateSrtRequest(language="en", target_languages=("de", "fr"))
    state = run_flow(generate_srt, "dave", source.id, request)
    assert state.is_completed(), state.message
    result: SrtResult = state.result()
    spoken = [c.text for c in read_srt(result.content.encode()).cues]
    assert wer(SPEECH, " ".join(spoken)) <= 0.2
    assert [t.language for t in result.translations] == ["de", "fr"]
    for tr in result.translations:
        assert timecodes(tr.content) == timecodes(result.content)  # same cues, same times
        texts = [c.text for c in read_srt(tr.content.encode()).cues]
        assert [" ".join(t.split()) for t in texts] == [
            " ".join(translate(s, tr.language).split()) for s in spoken
        ]
        assert tr.report is not None and tr.report.untranslated == ()
        assert tr.report.source_language == "en"
    # Three SRTs in the profile (the spoken language's and two translations), the child run's
    # manifest and this run's.
    names = sorted(f.name for f in local_store.list_files("dave") if f.operation)
    assert names == ["en-us.de.srt", "en-us.fr.srt", "en-us.srt", "en-us.subtitles.json",
                     "en-us.translations.json"]  # fmt: skip
    assert result.file_id == local_store.get("dave", result.file_id).id
    assert result.manifest_id and result.output_id == result.manifest_id
    manifest = local_store.get("dave", result.manifest_id)
    assert json.loads(local_store.read_text(manifest))["srt"] == result.content
    # The translations ran as a child translate_srt run of this run.
    children = child_runs(state.state_details.flow_run_id)
    assert len(children) == 1 and children[0].state.is_completed()
    assert children[0].parameters["file_id"] == result.file_id
    # The same request again: from the store. One more language: only it is translated.
    requests = len(llm_server.requests)
    again = run_flow(generate_srt, "dave", source.id, request).result()
    assert again.cached and again.translations == result.translations
    assert len(llm_server.requests) == requests
    more = run_flow(
        generate_srt,
        "dave",
        source.id,
        request.model_copy(update={"target_languages": ("de", "fr", "zh-Hans")}),
    )
    assert [t.language for t in more.result().translations] == ["de", "fr", "zh-Hans"]
    assert len(llm_server.requests) == requests + 1  # zh-Hans only; the SRT not transcribed again
    assert more.result().file_id == result.file_id


def test_formats_with_target_languages_are_stored_for_every_language(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    """``vtt`` and ``formats: [ass]`` with a target: the spoken language's subtitles and each
    translation in WebVTT (its language in the header) and ASS, all listed in the manifest."""
    source = local_store.import_file("dave", _speech(tmp_path))
    request = GenerateSrtRequest(language="en", target_languages=("de",), vtt=True,
                                 formats=("ass",))  # fmt: skip
    result: SrtResult = run_flow(generate_srt, "dave", source.id, request).result()
    names = sorted(f.name for f in local_store.list_files("dave") if f.operation)
    assert names == ["en-us.ass", "en-us.de.ass", "en-us.de.srt", "en-us.de.vtt", "en-us.srt",
                     "en-us.subtitles.json", "en-us.translations.json", "en-us.vtt"]  # fmt: skip
    (de,) = result.translations
    assert de.vtt_file_id and de.vtt_url and set(de.files) == set(de.urls) == {"vtt", "ass"}
    ass = local_store.read_text(local_store.get("dave", de.files["ass"]))
    assert "Language: de" in ass and ass.count("Dialogue:") == de.qa.cues
    assert set(result.files) == set(result.urls) == {"vtt", "ass"}
    vtt = local_store.read_text(local_store.get("dave", de.vtt_file_id))
    assert vtt.startswith("WEBVTT\nLanguage: de\n\n")
    srt_times = [line for line in de.content.splitlines() if "-->" in line]
    vtt_times = [line for line in vtt.splitlines() if "-->" in line]
    assert [t.replace(",", ".") for t in srt_times] == vtt_times and vtt_times
    # The manifest lists every file of the run: the spoken language's and each translation's.
    assert result.manifest_id
    listed = json.loads(local_store.read_text(local_store.get("dave", result.manifest_id)))
    files = {(f["language"], f["format"]): f["file_id"] for f in listed["files"]}
    assert files == {("en", "srt"): result.file_id, ("en", "vtt"): result.vtt_file_id,
                     ("en", "ass"): result.files["ass"], ("de", "srt"): de.file_id,
                     ("de", "vtt"): de.vtt_file_id, ("de", "ass"): de.files["ass"]}  # fmt: skip
    again = run_flow(generate_srt, "dave", source.id, request).result()
    assert again.cached and again.translations[0].vtt_url  # the URL is found for a stored run
    assert again.urls.keys() == result.urls.keys() == again.translations[0].urls.keys()


def test_a_target_equal_to_the_spoken_language_is_refused(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="is the spoken language 'en'"):
        GenerateSrtRequest(language="en", target_languages=("en",))
    source = local_store.import_file("dave", _speech(tmp_path))
    state = run_flow(
        generate_srt,
        "dave",
        source.id,
        GenerateSrtRequest(model="tiny.en", target_languages=("en",)),
    )
    assert state.is_failed()
    with pytest.raises(InputError, match="the speech is in 'en'"):
        state.result()
    assert llm_server.requests == []


def test_whisper_translates_german_speech_to_english_subtitles(
    local_store: ProfileStore, tmp_path: Path
) -> None:
    from tests.core.test_whisper import GERMAN

    source = local_store.import_file("dave", _speech(tmp_path, GERMAN, "de"))
    request = GenerateSrtRequest(model="base", target_languages=("en",), translation="whisper",
                                 vtt=True)  # fmt: skip
    result: SrtResult = run_flow(generate_srt, "dave", source.id, request).result()
    assert result.language == "de"
    (english,) = result.translations
    assert english.language == "en" and english.report is None
    assert timecodes(english.content)  # cues of their own: Whisper timed them
    text = " ".join(c.text for c in read_srt(english.content.encode()).cues)
    assert (
        wer("Good morning. Today is a beautiful day and we go together to the park.", text) <= 0.6
    ), text
    assert local_store.get("dave", english.file_id).name == "de.en.srt"
    assert english.vtt_file_id and english.vtt_url  # WebVTT too, its language in the header
    vtt = local_store.read_text(local_store.get("dave", english.vtt_file_id))
    assert vtt.startswith("WEBVTT\nLanguage: en\n\n")
    assert [t.replace(",", ".") for t in timecodes(english.content)] == timecodes(vtt)
    with pytest.raises(ValueError, match="English only"):
        GenerateSrtRequest(target_languages=("fr",), translation="whisper")
