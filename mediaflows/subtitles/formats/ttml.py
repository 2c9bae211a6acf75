"""TTML and DFXP (``.ttml``, ``.dfxp``, ``.xml``): read as broadcasters write it (clock, frame,
tick and offset times; nested timing; styles by reference; regions), written in the IMSC1 text
profile that streaming platforms take. pysubs2 reads no styles, regions, frames or ticks, and
writes no profile, so both ways are here."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from xml.sax.saxutils import escape, quoteattr

from mediaflows.errors import InputError
from mediaflows.subtitles.formats.common import FOREIGN_MARKUP, tagged, unplaced
from mediaflows.subtitles.records import TimedCue

#: The TTML namespaces: TTML1/2 and the DFXP drafts still found in broadcasters' files.
NAMESPACES = ("http://www.w3.org/ns/ttml", "http://www.w3.org/2006/10/ttaf1",
              "http://www.w3.org/2006/04/ttaf1")  # fmt: skip
IMSC1_TEXT = "http://www.w3.org/ns/ttml/profile/imsc1/text"
_XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_CLOCK = re.compile(r"(\d+):(\d{2}):(\d{2})(?:(\.\d+)|:(\d+)(?:\.(\d+))?)?")
_OFFSET = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms|f|t)")
#: Not TTML, but written by some (Apple's lyrics): ``3:58.640``, ``19.764``.
_LOOSE = re.compile(r"(?:(?:(\d+):)?(\d{1,2}):)?(\d+(?:\.\d+)?)")


def _local(name: str) -> str:
    return name.rpartition("}")[2]


def _attrs(elem: ET.Element) -> dict[str, str]:
    """An element's attributes by local name (``tts:fontStyle`` → ``fontStyle``)."""
    return {_local(k): v for k, v in elem.attrib.items()}


class _Clock:
    """How a document counts time: its frame rate and tick rate (``ttp:`` parameters)."""

    def __init__(self, root: ET.Element) -> None:
        params = _attrs(root)
        rate = float(params.get("frameRate", "30"))
        multiplier = params.get("frameRateMultiplier", "1 1").split()
        if len(multiplier) == 2 and all(p.isdigit() and int(p) for p in multiplier):
            rate *= int(multiplier[0]) / int(multiplier[1])
        self.frame_rate = rate
        # Without a tick rate, a tick is a sub-frame when a frame rate is given, else a second.
        ticks = rate * float(params.get("subFrameRate", "1")) if "frameRate" in params else 1.0
        self.tick_rate = float(params.get("tickRate", ticks))

    def ms(self, expr: str) -> float:
        """Milliseconds of a time expression (``00:00:01.5``, ``00:00:01:12``, ``1.5s``,
        ``36f``, ``10000000t``)."""
        expr = expr.strip()
        m = _CLOCK.fullmatch(expr)
        if m is not None:
            h, mm, s, fraction, frames, _sub = m.groups()
            seconds = int(h) * 3600 + int(mm) * 60 + int(s) + float(fraction or 0)
            if frames:
                seconds += int(frames) / self.frame_rate
            return seconds * 1000
        m = _OFFSET.fullmatch(expr)
        if m is None:
            loose = _LOOSE.fullmatch(expr)
            if loose is None:
                raise ValueError(f"not a time expression: {expr!r}")
            h, mm, s = loose.groups()
            return (int(h or 0) * 3600 + int(mm or 0) * 60 + float(s)) * 1000
        count, unit = float(m.group(1)), m.group(2)
        if unit == "f":
            return count / self.frame_rate * 1000
        if unit == "t":
            return count / self.tick_rate * 1000
        return count * {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}[unit]


# ---- reading -----------------------------------------------------------------------------------


class _Document:
    """A TTML document's styles and regions by id, and its clock."""

    def __init__(self, root: ET.Element) -> None:
        self.clock = _Clock(root)
        self.styles: dict[str, dict[str, str]] = {}
        self.regions: dict[str, dict[str, str]] = {}
        for elem in root.iter():
            tag, ident = _local(elem.tag), elem.get(_XML_ID)
            if ident and tag == "style":
                self.styles[ident] = _attrs(elem)
            elif ident and tag == "region":
                self.regions[ident] = _attrs(elem)

    def style(self, attrs: dict[str, str], seen: frozenset[str] = frozenset()) -> dict[str, str]:
        """Attributes with the styles they refer to resolved (referred first, own last)."""
        merged: dict[str, str] = {}
        for ref in attrs.get("style", "").split():
            if ref in self.styles and ref not in seen:
                merged.update(self.style(self.styles[ref], seen | {ref}))
        merged.update(attrs)
        return merged

    def position(self, region: str | None, style: dict[str, str]) -> int | None:
        """A numeric-keypad position from a region's display alignment or origin, and the
        text alignment."""
        attrs = self.style(self.regions.get(region or "", {}))
        row = {"before": 2, "center": 1, "after": 0}.get(attrs.get("displayAlign", ""), 0)
        origin, extent = attrs.get("origin", "").split(), attrs.get("extent", "").split()
        if "displayAlign" not in attrs and len(origin) == 2 and origin[1].endswith("%"):
            height = float(extent[1][:-1]) if len(extent) == 2 and extent[1].endswith("%") else 0
            middle = float(origin[1][:-1]) + height / 2
            row = 2 if middle < 40 else 1 if middle <= 60 else 0
        align = style.get("textAlign", attrs.get("textAlign", "center"))
        column = 0 if align in ("start", "left") else 2 if align in ("end", "right") else 1
        position = row * 3 + column + 1
        return None if position == 2 else position


def _styled(text: str, style: dict[str, str], base: dict[str, str]) -> str:
    """``text`` in the SRT-like tags its style adds to ``base`` (italic, bold, underline)."""
    for attr, value, tag in (("fontStyle", "italic", "i"), ("fontWeight", "bold", "b"),
                             ("textDecoration", "underline", "u")):  # fmt: skip
        if value in style.get(attr, "") and value not in base.get(attr, ""):
            text = f"<{tag}>{text}</{tag}>"
    return text


def _content(doc: _Document, elem: ET.Element, base: dict[str, str], preserve: bool) -> str:
    """The text of a ``<p>`` or ``<span>``: white space folded (unless preserved), ``<br/>`` a
    line break, styled spans in tags."""
    parts: list[str] = []
    fold = (lambda s: s) if preserve else (lambda s: re.sub(r"[ \t\r\n]+", " ", s))
    if elem.text:
        parts.append(fold(elem.text))
    for child in elem:
        tag = _local(child.tag)
        if tag == "br":
            parts.append("\n")
        elif tag == "span":
            style = doc.style(_attrs(child))
            keep = preserve or child.get(_XML_SPACE) == "preserve"
            parts.append(_styled(_content(doc, child, style, keep), style, base))
        if child.tail:
            parts.append(fold(child.tail))
    return "".join(parts)


def _timed(
    doc: _Document, elem: ET.Element, begin: float, end: float | None
) -> tuple[float, float | None]:
    """An element's interval from its ``begin``, ``end`` and ``dur`` (relative to its parent's
    begin, as in a ``par`` container), within its parent's."""
    attrs = _attrs(elem)
    start = begin + doc.clock.ms(attrs["begin"]) if "begin" in attrs else begin
    if "end" in attrs:
        stop: float | None = begin + doc.clock.ms(attrs["end"])
    elif "dur" in attrs:
        stop = start + doc.clock.ms(attrs["dur"])
    else:
        stop = end
    return start, stop


def _paragraphs(
    doc: _Document, elem: ET.Element, begin: float, end: float | None, region: str | None
) -> Iterator[tuple[ET.Element, float, float | None, str | None]]:
    """Every ``<p>`` under ``elem``, with its interval and region (inherited from above)."""
    for child in elem:
        tag = _local(child.tag)
        if tag not in ("div", "p"):
            continue
        start, stop = _timed(doc, child, begin, end)
        where = child.get("region", region)
        if tag == "p":
            yield child, start, stop, where
        else:
            yield from _paragraphs(doc, child, start, stop, where)


def _span_interval(doc: _Document, p: ET.Element, begin: float) -> tuple[float, float] | None:
    """The interval a ``<p>`` with no end of its own gets from its timed spans (word timing)."""
    times = [_timed(doc, s, begin, None) for s in p.iter() if _local(s.tag) == "span"]
    ends = [stop for _, stop in times if stop is not None]
    return (min(start for start, _ in times), max(ends)) if ends else None


def read(text: str, name: str = "subtitles.ttml") -> list[TimedCue]:
    """The cues of a TTML/DFXP document: each timed ``<p>`` a cue, italics, bold and underline
    as tags, its region's place as the position. A document with no timed paragraph is an
    :class:`InputError`."""
    try:
        # Given text (decoded as every subtitle file is), expat ignores the declared encoding.
        root = ET.fromstring(text.lstrip("\ufeff"))
    except ET.ParseError as exc:
        raise InputError(f"{name}: not well-formed XML ({exc})") from exc
    namespace = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else ""
    body = root.find(f"{{{namespace}}}body")
    if _local(root.tag) != "tt" or namespace not in NAMESPACES or body is None:
        raise InputError(f"{name}: not a TTML document (no <tt> with a <body>)")
    doc = _Document(root)
    cues: list[TimedCue] = []
    try:
        start, stop = _timed(doc, body, 0.0, None)
        body_style = doc.style(_attrs(body))
        for p, begin, end, region in _paragraphs(doc, body, start, stop, body.get("region")):
            interval = (begin, end) if end is not None else _span_interval(doc, p, begin)
            if interval is None:
                continue
            style = {**body_style, **doc.style(_attrs(p))}
            position = doc.position(region, style)
            preserve = p.get(_XML_SPACE, root.get(_XML_SPACE)) == "preserve"
            lines = _content(doc, p, style, preserve).split("\n")
            body_text = "\n".join(line if preserve else line.strip(" ") for line in lines)
            cues.append(TimedCue(
                id=len(cues) + 1, start_ms=round(interval[0]), end_ms=round(interval[1]),
                text=tagged(_styled(body_text.strip("\n"), style, {}), position),
                position=position,
            ))  # fmt: skip
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from exc
    if not cues:
        raise InputError(f"{name}: no timed cues (a TTML document needs begin and end times)")
    return cues


def language_of(text: str) -> str | None:
    """The ``xml:lang`` of a document's ``<tt>`` (None: none, or empty)."""
    m = re.search(r"<(?:[\w.-]+:)?tt\b[^>]*?\sxml:lang=[\"']([^\"']*)[\"']", text[:8192])
    return m.group(1) or None if m else None


# ---- writing (IMSC1 text profile) --------------------------------------------------------------

_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" \
xmlns:tts="http://www.w3.org/ns/ttml#styling" xmlns:ttm="http://www.w3.org/ns/ttml#metadata" \
xml:lang={lang} ttp:profile="{profile}" ttp:timeBase="media" ttp:cellResolution="32 15">
  <head>
    <styling>
      <style xml:id="s0" tts:fontFamily="proportionalSansSerif" tts:fontSize="100%" \
tts:lineHeight="125%" tts:textAlign="center" tts:color="white" \
tts:backgroundColor="transparent" tts:textOutline="black 5%"/>
    </styling>
    <layout>
      <region xml:id="bottom" tts:origin="10% 10%" tts:extent="80% 80%" tts:displayAlign="after"/>
      <region xml:id="middle" tts:origin="10% 10%" tts:extent="80% 80%" tts:displayAlign="center"/>
      <region xml:id="top" tts:origin="10% 10%" tts:extent="80% 80%" tts:displayAlign="before"/>
    </layout>
  </head>
  <body style="s0">
    <div>
"""
_TAIL = "    </div>\n  </body>\n</tt>\n"
_TAG = re.compile(r"<(/?)([ibu])>", re.IGNORECASE)
_SPAN_STYLE = {"i": 'tts:fontStyle="italic"', "b": 'tts:fontWeight="bold"',
               "u": 'tts:textDecoration="underline"'}  # fmt: skip


def _stamp(ms: int) -> str:
    return f"{ms // 3_600_000:02}:{ms // 60_000 % 60:02}:{ms // 1000 % 60:02}.{ms % 1000:03}"


def _runs(text: str) -> str:
    """A cue's text as TTML content: runs of one style a ``<span>``, line breaks ``<br/>``,
    other tags and ASS blocks dropped."""
    out: list[str] = []
    on: list[str] = []
    pos = 0

    def emit(chunk: str) -> None:
        if not chunk:
            return
        body = "<br/>".join(escape(line) for line in chunk.split("\n"))
        if on:
            styles = " ".join(_SPAN_STYLE[t] for t in sorted(set(on)))
            body = f"<span {styles}>{body}</span>"
        out.append(body)

    text = FOREIGN_MARKUP.sub(lambda m: m.group(0) if _TAG.fullmatch(m.group(0)) else "", text)
    for m in _TAG.finditer(text):
        emit(text[pos : m.start()])
        tag = m.group(2).lower()
        if m.group(1):
            if tag in on:
                on.remove(tag)
        else:
            on.append(tag)
        pos = m.end()
    emit(text[pos:])
    return "".join(out)


def write(cues: Sequence[TimedCue], language: str | None = None) -> str:
    """A TTML document of ``cues`` in the IMSC1 text profile: ``ttp:`` parameters, one style,
    three regions (a cue's position picks one, and its text alignment), ``begin``/``end`` in
    media time to the millisecond, italics, bold and underline as ``tts:`` styled spans."""
    parts = [_HEAD.format(lang=quoteattr(language or ""), profile=IMSC1_TEXT)]
    for cue in cues:
        bare, position = unplaced(cue)
        region = ("bottom", "middle", "top")[(position - 1) // 3] if position else "bottom"
        align = ("start", "", "end")[(position - 1) % 3] if position else ""
        aligned = f' tts:textAlign="{align}"' if align else ""
        parts.append(
            f'      <p begin="{_stamp(cue.start_ms)}" end="{_stamp(cue.end_ms)}" '
            f'region="{region}"{aligned}>{_runs(bare)}</p>\n'
        )
    parts.append(_TAIL)
    return "".join(parts)
