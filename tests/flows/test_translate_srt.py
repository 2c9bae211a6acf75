"""translate_srt end to end: real HTTP to the loopback OpenAI-compatible server (its fixed
translation table), a real Prefect server, the profile store on disk."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from flows.translate_srt import translate_srt
from mediaflows.errors import InputError, LLMOutputError
from mediaflows.languages import parse_language
from mediaflows.models import TranslateSrtRequest, TranslateSrtResult
from mediaflows.store import ProfileStore
from mediaflows.subtitles import line_rules, read_srt
from tasks.prefect_adapter import state_of
from tests import prefect_api
from tests.core.test_scripts import SPACED_CJK
from tests.llm_server import INJECTION, LLMServer, translate
from tests.runs import import_bytes, run_flow
from tests.srt_samples import TRANSLATION_CUES, long_srt, messy_srt, talk_srt, timecodes


def _texts(content: str) -> list[str]:
    return [c.text for c in read_srt(content.encode()).cues]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _source() -> bytes:
    return messy_srt(TRANSLATION_CUES)  # a BOM and CRLF, as found in the wild


def _source_timecodes() -> list[str]:
    return timecodes(_source().decode("utf-8-sig").replace("\r\n", "\n"))


def _asked(server: LLMServer) -> list[Any]:
    """The requests for a translation (condense requests left out)."""
    return [r for r in server.requests if not r.condense]


def _targets(server: LLMServer) -> list[str]:
    """The target language of each translation request the server got."""
    found = []
    for record in _asked(server):
        user = next(m for m in record.messages if m["role"] == "user")
        found.append(json.loads(user["content"])["target_language"])
    return found


def test_two_languages_in_one_run_keep_every_cue_and_timecode(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    file_id = import_bytes(local_store, tmp_path, _source())
    request = TranslateSrtRequest(target_languages=("de", "zh-Hans"), glossary=("Prefect",))
    state = run_flow(translate_srt, "dave", file_id, request)
    assert state.is_completed(), state.message
    result: TranslateSrtResult = state.result()
    assert [t.language for t in result.translations] == ["de", "zh-Hans"]
    assert result.source_language == "en"  # guessed from the text
    for tr in result.translations:
        language = parse_language(tr.language)
        # Same cues, same times (BOM and CRLF kept, as in the source).
        assert tr.content.startswith("\ufeff") and "\r\n" in tr.content
        plain = tr.content.lstrip("\ufeff").replace("\r\n", "\n")
        assert timecodes(plain) == _source_timecodes()
        texts = _texts(plain)
        assert len(texts) == len(TRANSLATION_CUES)
        # Each cue is the table's translation (glossary honoured), re-wrapped to the rules.
        for text, (_, _, original) in zip(texts, TRANSLATION_CUES, strict=True):
            expected = translate(original, tr.language, {"Prefect": "Prefect"})
            if tr.language == "zh-Hans":
                assert text.replace("\n", "") == expected.replace("\n", ""), text
                assert not SPACED_CJK.search(text), text  # no space between two characters
            else:
                assert _flat(text) == _flat(expected), text
            assert all(len(line) <= line_rules(language).max_line_chars for line in
                       [ln for ln in text.replace("{\\an8}", "").split("\n")]), text  # fmt: skip
        assert tr.qa.violations["line_length"] == 0 and tr.qa.violations["line_count"] == 0
        assert "Prefect" in plain and "Präfekt" not in plain and "长官" not in plain
        assert texts[0].startswith("<i>") and texts[0].endswith("</i>")  # markup kept
        assert texts[1].startswith("{\\an8}")
        assert texts[2].split("\n")[1].startswith("-")  # two speakers, one line each
        report = tr.report
        assert report is not None and report.untranslated == () and report.translated == 8
        # Timing is locked: cues read faster than the language allows are counted, not hidden.
        fast = [
            c.index
            for c in read_srt(plain.encode()).cues
            if c.chars / c.duration > line_rules(language).max_cps
        ]
        assert list(report.too_fast) == fast
        # Stored as a subtitle file of the profile, derived from the source.
        stored = local_store.get("dave", tr.file_id)
        assert stored.kind == "subtitle" and stored.source_file_id == file_id
        assert (
            stored.name == f"talk.{tr.language}.srt" and local_store.read_text(stored) == tr.content
        )
    # German wraps the long cue onto two balanced lines; the model saw no timecode.
    assert "\n" in _texts(result.translations[0].content.lstrip("\ufeff"))[4]
    assert len(_asked(llm_server)) == 2 and sorted(_targets(llm_server)) == ["de", "zh-Hans"]
    assert all("-->" not in r.body and "00:00:0" not in r.body for r in llm_server.requests)
    # German cues over their budget were asked once to condense (in the same task run).
    condensed = [r for r in llm_server.requests if r.condense]
    assert len(condensed) == result.translations[0].report.reading.condense_requests
    asked = len(llm_server.requests)
    # The manifest lists both; the same request again answers from the store.
    manifest = local_store.get("dave", result.file_id)
    assert manifest.name == "talk.translations.json"
    assert json.loads(local_store.read_text(manifest))["translations"]["de"] == (
        result.translations[0].content
    )
    again = run_flow(translate_srt, "dave", file_id, request).result()
    assert again.cached and again.translations == result.translations
    assert len(llm_server.requests) == asked
    runs = prefect_api.task_runs(
        state.state_details.flow_run_id, expect=2, named="translate_chunk", named_count=2
    )
    assert len([r for r in runs if r.task_key.startswith("translate_chunk")]) == 2


def test_a_language_added_later_translates_only_that_language(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    file_id = import_bytes(local_store, tmp_path, _source())
    first = run_flow(
        translate_srt, "dave", file_id, TranslateSrtRequest(target_languages=("de",))
    ).result()
    assert _targets(llm_server) == ["de"]
    both = run_flow(
        translate_srt, "dave", file_id, TranslateSrtRequest(target_languages=("de", "fr"))
    ).result()
    assert _targets(llm_server) == ["de", "fr"]  # one more request: French only
    assert not both.cached and both.translations[0].file_id == first.translations[0].file_id
    assert [t.language for t in both.translations] == ["de", "fr"]
    assert "Je ai pas reçu la lettre." in both.translations[1].content


def test_bilingual_shows_the_original_above_the_translation(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    file_id = import_bytes(local_store, tmp_path, _source())
    request = TranslateSrtRequest(target_languages=("fr",), bilingual=True, normalise=True)
    result = run_flow(translate_srt, "dave", file_id, request).result()
    content = result.translations[0].content
    assert not content.startswith("\ufeff") and "\r\n" not in content  # normalised
    assert timecodes(content) == _source_timecodes()
    for text, (_, _, original) in zip(_texts(content), TRANSLATION_CUES, strict=True):
        assert text.startswith(original + "\n"), text
        assert _flat(text[len(original) + 1 :]) == _flat(translate(original, "fr"))
    # The QA report measures the translation alone against French rules (2 lines).
    assert result.translations[0].qa.violations["line_count"] == 0


def test_a_chunk_that_never_validates_keeps_its_source_text_and_is_reported(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("MEDIAFLOWS_LLM__CHUNK_CUES", "2")
    from mediaflows.settings import get_settings

    get_settings.cache_clear()
    llm_server.set_mode("wrong_count", match="See you")  # chunk 2: cues 5-6
    file_id = import_bytes(local_store, tmp_path, _source())
    result = run_flow(
        translate_srt, "dave", file_id, TranslateSrtRequest(target_languages=("de",))
    ).result()
    report = result.translations[0].report
    assert report.fallback_chunks == (2,) and report.untranslated == (5, 6)
    assert report.translated == 6 and any("no valid answer" not in p for p in report.problems)
    texts = _texts(result.translations[0].content.lstrip("\ufeff").replace("\r\n", "\n"))
    assert texts[5] == "See you tomorrow." and texts[0].startswith("<i>Ich")  # never a gap
    assert timecodes(result.translations[0].content.replace("\r\n", "\n")) == _source_timecodes()


def test_an_injected_instruction_changes_nothing_but_its_own_chunk(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """An obedient model answers "OK" for every cue of the chunk with the injection: too short to
    be a translation, refused, asked again, then that chunk keeps its source text."""
    monkeypatch.setenv("MEDIAFLOWS_LLM__CHUNK_CUES", "2")
    from mediaflows.settings import get_settings

    get_settings.cache_clear()
    llm_server.set_mode("inject")
    file_id = import_bytes(local_store, tmp_path, _source())
    result = run_flow(
        translate_srt, "dave", file_id, TranslateSrtRequest(target_languages=("de",))
    ).result()
    report = result.translations[0].report
    assert report.fallback_chunks == (1,) and report.untranslated == (3, 4)
    assert any("too short for a translation" in p for p in report.problems)
    texts = _texts(result.translations[0].content.lstrip("\ufeff").replace("\r\n", "\n"))
    assert INJECTION in _flat(texts[3]).lower() and "OK" not in texts[:3] + texts[4:]
    assert all(len(line) <= 42 for line in texts[3].split("\n"))  # wrapped to German's lines
    assert texts[4].startswith("Wir brauchen")


@pytest.mark.parametrize("mode", ["untranslated", "wrong_language"])
def test_an_answer_in_the_wrong_language_is_asked_again(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path, mode: str
) -> None:
    llm_server.set_mode(mode, times=1)
    file_id = import_bytes(local_store, tmp_path, _source())
    result = run_flow(
        translate_srt, "dave", file_id, TranslateSrtRequest(target_languages=("de",))
    ).result()
    assert [r.outcome for r in _asked(llm_server)] == [mode, "ok"]
    report = result.translations[0].report
    assert report.retries == 1 and report.untranslated == ()
    assert "not a German translation" in report.problems[0]
    assert "Ich habe nicht bekommen den Brief." in result.translations[0].content


def test_a_glossary_term_the_model_ignores_is_reported(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    llm_server.set_mode("no_glossary")
    file_id = import_bytes(local_store, tmp_path, _source())
    request = TranslateSrtRequest(target_languages=("de",), glossary=("Prefect",))
    result = run_flow(translate_srt, "dave", file_id, request).result()
    report = result.translations[0].report
    assert "Präfekt" in result.translations[0].content  # the answer is kept …
    missed = [p for p in report.problems if "glossary term 'Prefect'" in p]
    assert len(missed) == 2  # … and each cue that misses the term is reported


def test_most_chunks_failing_stores_nothing(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    llm_server.set_mode("untranslated")
    file_id = import_bytes(local_store, tmp_path, _source())
    state = run_flow(
        translate_srt, "dave", file_id, TranslateSrtRequest(target_languages=("de", "fr"))
    )
    assert state.is_failed()
    with pytest.raises(LLMOutputError, match="nothing stored"):
        state.result()
    assert [f.name for f in local_store.list_files("dave")] == ["talk.srt"]


def test_an_srt_already_in_the_target_language_is_refused(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    file_id = import_bytes(local_store, tmp_path, long_srt(30).replace(b"says", b"is the"))
    state = run_flow(translate_srt, "dave", file_id, TranslateSrtRequest(target_languages=("en",)))
    assert state.is_failed()
    with pytest.raises(InputError, match=r"is in en \(guessed from its text\): not a target"):
        state.result()
    assert llm_server.requests == []


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"target_languages": []}, "at least 1 item"),
        ({"target_languages": ["xx"]}, "unknown language 'xx'"),
        ({"target_languages": ["de_DE!"]}, "not a language code"),
        ({"target_languages": ["de", "de"]}, "listed twice"),
        ({"target_languages": ["de"], "source_language": "de"}, "is the source language"),
        ({"target_languages": ["de"], "glossary": ["term="]}, "TERM=TRANSLATION"),
    ],
)
def test_bad_requests_are_refused_before_any_run(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TranslateSrtRequest.model_validate(fields)


def test_a_batch_translates_many_srts(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    from flows.batch import BATCHES
    from mediaflows.models import BatchResult

    ids = [import_bytes(local_store, tmp_path, _source(), "a.srt"),
           import_bytes(local_store, tmp_path, long_srt(12), "b.srt")]  # fmt: skip
    request = TranslateSrtRequest(target_languages=("fr",))
    state = asyncio.run(state_of(BATCHES["translate_srt"], profile="dave", file_ids=ids,
                                 request=request))  # fmt: skip
    result: BatchResult = state.result()
    assert [(c.file_id, c.status) for c in result.children] == [(i, "completed") for i in ids]
    names = sorted(f.name for f in local_store.list_files("dave") if f.operation)
    assert names == ["a.fr.srt", "a.translations.json", "b.fr.srt", "b.translations.json"]
    assert sorted(_targets(llm_server)) == ["fr", "fr"]


def _vtt_cues(vtt: str) -> list[tuple[int, int, str]]:
    """(start ms, end ms, text) of each WebVTT cue, read back by pysubs2."""
    import pysubs2

    return [(e.start, e.end, e.plaintext) for e in pysubs2.SSAFile.from_string(vtt, format_="vtt")]


def test_webvtt_per_language_with_its_language_and_the_srts_times(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    file_id = import_bytes(local_store, tmp_path, _source())
    plain = run_flow(
        translate_srt, "dave", file_id, TranslateSrtRequest(target_languages=("de",))
    ).result()
    assert plain.translations[0].vtt_file_id is None and plain.translations[0].vtt_url is None
    asked = len(_asked(llm_server))
    request = TranslateSrtRequest(target_languages=("de", "fr"), vtt=True)
    result = run_flow(translate_srt, "dave", file_id, request).result()
    assert len(_asked(llm_server)) == asked + 1  # French only: German's SRT was stored already
    assert result.translations[0].file_id == plain.translations[0].file_id
    manifest = json.loads(local_store.read_text(local_store.get("dave", result.file_id)))
    listed = {(f["language"], f["format"]): f["file_id"] for f in manifest["files"]}
    for tr in result.translations:
        assert tr.vtt_file_id and tr.vtt_url
        stored = local_store.get("dave", tr.vtt_file_id)
        assert stored.name == f"talk.{tr.language}.vtt" and stored.kind == "subtitle"
        vtt = local_store.read_text(stored)
        assert vtt.startswith(f"WEBVTT\nLanguage: {tr.language}\n\n")
        srt = read_srt(tr.content.encode())
        cues = _vtt_cues(vtt)
        assert len(cues) == len(srt.cues) == len(TRANSLATION_CUES)
        srt_cues = [(c.start_ms, c.end_ms) for c in srt.cues]
        assert [(s, e) for s, e, _ in cues] == srt_cues  # the SRT's times exactly
        assert "{\\an8}" not in vtt and "<i>" in vtt and " line:0" in vtt  # markup for the web
        assert listed[(tr.language, "srt")] == tr.file_id
        assert listed[(tr.language, "vtt")] == tr.vtt_file_id
    assert [
        t.vtt_file_id
        for t in run_flow(translate_srt, "dave", file_id, request).result().translations
    ] == [t.vtt_file_id for t in result.translations]  # the same request again: from the store


def test_german_that_runs_long_is_condensed_and_the_report_says_by_how_much(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    llm_server.set_mode("verbose")  # German answers ~30 % longer than the table's
    file_id = import_bytes(local_store, tmp_path, talk_srt(60))
    state = run_flow(translate_srt, "dave", file_id, TranslateSrtRequest(target_languages=("de",)))
    result: TranslateSrtResult = state.result()
    (de,) = result.translations
    reading = de.report.reading
    assert reading.share_too_fast_before >= 0.5 and reading.share_too_fast <= 0.10, reading
    assert reading.condense_requests == len([r for r in llm_server.requests if r.condense])
    assert timecodes(de.content) == timecodes(talk_srt(60).decode())
    rules = line_rules(parse_language("de"))
    cues = read_srt(de.content.encode()).cues
    assert all(len(c.text.split("\n")) <= rules.max_lines for c in cues)
    assert all(len(line) <= rules.max_line_chars for c in cues for line in c.text.split("\n"))
    # The run's translation artifact states before and after.
    tables = [a.data for a in prefect_api.artifacts(state.state_details.flow_run_id)
              if a.type == "markdown" and "translate_srt" in str(a.data)]  # fmt: skip
    before, after = f"{reading.share_too_fast_before:.0%}", f"{reading.share_too_fast:.0%}"
    assert tables and f"{before} → {after}" in tables[0], tables


def test_merge_short_translates_two_short_cues_of_a_sentence_as_one_window(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    """A sentence cut into a 1.5 s cue and a 2 s one: cue by cue, the first cue's German reads
    too fast; with merge_short the model is asked the sentence once and its translation is cut
    where both cues read within German's limit. Cue count and times stay the source's."""
    srt = (
        b"1\n00:00:01,000 --> 00:00:02,500\nI did not receive\nthe letter that\n\n"
        b"2\n00:00:02,600 --> 00:00:04,600\nis weird.\n\n"
        b"3\n00:00:06,000 --> 00:00:09,000\nThank you.\n"
    )
    file_id = import_bytes(local_store, tmp_path, srt, "window.srt")
    reports, contents = {}, {}
    for merge in (False, True):
        llm_server.requests.clear()
        request = TranslateSrtRequest(target_languages=("de",), condense=False, merge_short=merge)
        (de,) = run_flow(translate_srt, "dave", file_id, request).result().translations
        reports[merge], contents[merge] = de.report, de.content
        sent = [c["text"] for r in _asked(llm_server) for c in _cues_sent(r)]
        if merge:
            assert sent == ["I did not receive the letter that is weird.", "Thank you."], sent
        else:
            assert sent == ["I did not receive\nthe letter that", "is weird.", "Thank you."]
    assert reports[False].too_fast == (1,) and reports[True].too_fast == (), reports
    assert reports[True].reading.windows == 1 and reports[False].reading.windows == 0
    for content in contents.values():
        assert timecodes(content) == timecodes(srt.decode())
    one, two, _ = _texts(contents[True])
    assert _flat(f"{one} {two}") == translate("I did not receive the letter that is weird.", "de")
    assert one and two  # the sentence spread over both cues, each within German's lines
    rules = line_rules(parse_language("de"))
    assert all(len(line) <= rules.max_line_chars for t in (one, two) for line in t.split("\n"))


def _cues_sent(record: Any) -> list[dict[str, Any]]:
    user = next(m for m in record.messages if m["role"] == "user")
    return list(json.loads(user["content"])["cues"])


def test_each_language_is_stored_in_every_format_asked_with_the_srts_times(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    """``formats`` (and ``vtt``): each language's SRT, and a file per other format made from it:
    the same times (ASS to its centiseconds), the language where the format has a place for it,
    the position kept; TTML is XML. A format asked for later is made without a model request."""
    import xml.etree.ElementTree as ET

    from mediaflows.subtitles import read_subtitles
    from mediaflows.subtitles.formats import FORMATS
    from tests.runs import flow_result

    file_id = import_bytes(local_store, tmp_path, _source())
    request = TranslateSrtRequest(
        target_languages=("de", "zh-Hans"), vtt=True, formats=("ass", "ttml")
    )
    result: TranslateSrtResult = flow_result(translate_srt, "dave", file_id, request)
    for tr in result.translations:
        assert list(tr.files) == ["vtt", "ass", "ttml"] and tr.vtt_file_id == tr.files["vtt"]
        assert set(tr.urls) == set(tr.files) and tr.vtt_url == tr.urls["vtt"]
        srt = read_srt(tr.content.encode()).cues
        for fmt, id_ in tr.files.items():
            stored = local_store.get("dave", id_)
            assert stored.name == f"talk.{tr.language}{FORMATS[fmt].extensions[0]}"
            parsed = read_subtitles(local_store.read_bytes(stored), stored.name)
            assert (parsed.format, parsed.language) == (fmt, tr.language)
            step = FORMATS[fmt].time_step_ms
            assert len(parsed.cues) == len(srt)
            for theirs, ours in zip(parsed.cues, srt, strict=True):
                assert abs(theirs.start_ms - ours.start_ms) < step
                assert abs(theirs.end_ms - ours.end_ms) < step
            assert parsed.cues[1].position == 8  # the source's {\an8}, kept
            if fmt == "ttml":
                assert ET.fromstring(local_store.read_bytes(stored)).tag.endswith("}tt")
    manifest = json.loads(local_store.read_text(local_store.get("dave", result.file_id)))
    assert sorted((f["language"], f["format"]) for f in manifest["files"]) == sorted(
        (language, fmt) for language in ("de", "zh-Hans") for fmt in ("srt", "vtt", "ass", "ttml")
    )
    asked = len(llm_server.requests)
    more = request.model_copy(update={"vtt": False, "formats": ("ass", "sbv")})
    again: TranslateSrtResult = flow_result(translate_srt, "dave", file_id, more)
    assert len(llm_server.requests) == asked  # the SRTs were stored: only the new files made
    assert [list(t.files) for t in again.translations] == [["ass", "sbv"]] * 2
    assert again.translations[0].files["ass"] == result.translations[0].files["ass"]
