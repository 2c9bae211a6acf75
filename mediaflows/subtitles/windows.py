"""Two short cues of one sentence translated as one window (translate_srt's ``merge_short``).

A sentence cut into two short cues (``I think that`` / ``we should go.``) is hard to translate
cue by cue: the target's word order may move the verb across the cut, and the shorter cue's
budget may be too small for any translation of its half. With ``merge_short`` such a pair is
sent to the model as one cue over the pair's window (the first cue's start to the second's end,
its character budget that window's), and the translation is then cut in two between words
(in scripts without spaces, between characters) where the faster of the two cues reads
slowest, each part wrapped to the target's lines. Timecodes stay the source's: the two cues
keep their times, and each reads at about the window's speed.

A pair: two neighbouring spoken cues, each at most :data:`SHORT_S`, at most :data:`GAP_S`
apart, the window at most :data:`WINDOW_S`, the first not ending a sentence, neither holding
two speakers' lines. A translation that cannot be cut in two (one word) keeps the source text
of both cues and is reported, as any refused answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from mediaflows.languages import Language, is_unspaced
from mediaflows.subtitles.chunks import ChunkFix, CueText
from mediaflows.subtitles.lines import one_line, wrap
from mediaflows.subtitles.records import MARKUP, ParsedSrt, TimedCue, visible_width

#: A cue at most this long (seconds) may share a window with its neighbour.
SHORT_S = 2.0
#: At most this much silence (seconds) between the two cues of a window.
GAP_S = 0.5
#: A window at most this long (seconds): what one cue may show.
WINDOW_S = 7.0
#: A cue ending with one of these (a closing quote or bracket after it allowed) ends a sentence.
SENTENCE_END = ".!?…。！？"
_CLOSERS = "\"'”’»)]」』"
#: Preferred places to cut a translation: after these.
_CLAUSE_END = ",;:，、；：" + SENTENCE_END

Pair = tuple[int, int]


def _seconds(cue: TimedCue) -> float:
    return max(cue.end_ms - cue.start_ms, 0) / 1000


def _two_speakers(text: str) -> bool:
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    return len(lines) > 1 and all(line.startswith("-") for line in lines)


def ends_sentence(text: str) -> bool:
    """True when a cue's text (markup left out) ends a sentence."""
    plain = MARKUP.sub("", text).rstrip().rstrip(_CLOSERS).rstrip()
    return plain[-1:] in tuple(SENTENCE_END) if plain else True


def _shareable(a: TimedCue, b: TimedCue) -> bool:
    gap = (b.start_ms - a.end_ms) / 1000
    return (
        _seconds(a) <= SHORT_S and _seconds(b) <= SHORT_S and 0 <= gap <= GAP_S
        and (b.end_ms - a.start_ms) / 1000 <= WINDOW_S
        and not ends_sentence(a.text)
        and not _two_speakers(a.text) and not _two_speakers(b.text)
    )  # fmt: skip


def short_pairs(cues: Sequence[TimedCue]) -> tuple[Pair, ...]:
    """The (first, second) cue ids that share a window: neighbours in the file (an empty cue
    between two parts them), taken left to right, a cue in one pair at most."""
    pairs: list[Pair] = []
    i = 0
    while i + 1 < len(cues):
        a, b = cues[i], cues[i + 1]
        if a.text.strip() and b.text.strip() and _shareable(a, b):
            pairs.append((a.id, b.id))
            i += 2
        else:
            i += 1
    return tuple(pairs)


def _join(*texts: str) -> str:
    """Cues' texts as one line, the source language unknown: their lines joined with a space,
    none between two characters of a script without spaces."""
    flat = ""
    for line in (line for text in texts for line in text.split("\n")):
        part = " ".join(line.split())
        if part:
            glue = "" if flat and is_unspaced(flat[-1]) and is_unspaced(part[0]) else " "
            flat = flat + glue + part if flat else part
    return flat


def merged(parsed: ParsedSrt, pairs: Sequence[Pair]) -> ParsedSrt:
    """The SRT as the model is asked it: each pair one cue (the first's id and start, the
    second's end, the two texts joined)."""
    partner = dict(pairs)
    seconds = set(partner.values())
    by_id = {c.id: c for c in parsed.cues}
    cues = []
    for cue in parsed.cues:
        if cue.id in seconds:
            continue
        if cue.id in partner:
            second = by_id[partner[cue.id]]
            text = _join(cue.text, second.text)
            cue = cue.model_copy(update={"end_ms": second.end_ms, "text": text})
        cues.append(cue)
    return parsed.model_copy(update={"cues": tuple(cues)})


def cut(text: str, seconds: tuple[float, float], target: Language) -> tuple[str, str] | None:
    """``text`` cut in two for two cues shown ``seconds`` each, where the faster of the two
    reads slowest: at a space, or in a script without spaces between two characters (after a
    comma or clause end when that is about as good); each part wrapped to ``target``'s lines.
    None: it cannot be cut (one word)."""
    flat = one_line(text, target)
    inside = {i for m in MARKUP.finditer(flat) for i in range(m.start() + 1, m.end())}
    if target.unspaced:
        places = [i for i in range(1, len(flat)) if not flat[i].isspace()]
    else:
        places = [i for i, ch in enumerate(flat) if ch == " "]
    places = [i for i in places if i not in inside]
    if not places:
        return None
    first_s, second_s = (max(s, 0.1) for s in seconds)

    def cost(i: int) -> float:
        speed = max(visible_width(flat[:i].strip()) / first_s,
                    visible_width(flat[i:].strip()) / second_s)  # fmt: skip
        clause = flat[:i].rstrip()[-1:] in tuple(_CLAUSE_END)
        return speed * (0.9 if clause else 1.0)  # a clause end wins when about as good

    at = min(places, key=cost)
    first, second = flat[:at].strip(), flat[at:].strip()
    if not first or not second:
        return None
    return wrap(first, target), wrap(second, target)


def split_fixes(
    fixes: Sequence[ChunkFix], parsed: ParsedSrt, pairs: Sequence[Pair], target: Language
) -> list[ChunkFix]:
    """The chunks' answers for the windows made back into answers for every source cue: a
    window's translation cut in two where both cues read slowest (:func:`cut`); a
    window whose answer was refused, or whose chunk fell back, gives each cue its own source
    text; one that cannot be cut too (reported, and counted as untranslated)."""
    if not pairs:
        return list(fixes)
    partner = dict(pairs)
    by_id = {c.id: c for c in parsed.cues}
    split: list[ChunkFix] = []
    for fix in fixes:
        texts: list[CueText] = []
        rejected = set(fix.rejected)
        problems = list(fix.problems)
        firsts = {t.id: t.text for t in fix.first}
        first: list[CueText] = []
        for item in fix.texts:
            if item.id not in partner:
                texts.append(item)
                if item.id in firsts:
                    first.append(CueText(id=item.id, text=firsts[item.id]))
                continue
            a, b = by_id[item.id], by_id[partner[item.id]]
            seconds = (_seconds(a), _seconds(b))
            parts = None if fix.fallback or item.id in rejected else cut(item.text, seconds, target)
            if parts is None:
                if not fix.fallback and item.id not in rejected:
                    problems.append(f"cues {a.id}-{b.id}: one word, not cut in two: untranslated")
                rejected |= {a.id}
                parts = (a.text, b.text)
            if a.id in rejected:
                rejected.add(b.id)
            texts += [CueText(id=a.id, text=parts[0]), CueText(id=b.id, text=parts[1])]
            if item.id in firsts:
                before = cut(firsts[item.id], seconds, target) or (firsts[item.id], "")
                first += [CueText(id=a.id, text=before[0]), CueText(id=b.id, text=before[1])]
        update = {"texts": tuple(texts), "rejected": tuple(sorted(rejected)),
                  "problems": tuple(problems), "first": tuple(first)}  # fmt: skip
        split.append(fix.model_copy(update=update))
    return split
