"""Translation in the core, over real HTTP to the loopback OpenAI-compatible server: the line
rules every output cue keeps (fallback cues included)."""

from __future__ import annotations

import pytest

from mediaflows.errors import ChunkRefusedError
from mediaflows.languages import parse_language
from mediaflows.settings import get_settings
from mediaflows.subtitles import chunks, line_rules, read_srt, translation
from mediaflows.subtitles.records import ParsedSrt, visible_width
from tests.llm_server import LLMServer

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
