"""Choosing a subtitle track of a video (mediaflows/media/tracks.py): by number or language, the
container's codes read as BCP-47, picture tracks refused in one line."""

from __future__ import annotations

import pytest

from mediaflows.errors import InputError
from mediaflows.media.tracks import SubtitleTrack, choose_track, language_tag, listed_tracks

TRACKS = [
    SubtitleTrack(track=0, stream=2, codec="hdmv_pgs_subtitle", language="en"),
    SubtitleTrack(track=1, stream=3, codec="subrip", language="en", title="SDH"),
    SubtitleTrack(track=2, stream=4, codec="ass", language="de"),
    SubtitleTrack(track=3, stream=5, codec="dvd_subtitle", language="fr"),
]


@pytest.mark.parametrize(
    "code,tag", [("eng", "en"), ("ger", "de"), ("deu", "de"), ("fre", "fr"), ("chi", "zh"),
                 ("pt-BR", "pt-BR"), ("und", None), ("", None), (None, None)],
)  # fmt: skip
def test_container_language_codes_read_as_bcp47(code: str | None, tag: str | None) -> None:
    assert language_tag(code) == tag


def test_a_language_picks_its_first_text_track_and_a_number_its_track() -> None:
    assert choose_track(TRACKS, "eng", "film.mkv").track == 1  # the PGS one is pictures
    assert choose_track(TRACKS, "de", "film.mkv").format == "ass"
    assert choose_track(TRACKS, "1", "film.mkv").codec == "subrip"


@pytest.mark.parametrize(
    "wanted,message",
    [("0", "film.mkv: track 0 (en, hdmv_pgs_subtitle) is Blu-ray PGS pictures, not text"),
     ("fra", "film.mkv: track 3 (fr, dvd_subtitle) is DVD VobSub pictures, not text"),
     ("9", "film.mkv has no subtitle track 9: it has track 0 (en, hdmv_pgs_subtitle); track 1"),
     ("ja", "film.mkv has no subtitle track in ja: it has track 0")],
)  # fmt: skip
def test_a_picture_or_missing_track_is_refused_in_one_line(wanted: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        choose_track(TRACKS, wanted, "film.mkv")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_file_without_subtitle_tracks_says_so() -> None:
    with pytest.raises(InputError, match=r"film\.mp4 has no subtitle tracks"):
        choose_track([], "eng", "film.mp4")


def test_the_tracks_an_import_listed_are_read_back() -> None:
    listed = [{"track": 0, "stream": 2, "codec": "subrip", "language": "en", "text": True}]
    assert listed_tracks({"duration": 3.0, "subtitle_tracks": listed}) == [
        SubtitleTrack(track=0, stream=2, codec="subrip", language="en")
    ]
    assert listed_tracks({"duration": 3.0}) is None  # imported before tracks were listed
