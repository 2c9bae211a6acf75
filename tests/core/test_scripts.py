"""Subtitles and transcripts in scripts written without spaces: cue text rebuilt from the word
tokens as the recogniser wrote them (Japanese, Chinese, Thai, Latin inside Japanese), widths
counted as the style guides count them, each language's line rules, and Chinese in the script a
request asks for."""

from __future__ import annotations

import re

import pytest

from mediaflows import subtitles
from mediaflows.languages import join_words, parse_language
from mediaflows.models import CueRules, TranscribeRequest
from mediaflows.speech import Segment, Transcription, Word, in_script
from mediaflows.speech.endpoint import _segments
from mediaflows.subtitles.lines import rules_for
from mediaflows.subtitles.records import visible_width

#: Two characters of Chinese or Japanese with an ASCII space between them: what a viewer must
#: never see.
SPACED_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff、。，！？][ ][\u3040-\u30ff\u3400-\u9fff]")


def heard(*segments: list[str], language: str, step: float = 0.25) -> Transcription:
    """A transcription of segments made of these word tokens, as faster-whisper writes them."""
    t, made = 0.5, []
    for tokens in segments:
        words = []
        for token in tokens:
            words.append(Word(start=round(t, 3), end=round(t + step, 3), text=token))
            t += step
        made.append(Segment(start=words[0].start, end=words[-1].end,
                            text=join_words(tokens), words=tuple(words)))  # fmt: skip
        t += 0.3
    return Transcription(language=language, language_probability=1.0, duration=t,
                         segments=tuple(made), model="test")  # fmt: skip


# The tokens faster-whisper's multilingual base model gave for the fixture tests/data/ja_cv.flac.
JA = ["マ", "ッ", "ピ", "ル", "マ", "ナ", "ノ", "ギ、", "キ", "ャ", "ンプ", "の", "外", "れ", "の",
      "電", "中", "に、", "電", "球", "が", "止", "ま", "って", "いた。"]  # fmt: skip
ZH = ["歡迎", "大家", "來", "體", "驗", "達", "摩", "院", "推", "出", "的", "語", "音", "識", "別",
      "模", "型"]  # fmt: skip
TH = ["สวัสดี", "ครับ", " วันนี้", "อากาศ", "ดี", "มาก"]
MIXED = ["私", "は", " Prefect", " を", "使", "って", "います", "。"]


@pytest.mark.parametrize(
    ("tokens", "language", "text"),
    [
        (JA, "ja", "マッピルマナノギ、キャンプの外れの電中に、電球が止まっていた。"),
        (ZH, "zh", "歡迎大家來體驗達摩院推出的語音識別模型"),
        (TH, "th", "สวัสดีครับ วันนี้อากาศดีมาก"),  # the model's phrase space is kept
        (MIXED, "ja", "私は Prefect を使っています。"),  # a Latin word keeps its spaces
        ([" And", " so", " my", " fellow", " Americans"], "en", "And so my fellow Americans"),
    ],
)
def test_cue_text_is_the_tokens_as_written(tokens: list[str], language: str, text: str) -> None:
    transcription = heard(tokens, language=language)
    rules = rules_for(language, CueRules())
    rendered = subtitles.render(transcription, rules, vtt=True, json_output=True)
    # Read line after line, the cues say the text (a line break stands for a space, or for
    # nothing between two Japanese or Chinese characters).
    assert join_words(f" {line}" for c in rendered.cues for line in c.lines) == text
    for output in (rendered.srt, rendered.vtt or "", rendered.json_text or "", transcription.text):
        assert not SPACED_CJK.search(output), output
    assert transcription.text == text
    # Cue boundaries and line breaks fall between tokens, never inside one.
    stripped = [t.strip() for t in tokens]
    for cue in rendered.cues:
        for line in cue.lines:
            pieces = [p for p in re.split(r"\s", line) if p]
            assert all(any(p.startswith(tok) for tok in stripped) for p in pieces)
    assert rendered.qa.violations["line_length"] == 0


def test_two_japanese_segments_join_without_a_space() -> None:
    transcription = heard(JA[:8], JA[8:], language="ja")
    assert transcription.text == join_words(JA)
    srt = subtitles.render(transcription, rules_for("ja", CueRules())).srt
    assert not SPACED_CJK.search(srt)


def test_endpoint_words_get_spaces_in_latin_only() -> None:
    words = [{"start": 0, "end": 0.5, "word": "電球"}, {"start": 0.5, "end": 1, "word": "が"},
             {"start": 1, "end": 2, "word": "ともっていた"}]  # fmt: skip
    answer = {"text": "", "segments": [{"start": 0, "end": 2, "text": "電球がともっていた"}],
              "words": words}  # fmt: skip
    segments, estimated = _segments(answer, 0.0, 2.0)
    assert not estimated and join_words(w.text for w in segments[0].words) == "電球がともっていた"
    answer = {"text": "", "segments": [{"start": 0, "end": 1, "text": "ask not"}],
              "words": [{"start": 0, "end": 0.5, "word": "ask"},
                        {"start": 0.5, "end": 1, "word": "not"}]}  # fmt: skip
    segments, _ = _segments(answer, 0.0, 1.0)
    assert join_words(w.text for w in segments[0].words) == "ask not"


def test_widths_count_full_width_characters_as_the_guides_do() -> None:
    assert visible_width("電球がともっていた") == 9
    assert visible_width("私は Prefect を使う") == 9.5  # half-width characters count half
    assert visible_width("<i>電球</i>") == 2  # markup is not read
    assert visible_width("Hello there") == 11 and visible_width("สวัสดีครับ") == 10


def test_a_transcript_follows_its_language_s_rules_unless_the_request_sets_them() -> None:
    ja = rules_for("ja", CueRules())
    assert (ja.max_line_chars, ja.max_cps) == (13, 4.0)
    assert rules_for("en", CueRules()) == CueRules()  # the defaults stay the defaults
    chosen = CueRules(max_line_chars=30)
    assert rules_for("ja", chosen) == chosen
    assert rules_for("yue", CueRules()) == CueRules()  # a language mediaflows does not know
    long = heard(JA * 2, language="ja")
    rendered = subtitles.render(long, ja)
    assert all(visible_width(line) <= 13 for c in rendered.cues for line in c.lines)


def test_chinese_in_the_script_the_request_asks_for() -> None:
    traditional = heard(ZH, language="zh")
    simplified = in_script(traditional, "zh-Hans")
    assert simplified.language == "zh-Hans"
    assert simplified.text == "欢迎大家来体验达摩院推出的语音识别模型"
    assert [len(w.text) for s in simplified.segments for w in s.words] == [len(t) for t in ZH]
    assert in_script(simplified, "zh-Hant").text == traditional.text
    assert (
        in_script(traditional, "zh") is traditional and in_script(traditional, None) is traditional
    )
    assert TranscribeRequest(language="zh-Hans").language == "zh-Hans"
    with pytest.raises(ValueError):
        TranscribeRequest(language="zh-Latn")
    assert parse_language("zh-Hans").script == "Han"
