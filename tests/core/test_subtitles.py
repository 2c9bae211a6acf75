"""Cue building, line breaking, writers and QA on synthetic word timings (no model)."""

from __future__ import annotations

import random

import pysubs2
import pytest

from mediaflows import subtitles
from mediaflows.models import CueRules
from mediaflows.speech import Segment, Transcription, Word
from mediaflows.subtitles import TimedCue, write_srt
from mediaflows.subtitles.formats import vtt
from tests.subtitle_rules import parse, rule_violations, words

_TEXT = (
    "the quick brown fox jumps over lazy dog while every morning we walk to market and buy fresh "
    "bread please call me when you arrive at station tomorrow extraordinary "
    "internationalisation responsibilities"
)
VOCAB = _TEXT.split()


def synthetic(n_words: int, seed: int = 1, cps: float = 14.0) -> Transcription:
    """Speech-like word timings: ~14 characters a second (long words take longer), punctuation,
    and pauses now and then."""
    rng = random.Random(seed)
    t, segments, words_ = 0.5, [], []
    for i in range(n_words):
        text = rng.choice(VOCAB)
        if rng.random() < 0.08:
            text += rng.choice([".", ",", "?"])
        length = (len(text) + 1) / cps * rng.uniform(0.8, 1.2)
        words_.append(Word(start=round(t, 3), end=round(t + length, 3), text=" " + text))
        t += length + (rng.choice([0.0, 0.05, 0.1]) if rng.random() > 0.05 else rng.uniform(1, 3))
        if len(words_) >= 25 or i == n_words - 1:
            segments.append(Segment(start=words_[0].start, end=words_[-1].end,
                                    text=" ".join(w.text.strip() for w in words_),
                                    words=tuple(words_)))  # fmt: skip
            words_ = []
    return Transcription(language="en", language_probability=1.0, duration=t + 1,
                         segments=tuple(segments), model="synthetic")  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_every_cue_meets_every_rule(seed: int) -> None:
    transcription = synthetic(400, seed)
    rendered = subtitles.render(transcription)
    assert rule_violations(rendered.srt) == []
    assert rendered.qa.ok and rendered.qa.cues == len(parse(rendered.srt))
    # No word lost, added, reordered or split.
    assert words(rendered.srt) == transcription.text.split()


@pytest.mark.parametrize("rules", [CueRules(max_line_chars=32), CueRules(max_lines=1),
                                   CueRules(max_cps=15, max_duration=5)])  # fmt: skip
def test_other_rules_are_followed_too(rules: CueRules) -> None:
    transcription = synthetic(300, 7, cps=11.0)
    rendered = subtitles.render(transcription, rules)
    assert rule_violations(rendered.srt, rules) == []
    assert words(rendered.srt) == transcription.text.split()


def test_lines_are_balanced_and_break_after_punctuation() -> None:
    rules = CueRules()
    lines = subtitles.break_lines(
        ["I", "came", "home", "late,", "and", "the", "cat", "was", "asleep", "on", "my", "bed"],
        rules,
    )
    assert lines == ["I came home late,", "and the cat was asleep on my bed"]
    lines = subtitles.break_lines(
        ["one", "two", "three", "four", "five", "six", "seven", "eight"], rules
    )
    assert lines == ["one two three four five six seven eight"]  # fits one line
    assert subtitles.break_lines(["x" * 50], rules) is None


def test_pause_ends_a_cue() -> None:
    # Words as faster-whisper writes them: each with its leading space.
    w = [Word(start=0, end=0.4, text=" Hello"), Word(start=0.4, end=0.9, text=" there."),
         Word(start=3.0, end=3.4, text=" Next"), Word(start=3.4, end=3.9, text=" one")]  # fmt: skip
    t = Transcription(language="en", language_probability=1, duration=4, model="m",
                      segments=(Segment(start=0, end=3.9, text="x", words=tuple(w)),))  # fmt: skip
    cues = subtitles.build_cues(t)
    assert [c.text for c in cues] == ["Hello there.", "Next one"]
    assert cues[0].duration >= 0.83 and cues[0].end <= cues[1].start


def test_fast_speech_is_stretched_into_the_gap() -> None:
    text = "this sentence has quite a lot of characters"
    w = [
        Word(start=1 + i * 0.05, end=1 + (i + 1) * 0.05, text=f" {x}")
        for i, x in enumerate(text.split())
    ]
    t = Transcription(language="en", language_probability=1, duration=9, model="m",
                      segments=(Segment(start=1, end=2, text=text, words=tuple(w)),))  # fmt: skip
    (cue,) = subtitles.build_cues(t)
    assert cue.chars / cue.duration <= 20


def test_writers_round_trip() -> None:
    """Speech heard with braces is written with parentheses (a writer would take braces for an
    ASS override block); the cues built from speech go to every writer as they are."""
    w = [Word(start=0.5, end=1.0, text=" Hello"), Word(start=1.0, end=1.6, text=" {world}")]
    segment = Segment(start=0.5, end=1.6, text="x", words=tuple(w))
    t = Transcription(language="en", language_probability=1, duration=5, model="m",
                      segments=(segment,))  # fmt: skip
    (heard,) = subtitles.build_cues(t)
    assert heard.text == "Hello (world)" and heard.lines == ("Hello (world)",)
    cues = [TimedCue(id=1, start_ms=500, end_ms=2000, text=f"{heard.text}\nsecond line"),
            TimedCue(id=2, start_ms=2100, end_ms=4000, text="ünïcödé — ok")]  # fmt: skip
    srt_text = write_srt(cues)
    parsed = parse(srt_text)
    assert [p.content for p in parsed] == ["Hello (world)\nsecond line", "ünïcödé — ok"]
    assert parsed[0].start.total_seconds() == 0.5 and parsed[1].end.total_seconds() == 4.0
    vtt_text = vtt.write(cues)
    assert vtt_text.startswith("WEBVTT") and len(pysubs2.SSAFile.from_string(vtt_text)) == 2
    assert write_srt([]) == ""


def test_qa_counts_each_broken_rule() -> None:
    cues = [
        TimedCue(id=1, start_ms=0, end_ms=500, text="x" * 50),
        TimedCue(id=2, start_ms=400, end_ms=9000, text="a\nb\nc"),
        TimedCue(id=3, start_ms=9000, end_ms=9500, text="many characters in half a second"),
    ]
    qa = subtitles.qa_report(cues)
    assert qa.violations["line_length"] == 1 and qa.violations["line_count"] == 1
    assert qa.violations["min_duration"] == 2 and qa.violations["max_duration"] == 1
    assert qa.violations["overlap"] == 1 and qa.violations["reading_speed"] == 2
    assert qa.examples["overlap"] == [2] and not qa.ok
