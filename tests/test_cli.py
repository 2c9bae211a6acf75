"""The mediaflows command, run as a user runs it (a subprocess), against the test server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mediaflows import media
from tests.conftest import LLM_TEST_KEY
from tests.llm_server import LLMServer
from tests.srt_samples import messy_srt

MEDIAFLOWS = str(Path(sys.executable).with_name("mediaflows"))


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDIAFLOWS, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def env(session_env: dict[str, str], store_url: str) -> dict[str, str]:
    extra = {"MEDIAFLOWS_STORE_URL": store_url}
    if store_url.startswith("s3://"):
        extra["MEDIAFLOWS_S3_ENDPOINT_URL"] = os.environ["MEDIAFLOWS_S3_ENDPOINT_URL"]
    return {**session_env, **extra}


def test_import_convert_get(env: dict[str, str], videos: dict[str, Path], tmp_path: Path) -> None:
    done = cli(
        env,
        "import",
        "--profile",
        "carol",
        str(videos["h264_aac.mkv"]),
        str(videos["vp9_opus.webm"]),
    )
    assert done.returncode == 0, done.stderr
    imported = [json.loads(line) for line in done.stdout.splitlines()]
    assert [i["name"] for i in imported] == ["h264_aac.mkv", "vp9_opus.webm"]
    assert all(i["profile"] == "carol" for i in imported)

    run = cli(
        env,
        "run",
        "convert",
        "--profile",
        "carol",
        imported[1]["file_id"],
        "--preset",
        "ultrafast",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["mode"] == "transcode" and result["cached"] is False
    assert result["source_file_id"] == imported[1]["file_id"]

    out = tmp_path / "got.mp4"
    got = cli(env, "get", "--profile", "carol", result["file_id"], "-o", str(out))
    assert got.returncode == 0, got.stderr
    info = media.probe(out)
    assert info.video is not None and info.video.codec == "h264"

    listed = cli(env, "list", "--profile", "carol")
    assert len(listed.stdout.splitlines()) == 3


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "convert", "--profile", "../x", "abc", "--json"], "invalid profile name"),
        (["run", "convert", "--profile", "carol", "%2e%2e", "--json"], "invalid file id"),
        (["run", "convert", "--profile", "carol", "missing", "--json"], "no file 'missing'"),
        (["get", "--profile", "carol", "missing", "-o", "/tmp/x"], "no file 'missing'"),
    ],
)
def test_input_errors_exit_2_with_one_line(
    env: dict[str, str], args: list[str], message: str
) -> None:
    done = cli(env, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr


def test_corrupt_media_exits_2_naming_the_file(
    env: dict[str, str], bad_inputs: dict[str, Path]
) -> None:
    imported = json.loads(
        cli(env, "import", "--profile", "carol", str(bad_inputs["playlist.mp4"])).stdout
    )
    done = cli(env, "run", "convert", "--profile", "carol", imported["file_id"], "--json")
    assert done.returncode == 2
    assert (
        done.stderr.strip() == "error: playlist.mp4: is an HLS playlist, not a media file; refused"
    )


def test_generate_srt_and_transcribe_from_the_command_line(env: dict[str, str], jfk: Path) -> None:
    imported = json.loads(cli(env, "import", "--profile", "carol", str(jfk)).stdout)
    done = cli(env, "run", "generate-srt", "--profile", "carol", imported["file_id"], "--vtt",
               "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "Americans" in result["content"] and result["vtt_file_id"]
    done = cli(env, "run", "transcribe", "--profile", "carol", imported["file_id"], "--json")
    assert done.returncode == 0, done.stderr
    assert "ask not what your country" in json.loads(done.stdout)["text"]


def test_fix_srt_from_the_command_line(
    env: dict[str, str], llm_server: LLMServer, tmp_path: Path
) -> None:
    llm_env = {k: v for k, v in os.environ.items() if k.startswith("MEDIAFLOWS_LLM__")}
    env = {**env, **llm_env}
    path = tmp_path / "talk.srt"
    path.write_bytes(messy_srt())
    imported = json.loads(cli(env, "import", "--profile", "carol", str(path)).stdout)
    model = json.loads(llm_env["MEDIAFLOWS_LLM__MODELS"])[1]
    done = cli(env, "run", "fix-srt", "--profile", "carol", imported["file_id"], "--model", model,
               "--sys-msg", "Keep it short.", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "<i>I did not receive the letter.</i>" in result["content"]
    assert result["fix"]["model"] == model and result["fix"]["changed"] == 6
    assert "Keep it short." in llm_server.requests[0].body
    done = cli(env, "run", "fix-srt", "--profile", "carol", imported["file_id"], "--model",
               "nope", "--json")  # fmt: skip
    assert done.returncode == 2 and "not configured" in done.stderr
    llm_server.set_mode("401")
    done = cli(env, "run", "fix-srt", "--profile", "carol", imported["file_id"], "--json")
    assert done.returncode == 3 and "API key was refused" in done.stderr
    assert LLM_TEST_KEY not in done.stderr + done.stdout
