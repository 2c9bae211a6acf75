"""Packaging a video with its subtitles, on real media: soft tracks tagged per language with
the streams copied bit for bit, burn-in that draws only where and when a cue is, CJK drawn
with glyphs, the preview frame; and the choice of tracks, refused when it cannot be right."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mediaflows import media
from mediaflows.errors import InputError, MediaError
from mediaflows.media.package import Track, package, preview_frame, track_language
from mediaflows.models import PackageRequest, ProfileFile
from mediaflows.operations import package as procedure
from tests.media_factory import (
    ffmpeg,
    frame_rgb,
    make_flat_video,
    packet_checksums,
    probe_streams,
    top_level_atoms,
)
from tests.srt_samples import package_srt


@pytest.fixture(scope="module")
def flat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_flat_video(tmp_path_factory.mktemp("package") / "flat.mp4")


def _tracks(directory: Path, *languages: str) -> list[Track]:
    made = []
    for language in languages:
        path = directory / f"{language}.srt"
        path.write_text(package_srt(language), encoding="utf-8")
        made.append(Track(path, language))
    return made


def _track_text(path: Path, index: int) -> str:
    return subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:s:{index}",
         "-f", "srt", "-"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip


def test_one_tagged_track_per_language_and_streams_copied(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    source = videos["h264_aac.mkv"]
    tracks = _tracks(tmp_path, "de", "fr", "zh-Hans")
    out = package(source, media.probe(source), tracks, tmp_path / "out.mp4", "talk.mkv")
    assert out.mode == "copy" and abs(out.duration - 3.0) < 0.2
    subs = [s for s in probe_streams(out.path) if s["codec_type"] == "subtitle"]
    assert [s["codec_name"] for s in subs] == ["mov_text"] * 3
    assert [s["tags"]["language"] for s in subs] == ["deu", "fra", "zho"]
    assert [s["tags"]["handler_name"] for s in subs] == ["Deutsch", "Français", "简体中文"]
    assert [s["disposition"]["default"] for s in subs] == [1, 0, 0]
    assert "Je n'ai pas reçu la lettre." in _track_text(out.path, 1)
    assert "我没有收到信。" in _track_text(out.path, 2)
    for selector in ("v", "a"):
        copied = packet_checksums(out.path, selector)
        assert copied and copied == packet_checksums(source, selector), selector
    atoms = top_level_atoms(out.path)
    assert atoms.index("moov") < atoms.index("mdat"), atoms


def test_burn_in_changes_pixels_only_where_and_when_a_cue_is(flat: Path, tmp_path: Path) -> None:
    tracks = _tracks(tmp_path, "de", "fr")
    out = package(flat, media.probe(flat), tracks, tmp_path / "burnt.mp4", "flat.mp4", tracks[0],
                  crf=12, preset="ultrafast")  # fmt: skip
    assert out.mode == "burn_in"
    at_cue = np.abs(frame_rgb(out.path, 1.0).astype(int) - frame_rgb(flat, 1.0).astype(int))
    drawn = at_cue.max(axis=2) > 40
    assert drawn.sum() > 300  # the cue's text
    rows = np.nonzero(drawn.any(axis=1))[0]
    height = at_cue.shape[0]
    assert rows.min() > height * 0.6, "drawn outside the subtitle area at the bottom"
    assert at_cue[: int(height * 0.6)].max() <= 8  # the rest: only the encoder's rounding
    between = np.abs(frame_rgb(out.path, 2.0).astype(int) - frame_rgb(flat, 2.0).astype(int))
    assert between.max() <= 8, "something drawn between two cues"
    assert packet_checksums(out.path, "a") == packet_checksums(flat, "a")  # audio still copied
    assert [
        s["tags"]["language"] for s in probe_streams(out.path) if s["codec_type"] == "subtitle"
    ] == [
        "deu",
        "fra",
    ]


def _burnt_cue(flat: Path, directory: Path, language: str, text: str) -> Any:
    path = directory / f"{language}-{abs(hash(text))}.srt"
    path.write_text(package_srt(language, first=text), encoding="utf-8")
    track = Track(path, language)
    dst = directory / f"{path.stem}.mp4"
    package(flat, media.probe(flat), [track], dst, "flat.mp4", track, crf=12, preset="ultrafast")
    return frame_rgb(dst, 1.0)


def _dejavu_only(flat: Path, directory: Path, language: str, text: str) -> Any:
    """The same cue drawn by libass when fontconfig knows only DejaVu (no CJK glyphs)."""
    conf = directory / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<dir>/usr/share/fonts/truetype/dejavu</dir><cachedir>{directory}/fc</cachedir>"
        "</fontconfig>"
    )
    srt = directory / "dejavu.srt"
    srt.write_text(package_srt(language, first=text), encoding="utf-8")
    dst = directory / "dejavu.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(flat), "-vf",
         f"subtitles={srt}:force_style=FontName=DejaVu Sans", "-c:v", "libx264", "-preset",
         "ultrafast", "-crf", "12", str(dst)],
        check=True, timeout=120, env={**os.environ, "FONTCONFIG_FILE": str(conf)},
    )  # fmt: skip
    return frame_rgb(dst, 1.0)


@pytest.mark.parametrize(
    ("language", "texts"),
    [("zh-Hans", ("我没有收到信", "明天见大家好")), ("ja", ("手紙をください", "また明日会おう"))],
)
def test_cjk_burn_in_draws_glyphs_not_boxes(
    flat: Path, tmp_path: Path, language: str, texts: tuple[str, str]
) -> None:
    first, second = (_burnt_cue(flat, tmp_path, language, t) for t in texts)
    boxes_first, boxes_second = (_dejavu_only(flat, tmp_path, language, t) for t in texts)
    height = first.shape[0]

    def differ(a: Any, b: Any) -> int:
        return int((np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 40).sum())

    # Without a CJK font every character is the same box: two texts look alike …
    assert differ(boxes_first, boxes_second) < 20
    # … while the packaged burn-in draws each character's own glyph.
    assert differ(first, second) > 200
    assert differ(first, boxes_first) > 200
    above = first[: int(height * 0.6)].astype(int)
    assert np.abs(above - above[0, 0]).max() <= 8  # nothing drawn above the subtitle area


def test_a_file_without_video_is_refused(tmp_path: Path) -> None:
    audio = tmp_path / "tone.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", str(audio))
    with pytest.raises(MediaError, match="no video stream"):
        package(audio, media.probe(audio), _tracks(tmp_path, "de"), tmp_path / "x.mp4", "a")
    assert not (tmp_path / "x.mp4").exists()


def test_preview_draws_every_language(flat: Path, tmp_path: Path) -> None:
    lines = [("de", "Bis morgen."), ("fr", "À demain."), ("zh-Hans", "明天见。")]
    jpeg = preview_frame(flat, 2.0, lines, tmp_path / "p", "flat.mp4")
    plain = preview_frame(flat, 2.0, [], tmp_path / "q", "flat.mp4")
    assert jpeg[:2] == b"\xff\xd8" and jpeg != plain
    decoded = []
    for name, data in (("with", jpeg), ("without", plain)):
        (tmp_path / f"{name}.jpg").write_bytes(data)
        decoded.append(frame_rgb(tmp_path / f"{name}.jpg", 0.0))
    assert decoded[0].shape == (360, 640, 3)
    drawn = (np.abs(decoded[0].astype(int) - decoded[1].astype(int)).max(axis=2) > 60).any(axis=1)
    rows = np.nonzero(drawn)[0]
    # Three lines stacked at the bottom: text over more than a fifth of the frame's height.
    assert rows.min() > 360 * 0.4 and rows.max() - rows.min() > 360 * 0.2


def test_track_languages() -> None:
    assert track_language("de") == ("deu", "Deutsch")
    assert track_language("pt-BR") == ("por", "Português")
    assert track_language("zh-Hant") == ("zho", "繁體中文")
    assert track_language("yue") == ("und", "yue")  # a language Whisper heard, unknown here


# ---- choosing the tracks ----------------------------------------------------------------------


def _file(file_id: str, name: str, language: str = "", kind: str = "subtitle") -> ProfileFile:
    return ProfileFile(
        id=file_id, profile="alice", name=name, kind=kind,  # type: ignore[arg-type]
        content_type="text/plain", size=1, sha256="0" * 64, created=datetime.now(UTC),
        source_file_id="video", details={"language": language} if language else {},
    )  # fmt: skip


def test_choose_keeps_the_requested_order() -> None:
    video = _file("video", "talk.mp4", kind="video")
    de, fr = _file("de1", "talk.de.srt", "de"), _file("fr1", "talk.fr.srt", "fr")
    request = PackageRequest(subtitles=("fr1", "de1"), burn_in="de")
    chosen = procedure.choose(video, "video", [(fr, "video"), (de, "video")], request)
    assert [c.language for c in chosen] == ["fr", "de"]


@pytest.mark.parametrize(
    ("subtitles", "burn_in", "message"),
    [
        ([("de1", "talk.de.srt", "de", "other")], None, "subtitles of another file"),
        ([("x1", "talk.srt", "", "video")], None, "no language recorded"),
        ([("de1", "a.de.srt", "de", "video"), ("de2", "b.de-AT.srt", "de-AT", "video")], None,
         "two subtitle files in de-AT"),
        ([("de1", "talk.de.srt", "de", "video")], "ja", "burn_in ja: no subtitle track"),
        ([("j1", "talk.json", "de", "video")], None, "not an SRT file"),
    ],
)  # fmt: skip
def test_choose_refuses_what_cannot_be_packaged(
    subtitles: list[tuple[str, str, str, str]], burn_in: str | None, message: str
) -> None:
    video = _file("video", "talk.mp4", kind="video")
    given = [(_file(i, name, language), root) for i, name, language, root in subtitles]
    request = PackageRequest(subtitles=tuple(i for i, *_ in subtitles), burn_in=burn_in)
    with pytest.raises(InputError, match=message) as info:
        procedure.choose(video, "video", given, request)
    assert "\n" not in str(info.value)


def test_root_of_follows_the_chain_of_outputs() -> None:
    files = {
        "video": _file("video", "talk.mp4", kind="video").model_copy(
            update={"source_file_id": None}
        ),
        "srt": _file("srt", "talk.srt", "en"),
        "de": _file("de", "talk.de.srt", "de").model_copy(update={"source_file_id": "srt"}),
    }
    assert procedure.root_of(files["de"], files.get) == "video"
    assert procedure.root_of(files["video"], files.get) == "video"


@pytest.mark.parametrize("language", ["de", "zh-Hans"])
def test_the_ass_written_for_a_language_looks_as_the_burn_in_draws_it(
    flat: Path, tmp_path: Path, language: str
) -> None:
    """The ASS file a translation is stored as, drawn by libass over the video, and the same
    cue burnt in by package: the same pixels (what an editor opens is what a viewer sees)."""
    from mediaflows.subtitles import read_srt, write_subtitles

    text = package_srt(language)
    burnt = _burnt_cue(flat, tmp_path, language, read_srt(text.encode()).cues[0].text)
    ass = tmp_path / f"{language}.ass"
    ass.write_text(write_subtitles(read_srt(text.encode()).cues, "ass", language), "utf-8")
    drawn = tmp_path / f"{language}-ass.mp4"
    ffmpeg("-i", str(flat), "-vf", f"subtitles={ass}", "-c:v", "libx264", "-preset",
           "ultrafast", "-crf", "12", "-an", str(drawn))  # fmt: skip
    ours = frame_rgb(drawn, 1.0).astype(int)
    plain = frame_rgb(flat, 1.0).astype(int)
    assert (np.abs(ours - plain).max(axis=2) > 60).sum() > 200  # the cue is drawn
    assert np.abs(ours - burnt.astype(int)).max() <= 12  # as package burns it in
