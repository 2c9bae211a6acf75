"""Translation in the core, over real HTTP to the loopback OpenAI-compatible server: the line
rules every output cue keeps (fallback cues included)."""

from __future__ import annotations

import json

import pytest

from mediaflows.errors import ChunkRefusedError
from mediaflows.languages import parse_language
from mediaflows.settings import get_settings
from mediaflows.subtitles import chunks, line_rules, read_srt, translation
from mediaflows.subtitles.records import ParsedSrt, visible_width
from tests.llm_server import LLMServer
from tests.srt_samples import talk_srt

#: A 60-character line: fine where it came from as one line, too long for any target's line.
LONG_LINE = "We need separate rooms for the whole family in the house now."
#: A "word" longer than any line: it cannot fit, whatever the wrap.
UNBREAKABLE = "See https://example.com/a-very-long-address/that-never-ends-at-all"


def _srt(texts: list[str], seconds: float = 4.0) -> ParsedSrt:
    blocks = []
    for i, text in enumerate(texts):
        start, end = i * seconds, (i + 1) * seconds - 0.1
        blocks.append(f"{i + 1}\n{_tc(start)} --> {_tc(end)}\n{text}\n")
    return read_srt("\n".join(blocks).encode())


def _tc(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02}:{ms // 60_000 % 60:02}:{ms // 1000 % 60:02},{ms % 1000:03}"


def _translate(parsed: ParsedSrt, target: str) -> list[chunks.ChunkFix]:
    settings = get_settings().llm
    model = settings.resolve_model(None)
    fixes = []
    for chunk in chunks.plan_chunks(parsed.cues, settings.chunk_cues, settings.context_cues):
        try:
            fixes.append(translation.translate_chunk(chunk, model, target, "en"))
        except ChunkRefusedError as exc:
            fixes.append(exc.fix)
    return fixes


def _lines_within(text: str, target: str) -> bool:
    rules = line_rules(parse_language(target))
    lines = text.split("\n")
    return len(lines) <= rules.max_lines and all(
        visible_width(line) <= rules.max_line_chars for line in lines
    )


@pytest.mark.parametrize("target", ["de", "zh-Hans"])
def test_a_cue_that_keeps_its_source_text_is_wrapped_to_the_targets_rules(
    llm_server: LLMServer, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIAFLOWS_LLM__CHUNK_CUES", "1")  # one refused cue, not its chunk
    get_settings.cache_clear()
    parsed = _srt(["I did not receive the letter.", LONG_LINE, "Thank you."])
    llm_server.set_mode("untranslated", match="separate rooms")  # the source text back: refused
    fixes = _translate(parsed, target)
    language = parse_language(target)
    rendered = translation.render_translation(parsed, fixes, language, source=parse_language("en"))
    report = translation.summarize(parsed, fixes, rendered, language, "m", "en")
    assert report.untranslated == (2,)
    kept = rendered.cues[1]
    assert " ".join(kept.lines) == LONG_LINE  # its source text, every word in order …
    if target == "de":
        assert len(kept.lines) == 2  # … on the target's two lines, not one of 60 characters
        assert all(_lines_within(c.text, target) for c in rendered.cues)
        assert rendered.qa.violations["line_length"] == 0 and report.unfit == ()
    else:  # 16 characters a line hold no 60-character sentence: reported, not silently long
        assert report.unfit == (2,) and rendered.qa.violations["line_count"] == 1
        assert all(visible_width(line) <= 16 for line in kept.lines[:-1])
    assert [c.start for c in rendered.cues] == [c.start_ms / 1000 for c in parsed.cues]
    both = translation.render_translation(parsed, fixes, language, bilingual=True)
    assert both.cues[1].text == LONG_LINE  # the source shown once, not above itself
    assert both.cues[0].lines[0] == "I did not receive the letter." and len(both.cues[0].lines) > 1


def test_a_fallback_chunk_is_wrapped_and_what_cannot_fit_is_reported(
    llm_server: LLMServer,
) -> None:
    parsed = _srt([LONG_LINE, UNBREAKABLE])
    llm_server.set_mode("wrong_count")  # never a valid answer: the chunk keeps its source text
    fixes = _translate(parsed, "de")
    assert all(f.fallback for f in fixes)
    language = parse_language("de")
    rendered = translation.render_translation(parsed, fixes, language, source=parse_language("en"))
    report = translation.summarize(parsed, fixes, rendered, language, "m", "en")
    assert _lines_within(rendered.cues[0].text, "de") and len(rendered.cues[0].lines) == 2
    # The address is one word of 60 characters: no wrap fits it; counted twice over.
    assert report.unfit == (2,) and rendered.qa.violations["line_length"] == 1
    assert "over de's line rules" in translation.qa_line("de", rendered.qa, report)


def test_translations_are_condensed_to_their_reading_speed(
    llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """German runs ~30 % longer than English (the server's ``verbose`` mode); each cue goes with
    its character budget, the cues over it are asked once to condense, and the file stored
    reads at German's speed with few exceptions, its times the source's."""
    parsed = read_srt(talk_srt(60))
    llm_server.set_mode("verbose")
    fixes = _translate(parsed, "de")
    language = parse_language("de")
    rendered = translation.render_translation(parsed, fixes, language, source=parse_language("en"))
    report = translation.summarize(parsed, fixes, rendered, language, "m", "en")
    reading = report.reading
    # Every cue went with its budget, never with a time.
    first = [r for r in llm_server.requests if r.user_messages == 1]
    sent = [c for r in first for c in json.loads(r.messages[1]["content"])["cues"]]
    assert len(sent) == 60 and all(c["max_chars"] == _budget(parsed, c["id"]) for c in sent)
    assert all("-->" not in r.body for r in llm_server.requests)
    # One condense request a chunk (each had cues over budget), showing the model its answer.
    condense = [r for r in llm_server.requests if r.user_messages == 2]
    assert len(condense) == len(fixes) == reading.condense_requests == 3
    assert all(r.messages[2]["role"] == "assistant" for r in condense)
    asked = json.loads(condense[0].messages[3]["content"])
    assert "Condense" in asked["instruction"] and all("max_chars" in c for c in asked["cues"])
    # Before: most cues too fast. After: at most 10 %, and what is left is counted, not hidden.
    assert reading.share_too_fast_before >= 0.5, reading
    assert reading.share_too_fast <= 0.10, reading
    fast = [c.index for c in rendered.cues if c.chars / c.duration > 17 + 1e-6]
    assert list(report.too_fast) == fast and reading.share_too_fast == round(len(fast) / 60, 4)
    assert 0 < reading.chars_over_budget < reading.chars_over_budget_before
    assert reading.condensed >= reading.too_fast_before - len(fast)
    assert "before condensing" in translation.qa_line("de", rendered.qa, report)
    # The times are the source's; every line within German's rules, the refused cue included.
    assert [(round(c.start * 1000), round(c.end * 1000)) for c in rendered.cues] == [
        (c.start_ms, c.end_ms) for c in parsed.cues
    ]
    assert report.untranslated and all(_lines_within(c.text, "de") for c in rendered.cues)
    assert rendered.qa.violations["line_length"] == 0 and report.unfit == ()


def _budget(parsed: ParsedSrt, cue_id: int) -> int:
    cue = parsed.cues[cue_id - 1]
    return min(int(17 * (cue.end_ms - cue.start_ms) / 1000 + 1e-6), 84)
