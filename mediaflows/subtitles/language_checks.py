"""Cheap checks that a text is in a language: the share of its letters in each script, and for
Latin-script languages a few very common words. Enough to tell a translation from the source
left as it was, from a third language, or from an answer that obeys an instruction ("OK")."""

from __future__ import annotations

import re
import unicodedata

from mediaflows.languages import LANGUAGES, UNSPACED, Language
from mediaflows.subtitles.records import MARKUP, visible_len

#: The language a script most likely means when it is all the text has to go on.
_SCRIPT_LANGUAGE = {"Han": "zh", "Japanese": "ja", "Hangul": "ko", "Greek": "el", "Hebrew": "he",
                    "Thai": "th", "Cyrillic": "ru", "Arabic": "ar", "Devanagari": "hi"}  # fmt: skip

#: A few very common words per Latin-script language: enough to tell one from another in a
#: subtitle line (a cue left in the source language, or answered in a third one).
_COMMON_WORDS: dict[str, frozenset[str]] = {
    code: frozenset(words.split())
    for code, words in {
        "en": "the and is are you i to of it that this what we not have with for was be my",
        "de": "der die das und ist nicht ich du sie wir ein eine zu mit es den auf sich ja",
        # de; and qu' c' j' n' as the words are split at apostrophes
        "fr": "le la les et est je tu vous nous pas une un des du que qui ce dans pour sur de "
        "qu c j n",
        "es": "el la los las y es no yo tú que un una de del en por para con se lo muy",
        "it": "il lo la gli le e è non io tu che un una di del in per con si sono mi",
        "pt": "o a os as e é não eu você que um uma de do da em para com se isso",
        "nl": "de het een en is niet ik je jij wij van dat die in op met voor zijn",
    }.items()
}


def _script_of(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    for prefix, script in (("CJK", "Han"), ("HIRAGANA", "Japanese"), ("KATAKANA", "Japanese"),
                           ("HANGUL", "Hangul"), ("CYRILLIC", "Cyrillic"), ("GREEK", "Greek"),
                           ("ARABIC", "Arabic"), ("HEBREW", "Hebrew"), ("THAI", "Thai"),
                           ("DEVANAGARI", "Devanagari"), ("BENGALI", "Bengali"),
                           ("TAMIL", "Tamil"), ("LATIN", "Latin")):  # fmt: skip
        if name.startswith(prefix):
            return script
    return None


def script_shares(text: str) -> dict[str, float]:
    """Which share of the letters is in each script (markup and digits ignored)."""
    counts: dict[str, int] = {}
    for ch in plain_text(text):
        script = _script_of(ch)
        if script is not None:
            counts[script] = counts.get(script, 0) + 1
    total = sum(counts.values())
    return {s: n / total for s, n in counts.items()} if total else {}


def _in_script(shares: dict[str, float], script: str) -> float:
    if script == "Japanese":  # kana with kanji
        return shares.get("Japanese", 0.0) + shares.get("Han", 0.0)
    return shares.get(script, 0.0)


def plain_text(text: str) -> str:
    """``text`` as a viewer reads it: without markup (``<i>``, ``<font …>``, ``{\\an8}``), whose
    letters are no words of any language (``<i>`` is not the English "I")."""
    return MARKUP.sub("", text)


def _common_words(text: str) -> dict[str, int] | None:
    """How many of the text's words are common words of each language (None: under 3 words)."""
    words = re.findall(r"[^\W\d_]+", plain_text(text).lower())
    if len(words) < 3:
        return None
    return {code: sum(w in common for w in words) for code, common in _COMMON_WORDS.items()}


def common_word_language(text: str) -> str | None:
    """The Latin-script language whose common words the text uses most (None: no clear one)."""
    scores = _common_words(text)
    if scores is None:
        return None
    best = max(scores, key=lambda c: scores[c])
    ranked = sorted(scores.values(), reverse=True)
    if ranked[0] < 2 or ranked[0] == ranked[1]:
        return None
    return best


def detect_language(text: str) -> str | None:
    """A cheap guess at the language of a whole file's text: its script where that settles it,
    else its common words (None: no guess; the model is then told to work it out)."""
    shares = script_shares(text)
    if not shares:
        return None
    script = max(shares, key=lambda s: shares[s])
    if script == "Latin":
        return common_word_language(text)
    if script == "Han" and shares.get("Japanese", 0) > 0.05:
        return "ja"
    return _SCRIPT_LANGUAGE.get(script)


def not_in_language(text: str, original: str, target: Language) -> str | None:
    """Why ``text`` does not look like a translation of ``original`` into ``target`` (None: it
    does). Cheap checks only: the target's script, the text left as it was, and for Latin-script
    languages the common words of another language."""
    shares = script_shares(text)
    if not shares:
        return None  # digits, punctuation, a name: nothing to check
    if _in_script(shares, target.script) < 0.5:
        found = max(shares, key=lambda s: shares[s])
        return f"not in {target.name} ({found} script)"
    plain = plain_text(text).split()
    if (
        len(plain) >= 3
        and " ".join(plain).casefold() == " ".join(plain_text(original).split()).casefold()
    ):
        return "left untranslated"
    if target.script == "Latin" and target.base in _COMMON_WORDS:
        other = reads_as_other(text, target.base)
        if other is not None:
            return f"not in {target.name} (reads as {LANGUAGES[other][0]})"
    return None


def reads_as_other(text: str, language: str) -> str | None:
    """Another Latin-script language whose common words outnumber ``language``'s in the text
    by two or more (None: none does). One word apart is no evidence in a subtitle line: the
    languages share short words ("de", "a", "la"), and on 2,678 real cues (Spanish, French,
    English files in tests/data/subtitles) a lead of one refused 4 % of the right language."""
    scores = _common_words(text)
    if scores is None:
        return None
    best = max(scores, key=lambda c: scores[c])
    if best != language and scores[best] >= 2 and scores[best] - scores[language] >= 2:
        return best
    return None


def implausible_length(text: str, original: str, target: Language) -> str | None:
    """Why ``text`` is too short or too long to be a translation of ``original`` (None: it is
    plausible). Catches an answer that obeys an instruction instead of translating ("OK").
    Bounds are loose: scripts without spaces take 3-10 times fewer characters."""
    src, dst = visible_len(original), visible_len(text)
    if src < 12:
        return None
    shares = script_shares(original)
    src_unspaced = bool(shares) and max(shares, key=lambda s: shares[s]) in UNSPACED
    if src_unspaced == target.unspaced:
        low, high = 0.33, 3.0
    else:
        low, high = (0.1, 1.5) if target.unspaced else (0.8, 8.0)
    ratio = dst / src
    if ratio < low:
        return f"too short for a translation ({dst} characters for {src})"
    if ratio > high:
        return f"too long for a translation ({dst} characters for {src})"
    return None
