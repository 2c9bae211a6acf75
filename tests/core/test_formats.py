"""The table of subtitle formats: round trips over one set of cues in every format, what each
format keeps, files written by others (tests/data/subtitles/README.md says where from), and the
one-line refusal of what is no subtitle file."""

from __future__ import annotations

import codecs
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import pysubs2
import pytest

from mediaflows.errors import InputError
from mediaflows.subtitles import chunks, formats
from mediaflows.subtitles.formats import (
    FORMATS,
    detect,
    read_subtitles,
    write_subtitles,
)
from mediaflows.subtitles.records import TimedCue

DATA = Path(__file__).resolve().parents[1] / "data" / "subtitles"

#: One set of cues every format is tried on.
SHARED = (
    TimedCue(id=1, start_ms=1, end_ms=1999, text="Times to the millisecond."),
    TimedCue(id=2, start_ms=2001, end_ms=4567, text="Two lines,\nas a subtitler breaks them."),
    TimedCue(id=3, start_ms=5005, end_ms=6006, text="<i>In italics,\nover two lines</i> and not"),
    TimedCue(id=4, start_ms=7000, end_ms=8250, text="{\\an8}Placed at the top", position=8),
    TimedCue(id=5, start_ms=9000, end_ms=10001, text="日本語の字幕です。\n第二行もあります"),
    TimedCue(id=6, start_ms=11000, end_ms=12000, text="An empty line\n\ninside this cue"),
    TimedCue(
        id=7,
        start_ms=3_723_004,
        end_ms=3_725_999,
        text="Tom & Jerry <b>loud</b>",
        speaker="Narrator",
    ),
)


def kept(cue: TimedCue, name: str) -> TimedCue:
    """``cue`` as format ``name`` gives it back: its times at the format's step, and without
    what the format does not keep."""
    fmt = FORMATS[name]
    update: dict[str, object] = {}
    if fmt.time_step_ms > 1:
        step = fmt.time_step_ms
        update |= {"start_ms": (cue.start_ms + step // 2) // step * step,
                   "end_ms": (cue.end_ms + step // 2) // step * step}  # fmt: skip
    if "positions" not in fmt.keeps and cue.position:
        update |= {"position": None, "text": cue.text.removeprefix(f"{{\\an{cue.position}}}")}
    if "speakers" not in fmt.keeps:
        update["speaker"] = ""
    return cue.model_copy(update=update)


def file_name(name: str) -> str:
    return "cues" + FORMATS[name].extensions[0]


@pytest.mark.parametrize("name", list(FORMATS))
def test_read_write_read_gives_the_same_cues(name: str) -> None:
    written = write_subtitles(SHARED, name, language="ja")
    parsed = read_subtitles(written.encode(), file_name(name))
    assert parsed.format == name
    assert parsed.cues == tuple(kept(c, name) for c in SHARED)
    assert parsed.language == (None if name in ("srt", "sbv") else "ja")
    # written again, the file is the same: nothing drifts from one round to the next
    assert write_subtitles(parsed.cues, name, language="ja") == written


@pytest.mark.parametrize("name", list(FORMATS))
def test_a_format_is_found_from_the_content_whatever_the_name(name: str) -> None:
    written = write_subtitles(SHARED, name)
    expected = "ass" if name == "ssa" else name  # the content alone says SubStation v4 …
    assert detect(written, "upload.txt") in (name, expected)
    assert detect(written, file_name(name)) == name  # … the name tells SSA from ASS


@pytest.mark.parametrize("name", ["srt", "vtt", "ass", "ssa", "ttml"])
def test_pysubs2_reads_what_we_write(name: str) -> None:
    subs = pysubs2.SSAFile.from_string(write_subtitles(SHARED, name), format_=name)
    assert [e.start for e in subs] == [kept(c, name).start_ms for c in SHARED]


def test_srt_is_written_byte_for_byte_as_pysubs2_writes_it() -> None:
    odd = (
        TimedCue(id=1, start_ms=-5, end_ms=400_000_000, text="  Clamped and stripped \n"),
        TimedCue(id=2, start_ms=0, end_ms=1, text="{\\p1}m 0 0 l 100 0 100 100"),  # a drawing
        TimedCue(id=3, start_ms=0, end_ms=1, text="Hard\\Nbreak and\\hspace"),
    )
    cues = [c.model_copy(update={"text": c.text.replace("\n\n", "\n")}) for c in SHARED + odd]
    subs = pysubs2.SSAFile()
    for cue in cues:
        text = (formats.common.placed(cue)).replace("\n", r"\N")
        subs.append(pysubs2.SSAEvent(start=cue.start_ms, end=cue.end_ms, text=text))
    with pytest.warns(RuntimeWarning):  # pysubs2 warns where it clamps
        expected = subs.to_string("srt", keep_ssa_tags=True)
    assert write_subtitles(cues, "srt") == expected


def test_a_position_the_text_lost_is_written_from_the_record() -> None:
    # a repair or a translation that dropped the tag: the record still knows where the cue goes
    cue = TimedCue(id=1, start_ms=0, end_ms=1000, text="Oben", position=8)
    assert "{\\an8}Oben" in write_subtitles([cue], "srt")
    assert "{\\an8}Oben" in write_subtitles([cue], "ass")
    assert "00:00:01.000 line:0\nOben" in write_subtitles([cue], "vtt")
    assert 'region="top">Oben</p>' in write_subtitles([cue], "ttml")
    moved = cue.model_copy(update={"text": " {\\an8}Oben"})  # white space an edit left first
    assert "\n{\\an8}Oben\n" in write_subtitles([moved], "srt")


def test_positions_and_italics_cross_formats() -> None:
    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000 line:0 align:start\n<i>Left, top</i>\n"
    (cue,) = read_subtitles(vtt.encode(), "a.vtt").cues
    assert (cue.position, cue.text, cue.settings) == (7, "{\\an7}<i>Left, top</i>", "")
    assert "{\\an7}<i>Left, top</i>" in write_subtitles([cue], "srt")
    assert "{\\an7}{\\i1}Left, top{\\i0}" in write_subtitles([cue], "ass")
    assert 'region="top" tts:textAlign="start"><span tts:fontStyle="italic">' in (
        write_subtitles([cue], "ttml")
    )
    ass = write_subtitles([cue], "ass")
    back = read_subtitles(ass.encode(), "a.ass").cues[0]
    assert (back.position, back.text) == (7, "{\\an7}<i>Left, top</i>")


def test_webvtt_cue_settings_survive_as_written() -> None:
    parsed = read_subtitles((DATA / "es_netflix_chicas_del_cable.vtt").read_bytes(), "es.vtt")
    again = read_subtitles(write_subtitles(parsed.cues, "vtt", "es").encode(), "es.vtt")
    assert again.cues == parsed.cues
    assert parsed.cues[0].settings == (
        "position:50.00%,middle align:middle size:80.00% line:84.67%"
    )


def test_a_webvtt_position_is_locked_like_a_timecode() -> None:
    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000 line:0\nOben\n"
    (cue,) = read_subtitles(vtt.encode(), "a.vtt").cues
    assert chunks.damage(cue.text, "Oben") == "markup changed"  # the LLM sees and keeps the tag
    assert chunks.damage(cue.text, "{\\an8}Open") is None


def test_an_ass_style_s_italics_and_place_reach_other_formats() -> None:
    ass = (
        "[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, "
        "PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, "
        "StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
        "MarginL, MarginR, MarginV, Encoding\n"
        "Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,"
        "1,2,2,2,10,10,10,1\n"
        "Style: Off,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,-1,0,0,100,100,0,0,"
        "1,2,2,8,10,10,10,1\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, "
        "MarginR, MarginV, Effect, Text\n"
        "Dialogue: 0,0:00:01.00,0:00:02.00,Off,Ann,0,0,0,,Voice off\n"
    )
    (cue,) = read_subtitles(ass.encode(), "styled.ass").cues
    assert (cue.text, cue.position, cue.style, cue.speaker) == (
        "{\\an8}<i>Voice off</i>", 8, "Off", "Ann")  # fmt: skip
    assert "{\\an8}<i>Voice off</i>" in write_subtitles([cue], "srt")
    assert "\nStyle: Off," in write_subtitles([cue], "ass")  # a style the events name is defined


def test_speakers_of_ass_and_webvtt_voices() -> None:
    vtt = "WEBVTT\n\n00:01.000 --> 00:02.000\n<v.loud Mary>Hello &amp; bye</v>\n"
    (cue,) = read_subtitles(vtt.encode(), "v.vtt").cues
    assert (cue.speaker, cue.text) == ("Mary", "Hello & bye")
    ass = read_subtitles(write_subtitles([cue], "ass").encode(), "v.ass").cues[0]
    assert ass.speaker == "Mary"
    assert "<v Mary>Hello &amp; bye" in write_subtitles([ass], "vtt")


# ---- the format from the content, the extension second -----------------------------------------


def test_the_content_wins_over_the_extension() -> None:
    srt = write_subtitles(SHARED[:2], "srt")
    assert detect(srt, "named_wrongly.vtt") == "srt"
    assert read_subtitles(srt.encode(), "named_wrongly.vtt").format == "srt"
    assert detect(write_subtitles(SHARED[:2], "ttml"), "broadcast.xml") == "ttml"


# ---- encodings, byte-order marks, line ends ----------------------------------------------------


@pytest.mark.parametrize("name", ["vtt", "ass", "sbv", "ttml"])
def test_bom_utf16_and_crlf_as_for_srt(name: str) -> None:
    text = write_subtitles(SHARED[:3], name).replace("\n", "\r\n")
    parsed = read_subtitles(b"\xff\xfe" + text.encode("utf-16-le"), file_name(name))
    assert (parsed.bom, parsed.crlf, parsed.format) == (True, True, name)
    assert parsed.cues == tuple(kept(c, name) for c in SHARED[:3])


def test_a_ttml_declared_utf16_is_read() -> None:
    ttml = write_subtitles(SHARED[:2], "ttml").replace('encoding="UTF-8"', 'encoding="UTF-16"')
    parsed = read_subtitles(codecs.BOM_UTF16_LE + ttml.encode("utf-16-le"), "uk.ttml")
    assert parsed.cues == SHARED[:2]


def test_a_legacy_code_page_is_read() -> None:
    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nÇa déjà été, garçon ?\n"
    parsed = read_subtitles(vtt.encode("cp1252"), "fr.vtt")
    assert parsed.encoding == "cp1252" and parsed.cues[0].text == "Ça déjà été, garçon ?"


# ---- files written by others -------------------------------------------------------------------

#: file, format, cues, then one known cue: its index, start and end (ms) and text.
REAL_FILES = [
    ("en_agents_of_shield.srt", "srt", 635, 0, 229, 2662,
     '<i>Previously on\n"Marvel\'s Agents of S.H.I.E.L.D."...</i>'),
    ("zh_gb2312.srt", "srt", 3, 2, 34100, 36570, "轻轻一跳就能飞跃高楼"),
    ("es_netflix_chicas_del_cable.vtt", "vtt", 865, 1, 9640, 13080,
     "<i>las mujeres éramos</i>\n<i>algo así como adornos</i>"),
    ("vtt_captions_with_bom.vtt", "vtt", 4, 2, 11890, 16320, "Caption text #3"),
    ("vtt_using_identifiers.vtt", "vtt", 6, 3, 16320, 21580, "Caption text #4"),
    ("vtt_styles_with_comments.vtt", "vtt", 1, 0, 0, 10000, "- Hello <b>world</b>."),
    ("vtt_cue_tags.vtt", "vtt", 3, 1, 18500, 20500, "Like a big-a pizza pie"),
    ("ass_aegisub_attached_images.ass", "ass", 1, 0, 0, 5000, ""),
    ("ssa_srtedit_hex_colours.ssa", "ssa", 1, 0, 90300, 95300, "-脫逃-"),
    ("ttml_w3c_example.ttml", "ttml", 11, 1, 5000, 10000,
     "that the image formed on\nthe Retina should be inverted?"),
    ("ttml_top_bottom_regions.ttml", "ttml", 10, 0, 1375, 5750, "{\\an8}TOP SAMPLE TEXT"),
    ("dfxp_pycaption_sample.dfxp", "ttml", 7, 6, 32200, 36200,
     "{\\an1}<LAUGHING & WHOOPS!>"),
    ("dfxp_tick_rate.dfxp", "ttml", 1, 0, 5000, 12000, "{\\an8}ABC"),
    ("dfxp_frames_ntsc.dfxp", "ttml", 1, 0, 9834, 12292, "{\\an8}ABC"),  # 23.976 fps
    ("sbv_youtube_sample.sbv", "sbv", 5, 2, 13489, 15489,
     "Caption text #3 (line 1)\nCaption text #3 (line 2)"),
]  # fmt: skip


@pytest.mark.parametrize(("file", "name", "count", "at", "start", "end", "text"), REAL_FILES)
def test_real_files_are_read(
    file: str, name: str, count: int, at: int, start: int, end: int, text: str
) -> None:
    parsed = read_subtitles((DATA / file).read_bytes(), file)
    assert (parsed.format, len(parsed.cues)) == (name, count)
    cue = parsed.cues[at]
    assert (cue.start_ms, cue.end_ms, cue.text) == (start, end, text)


def test_the_language_a_file_says() -> None:
    regions = read_subtitles((DATA / "ttml_top_bottom_regions.ttml").read_bytes(), "r.ttml")
    assert regions.language == "en"
    w3c = read_subtitles((DATA / "ttml_w3c_example.ttml").read_bytes(), "w.ttml")
    assert w3c.language is None  # xml:lang="": undetermined


def test_what_real_files_keep() -> None:
    ssa = read_subtitles((DATA / "ssa_srtedit_hex_colours.ssa").read_bytes(), "a.ssa")
    assert ssa.cues[0].speaker == "NTP"
    regions = read_subtitles((DATA / "ttml_top_bottom_regions.ttml").read_bytes(), "r.ttml")
    assert [c.position for c in regions.cues[:2]] == [8, None]
    netflix = read_subtitles((DATA / "es_netflix_chicas_del_cable.vtt").read_bytes(), "es.vtt")
    assert sum("<i>" in c.text for c in netflix.cues) == 106


@pytest.mark.parametrize("file", [f for f, *_ in REAL_FILES])
def test_real_files_go_through_every_format(file: str) -> None:
    parsed = read_subtitles((DATA / file).read_bytes(), file)
    for name in FORMATS:
        cues = [c for c in parsed.cues if c.text.strip()]
        if not cues:
            continue
        back = read_subtitles(write_subtitles(cues, name).encode(), file_name(name))
        assert len(back.cues) == len(cues), name


# ---- IMSC1 text profile ------------------------------------------------------------------------

TT = "{http://www.w3.org/ns/ttml}"
TTP = "{http://www.w3.org/ns/ttml#parameter}"


def test_ttml_follows_the_imsc1_text_profile() -> None:
    root = ET.fromstring(write_subtitles(SHARED, "ttml", language="ja").encode())
    assert root.tag == f"{TT}tt"
    assert root.get(f"{TTP}profile") == "http://www.w3.org/ns/ttml/profile/imsc1/text"
    assert root.get(f"{TTP}timeBase") == "media"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "ja"
    head, body = list(root)
    assert [child.tag for child in head] == [f"{TT}styling", f"{TT}layout"]
    regions = {r.get("{http://www.w3.org/XML/1998/namespace}id") for r in head.iter(f"{TT}region")}
    paragraphs = list(body.iter(f"{TT}p"))
    assert len(paragraphs) == len(SHARED)
    for p in paragraphs:
        assert p.get("region") in regions
        assert {"begin", "end"} <= set(p.attrib)
    assert paragraphs[-1].get("begin") == "01:02:03.004"


# ---- what is no subtitle file ------------------------------------------------------------------

_JUNK = random.Random(33).randbytes(4000)
BAD = [
    ("junk.srt", _JUNK),
    ("picture.vtt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _JUNK[:200]),
    ("empty.srt", b""),
    ("blank.vtt", b" \n\r\n\t\n"),
    ("prose.srt", b"Just a letter, no times at all.\nDear reader,\n"),
    ("untimed.ttml", b'<tt xmlns="http://www.w3.org/ns/ttml"><body><div><p>No time</p>'
                     b"</div></body></tt>"),
    ("broken.ttml", b'<tt xmlns="http://www.w3.org/ns/ttml"><body><p begin="1s"'),
    ("not_ttml.xml", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'),
    ("no_cues.vtt", b"WEBVTT\n\nNOTE nothing here\n"),
    ("transcript.json", b'{"language": "en", "segments": []}'),
]  # fmt: skip


@pytest.mark.parametrize(("file", "data"), BAD, ids=[f for f, _ in BAD])
def test_what_is_no_subtitle_file_is_one_line_input_error(file: str, data: bytes) -> None:
    with pytest.raises(InputError) as caught:
        read_subtitles(data, file)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(file), message


def test_an_unknown_format_to_write_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown subtitle format 'stl'"):
        write_subtitles(SHARED, "stl")


# ---- the table ----------------------------------------------------------------------------------


def test_the_table_is_consistent() -> None:
    for name, fmt in FORMATS.items():
        assert fmt.name == name and fmt.content_type and fmt.extensions
        assert fmt.keeps <= {"markup", "positions", "speakers", "styles"}
        for ext in fmt.extensions:
            assert formats.format_of_name(f"a{ext.upper()}") == name
    assert formats.format_of_name("movie.mkv") is None


def test_the_old_names_still_import() -> None:
    from mediaflows.subtitles.formats import (  # noqa: F401
        MAX_SRT_BYTES,
        language_vtt,
        read_srt,
        to_json,
        write_srt,
    )

    parsed = read_srt(write_srt(SHARED).encode())
    assert parsed.cues == tuple(kept(c, "srt") for c in SHARED)
    assert language_vtt(parsed.cues, "ja").startswith("WEBVTT\nLanguage: ja\n\n1\n")
