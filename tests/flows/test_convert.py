"""The convert flow end to end: real ffmpeg, a real Prefect server, both store backends."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from flows.convert import convert
from mediaflows import media, stages
from mediaflows.errors import InputError, MediaError, UnsafeMediaError
from mediaflows.models import ConvertRequest, ConvertResult
from mediaflows.stages import Stage
from mediaflows.store import ProfileStore
from tasks.prefect_adapter import state_of
from tests import prefect_api
from tests.media_factory import VIDEOS, top_level_atoms
from tests.runs import run_flow, run_id_of


@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_converted_output_plays_as_web_mp4(
    name: str, store: ProfileStore, videos: dict[str, Path], tmp_path: Path
) -> None:
    source = store.import_file("alice", videos[name])
    state = run_flow(convert, "alice", source.id)
    run_id = run_id_of(state)
    assert state.is_completed(), state.message
    result: ConvertResult = state.result()
    assert result.mode == VIDEOS[name][0] and not result.cached
    out = tmp_path / "out.mp4"
    stored = store.download("alice", result.file_id, out)
    assert stored.source_file_id == source.id and stored.operation == "convert"
    assert stored.tools["ffmpeg"].startswith("ffmpeg ")
    info = media.probe(out)
    assert "mp4" in info.format_name
    assert info.video is not None and info.video.codec in {"h264", "hevc"}
    assert info.audio is not None and info.audio.codec in {"aac", "mp3"}
    if result.mode == "transcode":
        assert (info.video.codec, info.audio.codec) == ("h264", "aac")
    atoms = top_level_atoms(out)
    assert atoms.index("moov") < atoms.index("mdat"), atoms
    assert abs(info.duration - media.probe(videos[name]).duration) <= 0.1
    # The run is on the server, Completed, with its progress artifact at 100 %.
    assert prefect_api.flow_run(run_id).state_type.value == "COMPLETED"
    progress = [a for a in prefect_api.artifacts(run_id) if a.type == "progress"]
    assert progress and progress[0].data == 100.0
    assert stages.parse(progress[0].description) == (
        Stage.SUCCEEDED,
        f"{result.mode}, {result.duration:.1f} s",
    )


def test_second_run_is_served_from_cache_without_ffmpeg(
    store: ProfileStore, videos: dict[str, Path], ffmpeg_calls: Path
) -> None:
    source = store.import_file("alice", videos["vp9_opus.webm"])
    request = ConvertRequest(crf=30, preset="ultrafast")
    first = run_flow(convert, "alice", source.id, request)
    assert len(ffmpeg_calls.read_text().splitlines()) == 1
    second = run_flow(convert, "alice", source.id, request)
    run_id = run_id_of(second)
    assert len(ffmpeg_calls.read_text().splitlines()) == 1  # no ffmpeg process this time
    assert second.result().cached and second.result().file_id == first.result().file_id
    assert len(store.list_files("alice")) == 2
    names = {t.task_key.split("-")[0] for t in prefect_api.task_runs(run_id, expect=1)}
    assert "convert_media" not in names and "lookup_input" in names
    # Other options → another output.
    third = run_flow(convert, "alice", source.id, ConvertRequest(crf=31, preset="ultrafast"))
    assert third.result().file_id != first.result().file_id
    assert len(ffmpeg_calls.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    "name,error",
    [
        ("empty.mp4", MediaError),
        ("text.mp4", MediaError),
        ("truncated.mkv", MediaError),
        ("playlist.mp4", UnsafeMediaError),
        ("concat.mp4", UnsafeMediaError),
    ],
)
def test_bad_input_fails_at_once_and_stores_nothing(
    name: str,
    error: type[InputError],
    store: ProfileStore,
    bad_inputs: dict[str, Path],
    bait_server: tuple[int, list[str]],
) -> None:
    source = store.import_file("alice", bad_inputs[name])
    state = run_flow(convert, "alice", source.id)
    run_id = run_id_of(state)
    assert state.is_failed()
    with pytest.raises(error) as info:
        state.result()
    assert name in str(info.value)
    assert [f.id for f in store.list_files("alice")] == [source.id]
    failed = [t for t in prefect_api.task_runs(run_id, expect=2, failed=1) if t.state.is_failed()]
    assert len(failed) == 1 and failed[0].run_count == 1  # no retries
    assert bait_server[1] == []


def test_bad_ids_fail_before_any_task(store: ProfileStore) -> None:
    state = asyncio.run(state_of(convert, profile="../etc", file_id="x"))
    assert state.is_failed()
    assert prefect_api.task_runs(state.state_details.flow_run_id, expect=0, timeout=3) == []


def test_missing_file_is_an_input_error(store: ProfileStore) -> None:
    state = run_flow(convert, "alice", "doesnotexist")
    with pytest.raises(InputError, match="no file"):
        state.result()


def test_workspace_is_removed_after_runs(
    store: ProfileStore, videos: dict[str, Path], bad_inputs: dict[str, Path]
) -> None:
    from mediaflows.settings import get_settings

    runs = get_settings().work_path / "runs"
    before = set(runs.iterdir()) if runs.exists() else set()
    good = store.import_file("alice", videos["mpeg4_mp3.avi"])
    bad = store.import_file("alice", bad_inputs["truncated.mkv"])
    assert run_flow(convert, "alice", good.id).is_completed()
    assert run_flow(convert, "alice", bad.id).is_failed()
    after = set(runs.iterdir()) if runs.exists() else set()
    assert after == before


def test_plain_ffmpeg_agrees_on_remux(videos: dict[str, Path], tmp_path: Path) -> None:
    # Sanity of the expectation used above: the remux plan matches what `ffmpeg -c copy` accepts.
    out = tmp_path / "plain.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(videos["h264_aac.mkv"]), "-c", "copy", str(out)],
        check=True,
    )
    assert media.probe(out).video.codec == "h264"


def test_s3_credentials_are_nowhere_on_the_prefect_server(
    s3_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    videos: dict[str, Path],
    bad_inputs: dict[str, Path],
) -> None:
    """Runs on S3 with credentials from settings, one good and one failing: the credentials
    appear in no run parameter, log, artifact or task run that the server has."""
    from mediaflows.settings import get_settings

    key_id, secret = "MFTESTKEYID7Q2ZX", "mf-test-secret-9f8e7d6c5b4a3210"
    monkeypatch.setenv("MEDIAFLOWS_STORE__S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("MEDIAFLOWS_STORE__URL", "s3://mediaflows-test/secrets")
    monkeypatch.setenv("MEDIAFLOWS_STORE__S3_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("MEDIAFLOWS_STORE__S3_SECRET_ACCESS_KEY", secret)
    get_settings.cache_clear()
    try:
        store = ProfileStore.from_settings()
        good = store.import_file("sam", videos["h264_aac.mkv"])
        bad = store.import_file("sam", bad_inputs["text.mp4"])
        ok = run_flow(convert, "sam", good.id)
        ok_id = run_id_of(ok)
        failed = run_flow(convert, "sam", bad.id)
        failed_id = run_id_of(failed)
        assert ok.is_completed() and failed.is_failed()
        text = prefect_api.everything_about([ok_id, failed_id])
    finally:
        get_settings.cache_clear()
    # The runs are there (their parameters, the failure's message, the progress artifacts) …
    assert '"profile":"sam"' in text.replace(" ", "") and good.id in text and bad.id in text
    assert "not a readable media file" in text
    assert key_id not in text and secret not in text and secret[-10:] not in text  # … no creds
