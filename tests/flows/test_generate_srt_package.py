"""generate_srt --to de --to fr --package: transcription, translation and packaging in one run,
each step a linked child run (the bundled model, real ffmpeg, a real Prefect server, the
loopback LLM server)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from flows.generate_srt import generate_srt
from mediaflows.errors import MediaError
from mediaflows.models import GenerateSrtRequest, PackageDetails, SrtResult
from mediaflows.store import ProfileStore
from tests.llm_server import LLMServer
from tests.media_factory import ffmpeg, packet_checksums, probe_streams
from tests.runs import child_runs, run_flow

#: Every word is in the test server's translation tables.
SPEECH = "I did not receive the letter. See you tomorrow."


def _talk(tmp_path: Path, video: bool = True) -> Path:
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(wav), SPEECH], check=True)
    if not video:
        return wav
    out = tmp_path / "talk.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-i", str(wav), "-shortest",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(out))  # fmt: skip
    return out


def test_to_de_fr_with_package_makes_the_mp4_in_the_same_run(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    talk = _talk(tmp_path)
    source = local_store.import_file("erin", talk)
    request = GenerateSrtRequest(language="en", target_languages=("de", "fr"), package=True)
    state = run_flow(generate_srt, "erin", source.id, request)
    assert state.is_completed(), state.message
    result: SrtResult = state.result()
    assert result.package_file_id and result.package_url
    packaged = local_store.get("erin", result.package_file_id)
    assert packaged.operation == "package" and packaged.source_file_id == source.id
    details = PackageDetails.model_validate(packaged.details)
    by_language = {t.language: t.file_id for t in result.translations}
    assert [(t.language, t.file_id) for t in details.tracks] == [
        ("de", by_language["de"]),
        ("fr", by_language["fr"]),
        ("en", result.file_id),
    ]
    out = local_store.download("erin", packaged.id, tmp_path / "out.mp4")
    assert out.kind == "video"
    subs = [s for s in probe_streams(tmp_path / "out.mp4") if s["codec_type"] == "subtitle"]
    assert [s["tags"]["language"] for s in subs] == ["deu", "fra", "eng"]
    assert [s["disposition"]["default"] for s in subs] == [1, 0, 0]
    assert packet_checksums(tmp_path / "out.mp4", "v") == packet_checksums(talk, "v")
    # Translation and packaging ran as child runs of this run.
    children = child_runs(state.state_details.flow_run_id)
    names = sorted(c.parameters.get("file_id") == source.id for c in children)
    assert len(children) == 2 and all(c.state.is_completed() for c in children)
    assert names == [False, True]  # translate_srt on the SRT, package on the video
    # Again: from the store, the package named.
    again = run_flow(generate_srt, "erin", source.id, request).result()
    assert again.cached and again.package_file_id == result.package_file_id


def test_package_needs_a_video_and_target_languages(
    llm_server: LLMServer, local_store: ProfileStore, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="package needs target_languages"):
        GenerateSrtRequest(language="en", package=True)
    source = local_store.import_file("erin", _talk(tmp_path, video=False))
    request = GenerateSrtRequest(language="en", target_languages=("de",), package=True)
    state = run_flow(generate_srt, "erin", source.id, request)
    with pytest.raises(MediaError, match=r"speech\.wav: has no video stream"):
        state.result()
    assert [f.id for f in local_store.list_files("erin")] == [source.id]  # nothing stored
    assert llm_server.requests == []  # refused before any work
