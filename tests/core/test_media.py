"""ffprobe/ffmpeg guards and conversion plans, on real media."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaflows import media
from mediaflows.errors import InputError, MediaError, UnsafeMediaError
from mediaflows.models import ConvertRequest
from tests.media_factory import VIDEOS


@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_plan_remuxes_only_what_fits_mp4(name: str, videos: dict[str, Path]) -> None:
    info = media.probe(videos[name])
    assert 2.9 < info.duration < 3.2
    assert media.plan_conversion(info, ConvertRequest(), name).mode == VIDEOS[name][0]
    assert media.plan_conversion(info, ConvertRequest(codec="transcode"), name).mode == "transcode"


def test_copy_policy_refuses_codecs_mp4_cannot_hold(videos: dict[str, Path]) -> None:
    info = media.probe(videos["vp9_opus.webm"])
    with pytest.raises(MediaError, match="cannot be copied"):
        media.plan_conversion(info, ConvertRequest(codec="copy"), "vp9_opus.webm")


def test_max_height_forces_transcode(videos: dict[str, Path]) -> None:
    info = media.probe(videos["h264_aac.mkv"])
    plan = media.plan_conversion(info, ConvertRequest(max_height=144), "x")
    assert plan.mode == "transcode"


@pytest.mark.parametrize(
    "name,error,message",
    [
        ("empty.mp4", MediaError, "empty"),
        ("text.mp4", MediaError, "not a readable media file"),
        ("playlist.mp4", UnsafeMediaError, "HLS playlist"),
        ("concat.mp4", UnsafeMediaError, "ffconcat list"),
    ],
)
def test_probe_refuses_bad_inputs(
    name: str, error: type[InputError], message: str, bad_inputs: dict[str, Path]
) -> None:
    with pytest.raises(error, match=message) as info:
        media.probe(bad_inputs[name], name=name)
    assert name in str(info.value)


def test_indirections_never_reach_the_network_even_past_the_sniffer(
    tmp_path: Path, bait_server: tuple[int, list[str]]
) -> None:
    # Hide the playlist header from the byte sniffer: the demuxer whitelist must still refuse it.
    port, requests = bait_server
    sneaky = tmp_path / "sneaky.mp4"
    sneaky.write_text(
        "\n" * 5000 + f"#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:{port}/a.ts\n#EXT-X-ENDLIST\n"
    )
    with pytest.raises(InputError):
        media.probe(sneaky)
    concat = tmp_path / "c.mp4"
    concat.write_text(" " * 5000 + f"ffconcat version 1.0\nfile 'http://127.0.0.1:{port}/b'\n")
    with pytest.raises(InputError):
        media.probe(concat)
    assert requests == []


def test_truncated_video_is_an_input_error(bad_inputs: dict[str, Path], tmp_path: Path) -> None:
    src = bad_inputs["truncated.mkv"]
    info = media.probe(src, name="truncated.mkv")
    with pytest.raises(MediaError, match="truncated"):
        media.convert_to_mp4(src, tmp_path, info, ConvertRequest(), name="truncated.mkv")
    assert not (tmp_path / "converted.mp4").exists()


def test_conversion_reports_progress_up_to_one(videos: dict[str, Path], tmp_path: Path) -> None:
    seen: list[float] = []
    src = videos["vp9_opus.webm"]
    info = media.probe(src)
    out = media.convert_to_mp4(src, tmp_path, info, ConvertRequest(), "v", on_progress=seen.append)
    assert out.mode == "transcode" and seen[-1] == 1.0
    assert seen == sorted(seen)
    assert abs(out.duration - info.duration) < 0.1
    assert {s.codec for s in media.probe(out.path).streams} == {"h264", "aac"}
