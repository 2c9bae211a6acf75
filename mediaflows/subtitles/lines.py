"""Subtitle line rules per language, and the wrap that follows them.

The rules follow Netflix's Timed Text Style Guides, the reference most subtitle vendors work to:
42 characters a line, 2 lines, 17 characters a second for the English template and most
languages written with spaces; 16 characters a line and 9 a second for Chinese, 13 and 4 for
Japanese, 16 and 12 for Korean, 35 and 15 for Thai.
"""

from __future__ import annotations

import re

from mediaflows.errors import InputError
from mediaflows.languages import Language, parse_language
from mediaflows.models import CueRules
from mediaflows.subtitles.records import MARKUP, visible_len, visible_width

#: (characters a line, characters a second) where they differ from the default (42, 17).
_LINE_RULES = {"zh": (16, 9.0), "ja": (13, 4.0), "ko": (16, 12.0), "th": (35, 15.0)}


def line_rules(language: Language) -> CueRules:
    """The language's subtitle line rules (characters a line, 2 lines, characters a second)."""
    chars, cps = _LINE_RULES.get(language.base, (42, 17.0))
    return CueRules(max_line_chars=chars, max_lines=2, max_cps=cps)


def rules_for(language: str, rules: CueRules) -> CueRules:
    """The cue rules of subtitles heard in ``language``: ``rules`` as given, unless they are the
    defaults and the language has line rules of its own (Chinese, Japanese, Korean, Thai), which
    then replace the default line length and reading speed (42 characters and 20 a second suit
    no language written in full-width characters)."""
    try:
        base = parse_language(language).base
    except InputError:  # a language Whisper knows and mediaflows does not: the rules as given
        return rules
    if rules != CueRules() or base not in _LINE_RULES:
        return rules
    chars, cps = _LINE_RULES[base]
    return rules.model_copy(update={"max_line_chars": chars, "max_cps": cps})


_BREAK_AFTER = set("，。、！？；：,.!?;:…")


def one_line(text: str, language: Language) -> str:
    """A cue's lines joined into one: with a space, or none in a script without spaces
    (unless two Latin characters meet)."""
    parts = [part.strip() for part in text.split("\n") if part.strip()]
    flat = parts[0] if parts else ""
    for part in parts[1:]:
        glue = "" if language.unspaced and not (flat[-1].isascii() and part[0].isascii()) else " "
        flat += glue + part
    return flat


def wrap(
    text: str, language: Language, max_lines: int | None = None, rules: CueRules | None = None
) -> str:
    """``text`` on the fewest lines (at most 2 by the rules; more only when it cannot fit) of at
    most the language's characters a line, balanced, never splitting a word. Scripts without
    spaces break between characters, after punctuation when it is near the balanced point.
    Markup tags move with the word they touch; a leading ``{\\an8}`` stays first.

    ``rules``: other line rules than the language's (text in one language shown under another's
    rules: a cue of a translation that kept its source text)."""
    rules = rules or line_rules(language)
    flat = one_line(text, language)
    # A tag with spaces inside (<font color="x">) is one token: no line break inside it.
    flat = MARKUP.sub(lambda m: m.group(0).replace(" ", "\x00"), flat)
    if visible_width(flat) <= rules.max_line_chars:
        return flat.replace("\x00", " ")
    lines = max_lines or rules.max_lines
    while True:
        wrapped = (
            _wrap_unspaced(flat, lines) if language.unspaced else _wrap_words(flat.split(), lines)
        )  # fmt: skip
        if all(visible_width(line) <= rules.max_line_chars for line in wrapped) or lines >= 4:
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
        score = max(visible_width(head), *(visible_width(t) for t in tail))
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
        sizes = [visible_len(u) for u in units]  # balance by characters
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
