"""Subtitle tracks inside videos (issue 33): an MKV carrying an English SubRip track and a real
film's French subtitles as a WebVTT track, made with ffmpeg. Import lists the tracks;
translate_srt and fix_srt take "the `eng` track of FILE_ID" as their input (taken out once,
stored as a file of its own); package puts the translation back beside the untouched video
streams; bad track choices fail at once in one line. Real ffmpeg, a real Prefect server, the
loopback LLM."""

from __future__ import annotations

from pathlib import Path

import pysubs2
import pytest

from flows.fix_srt import fix_srt
from flows.package import package
from flows.translate_srt import translate_srt
from mediaflows.errors import InputError
from mediaflows.media import import_details
from mediaflows.models import (
    FixSrtRequest,
    PackageRequest,
    PackageResult,
    SrtResult,
    TranslateSrtRequest,
    TranslateSrtResult,
)
from mediaflows.store import ProfileStore
from mediaflows.subtitles import read_srt
from tests.conftest import DATA
from tests.llm_server import LLMServer
from tests.media_factory import ffmpeg, packet_checksums, probe_streams
from tests.runs import flow_result, run_flow
from tests.srt_samples import TRANSLATION_CUES, messy_srt, timecodes

FRENCH = DATA / "subtitles" / "fr_man_of_steel.srt"  # 1,178 cues, 175 in italics


@pytest.fixture
def film(videos: dict[str, Path], tmp_path: Path) -> Path:
    """The test video with two subtitle tracks: English SubRip (a BOM and CRLF, as found in the
    wild) tagged ``eng``, and a film's French subtitles as WebVTT, tagged with the bibliographic
    ``fre``."""
    english = tmp_path / "english.srt"
    english.write_bytes(messy_srt(TRANSLATION_CUES))
    out = tmp_path / "film.mkv"
    ffmpeg("-i", str(videos["h264_aac.mkv"]), "-i", str(english), "-i", str(FRENCH),
           "-map", "0", "-map", "1", "-map", "2", "-c:v", "copy", "-c:a", "copy",
           "-c:s:0", "srt", "-c:s:1", "webvtt", "-metadata:s:s:0", "language=eng",
           "-metadata:s:s:1", "language=fre", "-metadata:s:s:1", "title=Forced",
           str(out))  # fmt: skip
    return out


def _import(store: ProfileStore, path: Path) -> str:
    return store.import_file("tia", path, details=import_details(path)).id


def test_the_eng_track_is_translated_and_packaged_beside_the_untouched_streams(
    llm_server: LLMServer, local_store: ProfileStore, film: Path, tmp_path: Path
) -> None:
    video = local_store.get("tia", _import(local_store, film))
    assert video.details["subtitle_tracks"] == [
        {"track": 0, "stream": 2, "codec": "subrip", "language": "en", "text": True},
        {"track": 1, "stream": 3, "codec": "webvtt", "language": "fr", "title": "Forced",
         "text": True},
    ]  # fmt: skip
    request = TranslateSrtRequest(target_languages=("de",), track="eng")
    result: TranslateSrtResult = flow_result(translate_srt, "tia", video.id, request)
    assert result.source_language == "en"
    (german,) = result.translations
    source = messy_srt(TRANSLATION_CUES).decode("utf-8-sig").replace("\r\n", "\n")
    assert timecodes(german.content.replace("\r\n", "\n")) == timecodes(source)
    assert german.report is not None and german.report.untranslated == ()
    extracted = [f for f in local_store.list_files("tia") if f.operation == "extract_track"]
    assert [(f.name, f.kind, f.source_file_id) for f in extracted] == [
        ("film.en.srt", "subtitle", video.id)
    ]
    # Another language: the track is found in the store, not taken out again.
    again = TranslateSrtRequest(target_languages=("fr",), track="en")
    flow_result(translate_srt, "tia", video.id, again)
    assert [f.id for f in local_store.list_files("tia") if f.operation == "extract_track"] == [
        extracted[0].id
    ]
    # The German translation packaged with the video: its streams copied bit for bit.
    packaged: PackageResult = flow_result(
        package, "tia", video.id, PackageRequest(subtitles=(german.file_id,))
    )
    out = tmp_path / "packaged.mp4"
    local_store.download("tia", packaged.file_id, out)
    for selector in ("v", "a"):
        assert packet_checksums(out, selector) == packet_checksums(film, selector)
    tracks = [s for s in probe_streams(out) if s["codec_type"] == "subtitle"]
    assert [(s["codec_name"], s["tags"]["language"]) for s in tracks] == [("mov_text", "deu")]
    # The packaged MP4's mov_text track is itself an input: its cues are the translation's.
    mp4 = local_store.get("tia", _import(local_store, out))
    assert mp4.details["subtitle_tracks"][0]["codec"] == "mov_text"
    fixed: SrtResult = flow_result(fix_srt, "tia", mp4.id, FixSrtRequest(track="de"))
    assert timecodes(fixed.content) == timecodes(german.content.replace("\r\n", "\n"))


def test_a_webvtt_track_is_repaired_with_its_times_as_another_reader_reads_them(
    llm_server: LLMServer, local_store: ProfileStore, film: Path
) -> None:
    video_id = _import(local_store, film)
    result: SrtResult = flow_result(fix_srt, "tia", video_id, FixSrtRequest(track="1"))
    cues = read_srt(result.content.encode()).cues
    theirs = [e for e in pysubs2.load(str(FRENCH)) if not e.is_comment]
    assert [(c.start_ms, c.end_ms) for c in cues] == [(e.start, e.end) for e in theirs]
    italic = sum("<i>" in block for block in FRENCH.read_text().split("\n\n"))
    assert sum("<i>" in c.text for c in cues) == italic > 100  # through WebVTT and back


@pytest.mark.parametrize(
    "track,message",
    [
        ("jpn", "film.mkv has no subtitle track in jpn: it has track 0 (en, subrip); "
                "track 1 (fr, Forced, webvtt)"),
        ("7", "film.mkv has no subtitle track 7: it has track 0"),
    ],
)  # fmt: skip
def test_a_track_the_video_does_not_have_fails_at_once_naming_those_it_has(
    llm_server: LLMServer, local_store: ProfileStore, film: Path, track: str, message: str
) -> None:
    video_id = _import(local_store, film)
    state = run_flow(fix_srt, "tia", video_id, FixSrtRequest(track=track))
    with pytest.raises(InputError) as info:
        state.result()
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert [f.id for f in local_store.list_files("tia")] == [video_id]  # nothing stored
    assert llm_server.requests == []
