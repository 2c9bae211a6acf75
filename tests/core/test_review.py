"""A reviewer's answer, checked and applied as the run does it (mediaflows.subtitles.review)."""

from __future__ import annotations

import pytest

from mediaflows.errors import ReviewRefusedError
from mediaflows.models import ReviewCue
from mediaflows.subtitles import review
from mediaflows.subtitles.chunks import ChunkFix, CueText


def _cue(source: str, current: str | None = None, language: str = "de", number: int = 5,
         max_line_chars: int = 42, duration: float = 3.0) -> ReviewCue:  # fmt: skip
    return ReviewCue(
        key=review.cue_key(language, number), field=review.field_name(language, number),
        language=language, number=number, start="00:00:01,000", end="00:00:04,000",
        duration=duration, source=source, current=current or source, reasons=("why",),
        max_lines=2, max_line_chars=max_line_chars, max_cps=17.0,
    )  # fmt: skip


def test_keys_and_form_fields_name_the_cue_and_its_language() -> None:
    assert (review.cue_key("", 12), review.field_name("", 12)) == ("12", "cue_12")
    assert (review.cue_key("pt-BR", 3), review.field_name("pt-BR", 3)) == ("pt-BR:3", "pt_BR_3")


def test_an_answer_keeps_the_reviewers_lines_when_they_fit_and_is_wrapped_when_not() -> None:
    cue = _cue("We need separate rooms because the house is very small.")
    assert (
        review.fit_answer(cue, "Wir brauchen\ngetrennte Zimmer.")
        == "Wir brauchen\ngetrennte Zimmer."
    )
    long = "Wir brauchen getrennte Zimmer, weil das Haus sehr klein ist."
    assert (
        review.fit_answer(cue, long)
        == "Wir brauchen getrennte Zimmer,\nweil das Haus sehr klein ist."
    )
    assert (
        review.fit_answer(cue, "- Wo ist er?\n- In der Küche.") == "- Wo ist er?\n- In der Küche."
    )


@pytest.mark.parametrize(
    ("source", "answer", "reason"),
    [
        ("<i>I did not get it.</i>", "Ich habe es nicht bekommen.", "markup changed"),
        ("Hello.", "   ", "empty"),
        ("Hello.", "Hallo " * 20, "does not fit 2 lines of 42 characters"),
    ],
)
def test_an_answer_that_breaks_the_rules_is_refused_with_the_cue_named(
    source: str, answer: str, reason: str
) -> None:
    with pytest.raises(ReviewRefusedError, match=f"cue de:5: .*{reason}"):
        review.fit_answer(_cue(source), answer)


def test_one_bad_cue_refuses_the_whole_answer_and_unknown_cues_are_named() -> None:
    cues = [_cue("Hello.", number=5), _cue("<i>Bye.</i>", number=6)]
    assert review.check_answer(cues, {"de:5": "Hallo.", "de:6": "accept"}) == {"de:5": "Hallo."}
    assert review.check_answer(cues, {"de:5": None, "de:6": "<i>Bye.</i>"}) == {}
    with pytest.raises(ReviewRefusedError) as refused:
        review.check_answer(cues, {"de:5": "Hallo " * 20, "de:6": "Tschüss."})
    assert "cue de:5" in str(refused.value) and "cue de:6: markup changed" in str(refused.value)
    with pytest.raises(ReviewRefusedError, match=r"cue de:7 was not flagged .*de:5, de:6"):
        review.check_answer(cues, {"de:7": "x"})


def test_the_record_says_what_changed_what_was_accepted_and_what_reads_too_fast() -> None:
    cues = [_cue("Hello.", number=5, duration=1.0), _cue("Bye.", number=6)]
    record = review.record(cues, {"de:5": "Hallo, wie geht es dir heute?"}, "ana")
    assert [(c.key, c.before, c.after) for c in record.changed] == [
        ("de:5", "Hello.", "Hallo, wie geht es dir heute?")
    ]
    assert record.accepted == ("de:6",) and record.too_fast == ("de:5",)
    assert record.changed[0].cps == 29.0


def test_an_edit_in_a_chunk_that_fell_back_leaves_its_other_cues_kept() -> None:
    fell_back = ChunkFix(index=0, texts=(CueText(id=1, text="a"), CueText(id=2, text="b")),
                         fallback=True, attempts=3)  # fmt: skip
    fine = ChunkFix(index=1, texts=(CueText(id=3, text="c"),), fallback=False, attempts=1,
                    rejected=(3,))  # fmt: skip
    out = review.reviewed_fixes([fell_back, fine], {1: "A", 3: "C"})
    assert [t.text for f in out for t in f.texts] == ["A", "b", "C"]
    assert (out[0].fallback, out[0].rejected) == (False, (2,))
    assert out[1].rejected == ()
