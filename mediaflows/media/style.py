"""How subtitles look, one definition for what is burnt into the picture (``package`` with
``burn_in``) and what a styled file carries (the ASS written for a language): a font that covers
the language's script, a size relative to the picture's height, an outline, a bottom margin.

Sizes are in ASS script pixels on a 288-line script (``PlayResY``, libass's own default, the
one ffmpeg gives an SRT it burns in), so they scale with the video: 22 is 7.6 % of its height.
"""

from __future__ import annotations

import pysubs2

from mediaflows.errors import InputError
from mediaflows.languages import parse_language

#: The font libass draws a script in. Scripts not listed get libass's default (fontconfig's
#: match for Arial: DejaVu Sans here), which covers Latin, Greek and Cyrillic. The CJK font
#: comes from the Debian package ``fonts-wqy-zenhei`` (``./dev setup`` installs it): one 16 MB
#: font with Chinese (simplified and traditional), Japanese kana and Korean Hangul.
SCRIPT_FONTS: dict[str, str] = {
    "Han": "WenQuanYi Zen Hei",
    "Japanese": "WenQuanYi Zen Hei",
    "Hangul": "WenQuanYi Zen Hei",
}
#: The script height the sizes below are measured on (ffmpeg's and libass's default for SRT).
PLAY_RES = (384, 288)
#: White text, a 2-pixel dark outline, no shadow, 24 pixels above the bottom.
FONT_SIZE, OUTLINE, SHADOW, MARGIN_V = 22, 2, 0, 24


def font_for(language: str) -> str | None:
    """The font ``language`` is drawn in (None: libass's default)."""
    try:
        script = parse_language(language).script
    except InputError:  # a language mediaflows does not know (one Whisper heard)
        return None
    return SCRIPT_FONTS.get(script)


def burn_style(language: str) -> str:
    """The style override (ffmpeg's ``subtitles`` filter, ``force_style``) that draws
    ``language``'s cues into the picture."""
    font = font_for(language)
    common = f"FontSize={FONT_SIZE},Outline={OUTLINE},Shadow={SHADOW},MarginV={MARGIN_V}"
    return f"FontName={font},{common}" if font else common


def ass_style(language: str | None) -> pysubs2.SSAStyle:
    """The Default style of an ASS file written for ``language``: the burn-in's."""
    style = pysubs2.SSAStyle(
        fontsize=FONT_SIZE, outline=OUTLINE, shadow=SHADOW, marginv=MARGIN_V,
        primarycolor=pysubs2.Color(255, 255, 255, 0), outlinecolor=pysubs2.Color(0, 0, 0, 0),
    )  # fmt: skip
    font = font_for(language) if language else None
    if font:
        style.fontname = font
    return style
