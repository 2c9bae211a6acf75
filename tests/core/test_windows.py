"""merge_short's windows: which short cues pair, the SRT the model is asked, where a window's
translation is cut, and how answers go back to every source cue."""

from __future__ import annotations

from mediaflows.languages import parse_language
from mediaflows.subtitles import ChunkFix, CueText, ParsedSrt, TimedCue
from mediaflows.subtitles.records import visible_width
from mediaflows.subtitles.windows import cut, merged, short_pairs, split_fixes

DE, JA = parse_language("de"), parse_language("ja")


def _cue(id_: int, start: float, end: float, text: str) -> TimedCue:
    return TimedCue(id=id_, start_ms=round(start * 1000), end_ms=round(end * 1000), text=text)


CUES = (
    _cue(1, 0.0, 1.5, "I did not receive\nthe letter that"),  # runs on into 2
    _cue(2, 1.6, 3.6, "is weird."),
    _cue(3, 4.0, 5.0, "Thank you."),  # ends a sentence: not with 4
    _cue(4, 5.2, 6.0, "see you"),
    _cue(5, 9.0, 10.0, "tomorrow."),  # 3 s after 4: too far
    _cue(6, 10.2, 11.0, "- Where is it\n- In the kitchen"),  # two speakers
    _cue(7, 11.1, 12.0, "and the rooms"),
    _cue(8, 12.1, 15.5, "we need for the whole family."),  # 3.4 s: not short
)


def test_only_short_neighbours_of_one_sentence_pair() -> None:
    assert short_pairs(CUES) == ((1, 2),)
    # A cue between them, even an empty one, parts two cues.
    assert short_pairs([_cue(1, 0, 1, "a b"), _cue(2, 1.1, 1.2, ""), _cue(3, 1.3, 2, "c")]) == ()


def test_the_model_is_asked_each_pair_as_one_cue_over_its_window() -> None:
    parsed = ParsedSrt(cues=CUES, encoding="utf-8")
    asked = merged(parsed, short_pairs(CUES)).cues
    assert [c.id for c in asked] == [1, 3, 4, 5, 6, 7, 8]
    first = asked[0]
    assert (first.start_ms, first.end_ms) == (0, 3600)
    assert first.text == "I did not receive the letter that is weird."


def test_a_translation_is_cut_where_both_cues_read_slowest() -> None:
    text = "Ich habe nicht bekommen den Brief das ist seltsam."
    parts = cut(text, (1.5, 2.0), DE)
    assert parts == ("Ich habe nicht bekommen", "den Brief das ist seltsam.")
    speeds = [visible_width(p) / s for p, s in zip(parts, (1.5, 2.0), strict=True)]
    assert max(speeds) < 17  # German's limit; cue by cue the first read 24.0 a second
    # The faster part as slow as it can be: 7 characters in 1 s, 23 in 2 s.
    assert cut("Ja, ich glaube wir gehen jetzt.", (1.0, 2.0), DE) == (
        "Ja, ich", "glaube wir gehen jetzt.",
    )  # fmt: skip
    # A word is never cut: one word cannot be cut at all.
    assert cut("Donaudampfschifffahrt", (1.0, 1.0), DE) is None
    # A tag with a space inside is one token; Japanese is cut between characters.
    tagged = cut('<font color="red">rot</font> und blau', (1.0, 1.0), DE)
    assert tagged == ('<font color="red">rot</font> und', "blau")  # (not "<font" | "color=…")
    assert cut("手紙を受け取っていません", (1.0, 1.0), JA) == ("手紙を受け取", "っていません")


def test_answers_go_back_to_every_source_cue_with_their_times() -> None:
    parsed = ParsedSrt(cues=CUES[:3], encoding="utf-8")
    pairs = short_pairs(parsed.cues)
    answer = ChunkFix(
        index=0, fallback=False, attempts=1,
        texts=(CueText(id=1, text="Ich habe nicht bekommen den Brief das ist seltsam."),
               CueText(id=3, text="Danke.")),
    )  # fmt: skip
    (fix,) = split_fixes([answer], parsed, pairs, DE)
    assert [(t.id, t.text) for t in fix.texts] == [
        (1, "Ich habe nicht bekommen"), (2, "den Brief das ist seltsam."), (3, "Danke."),
    ]  # fmt: skip
    refused = answer.model_copy(update={"rejected": (1,)})
    (fix,) = split_fixes([refused], parsed, pairs, DE)
    assert [t.text for t in fix.texts][:2] == [CUES[0].text, CUES[1].text]  # their own source
    assert fix.rejected == (1, 2)
    one_word = answer.model_copy(update={"texts": (CueText(id=1, text="Seltsam."),)})
    (fix,) = split_fixes([one_word], parsed, pairs, DE)
    assert fix.rejected == (1, 2) and "not cut in two" in fix.problems[-1]
