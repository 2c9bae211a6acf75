"""Languages as subtitle translation needs them: which codes are known, what they are called
(for the prompt), which script they are written in (for a cheap check that an answer is in the
target language), and their subtitle line rules.

Line rules follow Netflix's Timed Text Style Guides, the reference most subtitle vendors work to:
42 characters a line, 2 lines, 17 characters a second for the English template and most
languages written with spaces; 16 characters a line and 9 a second for Chinese, 13 and 4 for
Japanese, 16 and 12 for Korean.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediaflows.errors import InputError
from mediaflows.subtitles import MARKUP, visible_len

if TYPE_CHECKING:
    from mediaflows.models import CueRules

#: Base language code (ISO 639-1) → (English name, script). Scripts: Latin, Cyrillic, Greek,
#: Arabic, Hebrew, Devanagari, Bengali, Thai, Han (Chinese), Japanese (kana + Han), Hangul.
LANGUAGES: dict[str, tuple[str, str]] = {
    "af": ("Afrikaans", "Latin"), "ar": ("Arabic", "Arabic"), "bg": ("Bulgarian", "Cyrillic"),
    "bn": ("Bengali", "Bengali"), "ca": ("Catalan", "Latin"), "cs": ("Czech", "Latin"),
    "cy": ("Welsh", "Latin"), "da": ("Danish", "Latin"), "de": ("German", "Latin"),
    "el": ("Greek", "Greek"), "en": ("English", "Latin"), "es": ("Spanish", "Latin"),
    "et": ("Estonian", "Latin"), "eu": ("Basque", "Latin"), "fa": ("Persian", "Arabic"),
    "fi": ("Finnish", "Latin"), "fil": ("Filipino", "Latin"), "fr": ("French", "Latin"),
    "ga": ("Irish", "Latin"), "gl": ("Galician", "Latin"), "he": ("Hebrew", "Hebrew"),
    "hi": ("Hindi", "Devanagari"), "hr": ("Croatian", "Latin"), "hu": ("Hungarian", "Latin"),
    "id": ("Indonesian", "Latin"), "is": ("Icelandic", "Latin"), "it": ("Italian", "Latin"),
    "ja": ("Japanese", "Japanese"), "ko": ("Korean", "Hangul"), "lt": ("Lithuanian", "Latin"),
    "lv": ("Latvian", "Latin"), "mr": ("Marathi", "Devanagari"), "ms": ("Malay", "Latin"),
    "nb": ("Norwegian Bokmål", "Latin"), "nl": ("Dutch", "Latin"), "no": ("Norwegian", "Latin"),
    "pl": ("Polish", "Latin"), "pt": ("Portuguese", "Latin"), "ro": ("Romanian", "Latin"),
    "ru": ("Russian", "Cyrillic"), "sk": ("Slovak", "Latin"), "sl": ("Slovenian", "Latin"),
    "sr": ("Serbian", "Cyrillic"), "sv": ("Swedish", "Latin"), "sw": ("Swahili", "Latin"),
    "ta": ("Tamil", "Tamil"), "th": ("Thai", "Thai"), "tr": ("Turkish", "Latin"),
    "uk": ("Ukrainian", "Cyrillic"), "ur": ("Urdu", "Arabic"), "vi": ("Vietnamese", "Latin"),
    "zh": ("Chinese", "Han"),
}  # fmt: skip

#: The language a script most likely means when it is all the text has to go on.
_SCRIPT_LANGUAGE = {"Han": "zh", "Japanese": "ja", "Hangul": "ko", "Greek": "el", "Hebrew": "he",
                    "Thai": "th", "Cyrillic": "ru", "Arabic": "ar", "Devanagari": "hi"}  # fmt: skip

#: Scripts whose text is written without spaces between words (wrapped by characters).
UNSPACED = {"Han", "Japanese", "Thai"}

#: (characters a line, characters a second) where they differ from the default (42, 17).
_LINE_RULES = {"zh": (16, 9.0), "ja": (13, 4.0), "ko": (16, 12.0), "th": (35, 15.0)}

#: Script subtags (BCP-47) and the script they mean.
_SCRIPT_TAGS = {"Hans": "Han", "Hant": "Han", "Latn": "Latin", "Cyrl": "Cyrillic",
                "Arab": "Arabic"}  # fmt: skip
_TAG = re.compile(r"^([a-z]{2,3})(?:-([A-Z][a-z]{3}))?(?:-([A-Z]{2}|[0-9]{3}))?$")

#: A few very common words per Latin-script language: enough to tell one from another in a
#: subtitle line (a cue left in the source language, or answered in a third one).
_COMMON_WORDS: dict[str, frozenset[str]] = {
    code: frozenset(words.split())
    for code, words in {
        "en": "the and is are you i to of it that this what we not have with for was be my",
        "de": "der die das und ist nicht ich du sie wir ein eine zu mit es den auf sich ja",
        "fr": "le la les et est je tu vous nous pas une un des du que qui ce dans pour sur",
        "es": "el la los las y es no yo tú que un una de del en por para con se lo muy",
        "it": "il lo la gli le e è non io tu che un una di del in per con si sono mi",
        "pt": "o a os as e é não eu você que um uma de do da em para com se isso",
        "nl": "de het een en is niet ik je jij wij van dat die in op met voor zijn",
    }.items()
}


@dataclass(frozen=True)
class Language:
    """A target or source language: its BCP-47 tag and what follows from it."""

    tag: str
    base: str
    name: str
    script: str

    @property
    def rules(self) -> CueRules:
        """Its subtitle line rules (characters a line, 2 lines, characters a second)."""
        from mediaflows.models import CueRules  # models validates tags with this module

        chars, cps = _LINE_RULES.get(self.base, (42, 17.0))
        return CueRules(max_line_chars=chars, max_lines=2, max_cps=cps)

    @property
    def unspaced(self) -> bool:
        return self.script in UNSPACED

    def describe(self) -> str:
        """How the prompt names it ("Chinese (zh-Hans)")."""
        if self.tag.endswith(("-Hans",)):
            return "Simplified Chinese (zh-Hans)"
        if self.tag.endswith(("-Hant",)):
            return "Traditional Chinese (zh-Hant)"
        return f"{self.name} ({self.tag})"


def parse_language(tag: str) -> Language:
    """The language of a BCP-47 tag (``de``, ``pt-BR``, ``zh-Hans``); :class:`InputError` for a
    malformed tag or a language mediaflows does not know."""
    parts = tag.strip().replace("_", "-").split("-")
    canonical = "-".join(
        p.lower() if i == 0 else p.title() if len(p) == 4 else p.upper()
        for i, p in enumerate(parts)
    )  # BCP-47 tags are case-insensitive: de-at → de-AT, zh-hans → zh-Hans
    match = _TAG.match(canonical)
    if match is None:
        raise InputError(f"{tag!r} is not a language code (BCP-47: de, pt-BR, zh-Hans)")
    base, script_tag = match.group(1), match.group(2)
    if base not in LANGUAGES:
        raise InputError(f"unknown language {base!r}; known: {', '.join(sorted(LANGUAGES))}")
    name, script = LANGUAGES[base]
    if script_tag is not None:
        script = _SCRIPT_TAGS.get(script_tag, script)
    return Language(tag=match.group(0), base=base, name=name, script=script)


def same_language(a: str, b: str) -> bool:
    """True when two tags name the same language (``de`` and ``de-AT``; not ``zh-Hans`` and
    ``zh-Hant``)."""
    la, lb = parse_language(a), parse_language(b)
    return la.base == lb.base and la.script == lb.script


# ---- telling languages apart ------------------------------------------------------------------


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
    for ch in MARKUP.sub("", text):
        script = _script_of(ch)
        if script is not None:
            counts[script] = counts.get(script, 0) + 1
    total = sum(counts.values())
    return {s: n / total for s, n in counts.items()} if total else {}


def _in_script(shares: dict[str, float], script: str) -> float:
    if script == "Japanese":  # kana with kanji
        return shares.get("Japanese", 0.0) + shares.get("Han", 0.0)
    return shares.get(script, 0.0)


def common_word_language(text: str) -> str | None:
    """The Latin-script language whose common words the text uses most (None: no clear one)."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    if len(words) < 3:
        return None
    scores = {code: sum(w in common for w in words) for code, common in _COMMON_WORDS.items()}
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
    plain = MARKUP.sub("", text).split()
    if len(plain) >= 3 and " ".join(plain).casefold() == " ".join(original.split()).casefold():
        return "left untranslated"
    if target.script == "Latin":
        guess = common_word_language(text)
        if guess is not None and guess != target.base and target.base in _COMMON_WORDS:
            return f"not in {target.name} (reads as {LANGUAGES[guess][0]})"
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


# ---- line rules --------------------------------------------------------------------------------

_BREAK_AFTER = set("，。、！？；：,.!?;:…")


def wrap(text: str, language: Language, max_lines: int | None = None) -> str:
    """``text`` on the fewest lines (at most 2 by the rules; more only when it cannot fit) of at
    most the language's characters a line, balanced, never splitting a word. Scripts without
    spaces break between characters, after punctuation when it is near the balanced point.
    Markup tags move with the word they touch; a leading ``{\\an8}`` stays first."""
    rules = language.rules
    parts = [part.strip() for part in text.split("\n") if part.strip()]
    flat = parts[0] if parts else ""
    for part in parts[1:]:  # scripts without spaces join lines without one (unless Latin meets)
        glue = "" if language.unspaced and not (flat[-1].isascii() and part[0].isascii()) else " "
        flat += glue + part
    # A tag with spaces inside (<font color="x">) is one token: no line break inside it.
    flat = MARKUP.sub(lambda m: m.group(0).replace(" ", "\x00"), flat)
    if visible_len(flat) <= rules.max_line_chars:
        return flat.replace("\x00", " ")
    lines = max_lines or rules.max_lines
    while True:
        wrapped = (
            _wrap_unspaced(flat, lines) if language.unspaced else _wrap_words(flat.split(), lines)
        )  # fmt: skip
        if all(visible_len(line) <= rules.max_line_chars for line in wrapped) or lines >= 4:
            return "\n".join(wrapped).replace("\x00", " ")
        lines += 1  # too long for the rules: more lines (counted in the QA), not a cut word


def _wrap_words(words: list[str], lines: int) -> list[str]:
    """Words over ``lines`` lines, the longest line as short as possible (balanced)."""
    if len(words) <= 1 or lines <= 1:
        return [" ".join(words)]
    best: list[str] | None = None
    best_score = float("inf")
    for cut in range(1, len(words)):
        head = " ".join(words[:cut])
        tail = _wrap_words(words[cut:], lines - 1)
        score = max(visible_len(head), *(visible_len(t) for t in tail))
        if score < best_score:
            best, best_score = [head, *tail], score
    return best or [" ".join(words)]


#: One unit of unspaced text: a character, or a Latin word or number, with the markup before it
#: and closing tags after it (a line never breaks inside a unit).
_UNIT = re.compile(r"(?:<[^/<>][^<>]*>|\{\\[^{}]*\})*(?:[A-Za-z0-9'\x00]+|\s|.)(?:</[^<>]*>)*")


def _wrap_unspaced(text: str, lines: int) -> list[str]:
    """Text without spaces over ``lines`` lines of near-equal length, a break moved to just after
    a punctuation mark when one is within 3 characters of the balanced point."""
    units = _UNIT.findall(text)
    out: list[str] = []
    while units and len(out) < lines - 1:
        sizes = [visible_len(u) for u in units]
        remaining = lines - len(out)
        target = sum(sizes) / remaining
        best, best_score, at = 1, float("inf"), 0
        for k in range(1, len(units)):
            at += sizes[k - 1]
            score = abs(at - target) - (3 if units[k - 1].rstrip()[-1:] in _BREAK_AFTER else 0)
            if score < best_score:
                best, best_score = k, score
        out.append("".join(units[:best]).strip())
        units = units[best:]
    if units:
        out.append("".join(units).strip())
    return [line for line in out if line]
