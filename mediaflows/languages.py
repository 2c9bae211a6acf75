"""Languages by their BCP-47 tags: which codes mediaflows knows, what they are called (for
prompts), which script they are written in, and whether words are written with spaces between
them. Requests validate their language tags here;
subtitle line rules and the checks that a text is in a language build on it
(:mod:`mediaflows.subtitles.lines`, :mod:`mediaflows.subtitles.language_checks`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from mediaflows.errors import InputError

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

#: Scripts whose text is written without spaces between words (wrapped by characters).
UNSPACED = {"Han", "Japanese", "Thai"}

#: Script subtags (BCP-47) and the script they mean.
_SCRIPT_TAGS = {"Hans": "Han", "Hant": "Han", "Latn": "Latin", "Cyrl": "Cyrillic",
                "Arab": "Arabic"}  # fmt: skip
_TAG = re.compile(r"^([a-z]{2,3})(?:-([A-Z][a-z]{3}))?(?:-([A-Z]{2}|[0-9]{3}))?$")


@dataclass(frozen=True)
class Language:
    """A target or source language: its BCP-47 tag and what follows from it."""

    tag: str
    base: str
    name: str
    script: str

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


def language_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Each tag parsed and written canonically (de-at → de-AT); :class:`InputError` for an
    unknown or malformed tag, or one given twice."""
    given = tuple(tags)
    parsed = tuple(parse_language(t).tag for t in given)
    if len(set(parsed)) != len(parsed):
        raise InputError(f"a language is listed twice: {list(given)}")
    return parsed


def same_language(a: str, b: str) -> bool:
    """True when two tags name the same language (``de`` and ``de-AT``; not ``zh-Hans`` and
    ``zh-Hant``). A code mediaflows does not know (a language Whisper heard: ``yue``) is the
    same as another tag only when their base codes are equal."""
    try:
        la, lb = parse_language(a), parse_language(b)
    except InputError:
        return a.split("-")[0].lower() == b.split("-")[0].lower()
    return la.base == lb.base and la.script == lb.script


# ---- how text is written: with spaces between words, or without ------------------------------

#: Unicode name prefixes of the characters of Chinese and Japanese (Han, kana, their full-width
#: punctuation and brackets): no space ever stands between two of them.
_CJK_NAMES = (
    "CJK", "HIRAGANA", "KATAKANA", "IDEOGRAPHIC", "FULLWIDTH", "HALFWIDTH KATAKANA",
    "LEFT CORNER BRACKET", "RIGHT CORNER BRACKET", "LEFT WHITE CORNER BRACKET",
    "RIGHT WHITE CORNER BRACKET", "LEFT BLACK LENTICULAR BRACKET", "RIGHT BLACK LENTICULAR BRACKET",
)  # fmt: skip
#: ... and of scripts that put no space between words but may between phrases (Thai, Lao,
#: Khmer, Burmese). Korean (Hangul) is written with spaces, like Latin.
_PHRASE_SPACED_NAMES = ("THAI", "LAO", "KHMER", "MYANMAR")


def is_cjk(char: str) -> bool:
    """True for a Chinese or Japanese character (Han, kana, full-width punctuation)."""
    return unicodedata.name(char, "").startswith(_CJK_NAMES)


def is_unspaced(char: str) -> bool:
    """True for a character of a script written without spaces between words (Chinese,
    Japanese, Thai, Lao, Khmer, Burmese)."""
    return is_cjk(char) or unicodedata.name(char, "").startswith(_PHRASE_SPACED_NAMES)


def join_words(words: Iterable[str]) -> str:
    """Words joined as the text is written: each keeps the space the recogniser wrote before it
    (Whisper's tokens carry their own: `` Hello`` has one, ``マ`` none; a Thai phrase break one),
    except a space between two Chinese or Japanese characters, which is always an error a viewer
    sees. The first word's leading space is dropped."""
    text = ""
    for word in words:
        stripped = word.strip()
        if not stripped:
            continue
        spaced = word[:1].isspace() and text != ""
        if spaced and is_cjk(text[-1]) and is_cjk(stripped[0]):
            spaced = False
        text += (" " if spaced else "") + stripped
    return text
