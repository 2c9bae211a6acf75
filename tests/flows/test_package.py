"""The package flow end to end: real ffmpeg, a real Prefect server, both store backends; bad
input fails at once with one line and stores nothing."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from flows.package import package
from mediaflows import stages
from mediaflows.errors import InputError, MediaError
from mediaflows.models import PackageRequest, PackageResult, ProfileFile
from mediaflows.stages import Stage
from mediaflows.store import ProfileStore
from tests import prefect_api
from tests.media_factory import ffmpeg, packet_checksums, probe_streams
from tests.runs import run_flow, run_id_of
from tests.srt_samples import package_srt


def _srt_output(
    store: ProfileStore, source: ProfileFile, language: str, operation: str = "translate_srt"
) -> ProfileFile:
    """An SRT as generate_srt or translate_srt stores it for ``source``."""
    return store.put_text(
        source.profile, f"srt-{source.id[:8]}-{language}", package_srt(language),
        kind="subtitle", name=f"{Path(source.name).stem}.{language}.srt",
        source_file_id=source.id, operation=operation, options={}, tools={},
        details={"language": language, "qa": {"cues": 2}},
    )  # fmt: skip


def test_packaged_mp4_has_a_track_per_language_and_a_preview(
    store: ProfileStore, videos: dict[str, Path], tmp_path: Path
) -> None:
    video = store.import_file("alice", videos["h264_aac.mkv"])
    english = _srt_output(store, video, "en", "generate_srt")
    german = _srt_output(store, english, "de")  # a translation of the English SRT
    chinese = _srt_output(store, english, "zh-Hans")
    request = PackageRequest(subtitles=(german.id, chinese.id, english.id))
    state = run_flow(package, "alice", video.id, request)
    run_id = run_id_of(state)
    assert state.is_completed(), state.message
    result: PackageResult = state.result()
    assert result.mode == "copy" and not result.cached
    assert [(t.language, t.code, t.title, t.default) for t in result.tracks] == [
        ("de", "deu", "Deutsch", True),
        ("zh-Hans", "zho", "简体中文", False),
        ("en", "eng", "English", False),
    ]
    out = tmp_path / "out.mp4"
    stored = store.download("alice", result.file_id, out)
    assert stored.name == "h264_aac.subtitled.mp4" and stored.source_file_id == video.id
    probed = probe_streams(out)
    assert [s["tags"]["language"] for s in probed if s["codec_type"] == "subtitle"] == [
        "deu",
        "zho",
        "eng",
    ]
    assert packet_checksums(out, "v") == packet_checksums(videos["h264_aac.mkv"], "v")
    # The UI: progress at 100 %, and the preview as an image the browser can show by itself.
    found = prefect_api.artifacts(run_id)
    progress = [a for a in found if a.type == "progress"]
    assert progress and progress[0].data == 100.0
    assert stages.parse(progress[0].description)[0] == Stage.SUCCEEDED
    images = [a for a in found if a.type == "image"]
    assert len(images) == 1 and "de, zh-Hans, en" in images[0].description
    head, _, payload = images[0].data.partition(",")
    assert head == "data:image/jpeg;base64"
    assert base64.b64decode(payload)[:2] == b"\xff\xd8"
    # Again: served from the store, no ffmpeg.
    again = run_flow(package, "alice", video.id, request)
    assert again.result().cached and again.result().file_id == result.file_id


def test_burn_in_is_recorded(local_store: ProfileStore, videos: dict[str, Path]) -> None:
    video = local_store.import_file("alice", videos["h264_aac.mkv"])
    german = _srt_output(local_store, video, "de")
    request = PackageRequest(subtitles=(german.id,), burn_in="de", preset="ultrafast")
    state = run_flow(package, "alice", video.id, request)
    assert state.is_completed(), state.message
    result: PackageResult = state.result()
    assert (result.mode, result.burn_in) == ("burn_in", "de")
    plain = run_flow(package, "alice", video.id, PackageRequest(subtitles=(german.id,)))
    assert plain.result().file_id != result.file_id  # another request, another output


@pytest.mark.parametrize("case", ["another_file", "no_track_for_burn_in", "no_video"])
def test_bad_input_fails_at_once_with_one_line_and_stores_nothing(
    case: str, local_store: ProfileStore, videos: dict[str, Path], tmp_path: Path
) -> None:
    store = local_store
    video = store.import_file("alice", videos["h264_aac.mkv"])
    german = _srt_output(store, video, "de")
    request = PackageRequest(subtitles=(german.id,))
    error: type[InputError] = InputError
    message = ""
    if case == "another_file":
        other = store.import_file("alice", videos["h264_mp3.mov"])
        request = PackageRequest(subtitles=(german.id, _srt_output(store, other, "fr").id))
        message = "holds subtitles of another file, not of h264_aac.mkv"
    elif case == "no_track_for_burn_in":
        request = PackageRequest(subtitles=(german.id,), burn_in="ja")
        message = "burn_in ja: no subtitle track in it"
    else:
        tone = tmp_path / "tone.m4a"
        ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", str(tone))
        video = store.import_file("alice", tone)
        request = PackageRequest(subtitles=(_srt_output(store, video, "de").id,))
        error, message = MediaError, "tone.m4a: has no video stream"
    before = {f.id for f in store.list_files("alice")}
    state = run_flow(package, "alice", video.id, request)
    run_id = run_id_of(state)
    assert state.is_failed()
    with pytest.raises(error, match=message) as info:
        state.result()
    assert "\n" not in str(info.value)
    assert {f.id for f in store.list_files("alice")} == before
    runs = prefect_api.task_runs(run_id, expect=1)
    assert all(r.run_count <= 1 for r in runs)  # no retries
    assert "store_output" not in {r.name.split("-")[0] for r in runs}
