"""A real Japanese speaker (tests/data/ja_cv.flac, Common Voice) through generate_srt and
transcribe, no language given, the bundled multilingual model: no space between two Japanese
characters in any output, Japanese line rules, and the characters heard as well as the model
itself hears them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jiwer

from flows.generate_srt import generate_srt
from flows.transcribe import transcribe
from mediaflows import speech
from mediaflows.languages import join_words
from mediaflows.models import GenerateSrtRequest, SrtResult, TranscribeRequest, TranscribeResult
from mediaflows.store import ProfileStore
from tests.core.test_scripts import SPACED_CJK
from tests.runs import flow_result

DATA = Path(__file__).parents[1] / "data"
#: What the speaker reads (Common Voice's prompt for the clip).
KNOWN = "真っ昼間なのにキャンプの外れの電柱に電球がともっていた"


def _cer(text: str) -> float:
    """Character error rate against the known sentence, punctuation and spaces left out."""
    return float(jiwer.cer(KNOWN, re.sub(r"[\s、。，．！？]", "", text)))


def test_japanese_speech_has_no_spaces_and_japanese_rules(local_store: ProfileStore) -> None:
    clip = DATA / "ja_cv.flac"
    source = local_store.import_file("kenji", clip)
    request = GenerateSrtRequest(model="base", vtt=True, json_output=True)
    srt: SrtResult = flow_result(generate_srt, "kenji", source.id, request)
    assert srt.language == "ja" and (srt.language_probability or 0) > 0.9
    vtt = local_store.read_text(local_store.get("kenji", srt.vtt_file_id or ""))
    doc = json.loads(local_store.read_text(local_store.get("kenji", srt.json_file_id or "")))
    text: TranscribeResult = flow_result(
        transcribe, "kenji", source.id, TranscribeRequest(model="base")
    )
    cue_text = [c["lines"] for c in doc["cues"]]
    for output in (srt.content, vtt, json.dumps(cue_text, ensure_ascii=False), text.text):
        assert not SPACED_CJK.search(output), output
    # Japanese rules (13 full-width characters a line, 2 lines), the rules the QA counts by.
    assert srt.qa.violations["line_length"] == 0 and srt.qa.max_line_chars <= 13
    # As well heard as the model alone hears it (its segments' own text, no cue building).
    direct = speech.transcribe_file(clip, clip.name, TranscribeRequest(model="base"))
    direct_cer = _cer(direct.text)
    heard = join_words(f" {line}" for lines in cue_text for line in lines)
    assert _cer(heard) <= direct_cer + 0.05, (heard, direct.text)
    assert _cer(text.text) <= direct_cer + 0.05, (text.text, direct.text)
