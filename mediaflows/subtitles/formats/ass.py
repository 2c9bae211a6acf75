"""Advanced SubStation Alpha (``.ass``) and SubStation Alpha (``.ssa``): read by pysubs2, written
with pysubs2's script head and the events written here; italics, bold, underline and strike-out
become the tags SRT writes (``<i>``), so one text serves every format, and back."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pysubs2

from mediaflows.errors import InputError
from mediaflows.media.style import PLAY_RES, ass_style
from mediaflows.subtitles.formats.common import FOREIGN_MARKUP, placed, position_of, tagged
from mediaflows.subtitles.records import TimedCue

_BLOCK = re.compile(r"\{([^{}]*)\}")
#: ``\i1``, ``\b0``, ``\u`` … but not ``\bord2``, ``\be1``, ``\shad2``, ``\iclip``.
_TOGGLE = re.compile(r"\\([ibus])(\d*)(?=\\|$)")
_DRAWING = re.compile(r"\\p[1-9]")


def _block_as_tags(m: re.Match[str]) -> str:
    """An override block with its style toggles as HTML-like tags (``{\\an8\\i1}`` →
    ``{\\an8}<i>``); a comment block (no backslash) is kept as it is."""
    content = m.group(1)
    if not content.startswith("\\"):
        return m.group(0)
    toggles = "".join(
        f"<{'' if on not in ('', '0') else '/'}{tag}>" for tag, on in _TOGGLE.findall(content)
    )
    rest = _TOGGLE.sub("", content)
    return (f"{{{rest}}}" if rest else "") + toggles


#: The plain toggles, as most scripts write them, turned by ``str.replace`` (no regex needed).
_PLAIN = tuple((f"{{\\{t}{n}}}", f"<{'' if n == '1' else '/'}{t}>") for t in "ibus" for n in "10")
#: A block that still holds a toggle (``{\\an8\\i1}``, ``{\\i}``).
_MIXED = re.compile(r"\{[^{}]*\\[ibus]\d*(?:\\|\})")


def _text_of(event: pysubs2.SSAEvent) -> str:
    text = event.text.replace(r"\N", "\n").replace(r"\n", "\n").replace(r"\h", "\u00a0")
    if "{" not in text:
        return text
    for block, tag in _PLAIN:
        text = text.replace(block, tag)
    return _BLOCK.sub(_block_as_tags, text) if _MIXED.search(text) else text


def _styled(body: str, style: pysubs2.SSAStyle | None) -> str:
    """``body`` with what its style says and other formats need in the text: italics (an
    "Italics" style for voices off screen) and a place other than bottom centre (a "Top" or
    "Signs" style), which a script with other styles, or none, would otherwise lose."""
    if style is None:
        return body
    if style.italic and "<i>" not in body:
        body = f"<i>{body}</i>"
    where = int(style.alignment.value)
    return tagged(body, where) if where != 2 and position_of(body) is None else body


def read(text: str, name: str = "subtitles.ass", format_: str = "ass") -> list[TimedCue]:
    """The dialogue events of an ASS/SSA script (comments and drawings left out), with their
    speaker (Name) and style, and their style's italics and place made explicit in the text;
    times are in centiseconds in these formats."""
    try:
        subs = pysubs2.SSAFile.from_string(text, format_=format_)
    except Exception as exc:  # pysubs2 raises a variety of errors on garbage
        raise InputError(f"{name}: not a SubStation file ({exc})") from exc
    cues: list[TimedCue] = []
    for e in subs.events:
        if e.is_comment or _DRAWING.search(e.text):
            continue
        body = _styled(_text_of(e), subs.styles.get(e.style))
        cues.append(TimedCue(
            id=len(cues) + 1, start_ms=e.start, end_ms=e.end, text=body,
            position=position_of(body), speaker=e.name.strip(),
            style="" if e.style == "Default" else e.style,
        ))  # fmt: skip
    return cues


def _ass_text(cue: TimedCue) -> str:
    text = placed(cue)
    if "<" in text:
        for block, tag in _PLAIN:
            text = text.replace(tag, block)
        # ASS blocks stay (they are ASS's own); HTML-like tags of other formats go.
        text = FOREIGN_MARKUP.sub(lambda m: m.group(0) if m.group(0)[0] == "{" else "", text)
    return text.replace("\n", r"\N")


def _stamp(ms: int) -> str:
    """``H:MM:SS.cc``, rounded to the centisecond as Aegisub (and pysubs2) round."""
    cs = (max(ms, 0) + 5) // 10
    return f"{cs // 360_000}:{cs // 6000 % 60:02}:{cs // 100 % 60:02}.{cs % 100:02}"


def _write(cues: Sequence[TimedCue], language: str | None, format_: str) -> str:
    # pysubs2 writes the script's head (Script Info, the style); the events are written here:
    # pysubs2's generic field writer takes twice as long as reading the file back.
    head = pysubs2.SSAFile()
    head.info["PlayResX"], head.info["PlayResY"] = (str(n) for n in PLAY_RES)
    head.styles["Default"] = ass_style(language)  # the burn-in's look (subtitles.style)
    if language:
        head.info["Language"] = language
    for name in sorted({c.style for c in cues} - {"", "Default"}):
        head.styles[name.replace(",", ";")] = head.styles["Default"].copy()  # named, defined
    marked = "Marked=0" if format_ == "ssa" else "0"
    lines = [head.to_string(format_).rstrip("\n")]
    for cue in cues:
        name, style = cue.speaker.replace(",", ";"), (cue.style or "Default").replace(",", ";")
        lines.append(f"Dialogue: {marked},{_stamp(cue.start_ms)},{_stamp(cue.end_ms)},{style},"
                     f"{name},0,0,0,,{_ass_text(cue)}")  # fmt: skip
    return "\n".join(lines) + "\n"


def write(cues: Sequence[TimedCue], language: str | None = None) -> str:
    """An ASS script of ``cues`` in the style package burns in for the language (its script's
    font, size relative to the picture's height, outline: :mod:`mediaflows.media.style`),
    the language (when given) in its Script Info."""
    return _write(cues, language, "ass")


def write_ssa(cues: Sequence[TimedCue], language: str | None = None) -> str:
    """An SSA (v4) script of ``cues`` (see :func:`write`)."""
    return _write(cues, language, "ssa")


def language_of(text: str) -> str | None:
    """The ``Language:`` of a script's Script Info (None: none)."""
    m = re.search(r"^Language:[ \t]*(\S+)[ \t]*$", text[:4096], re.MULTILINE)
    return m.group(1) if m else None


def read_ssa(text: str, name: str = "subtitles.ssa") -> list[TimedCue]:
    """The dialogue events of an SSA (v4) script (see :func:`read`)."""
    return read(text, name, "ssa")
