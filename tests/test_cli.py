"""The mediaflows command, run as a user runs it (a subprocess), against the test server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mediaflows import media
from tests.asr_server import ASRServer
from tests.conftest import ASR_TEST_KEY, LLM_TEST_KEY, without_prefect_auth
from tests.llm_server import LLMServer
from tests.runs import MEDIAFLOWS, cli
from tests.srt_samples import TRANSLATION_CUES, messy_srt


@pytest.fixture
def env(session_env: dict[str, str], store_url: str) -> dict[str, str]:
    extra = {"MEDIAFLOWS_STORE__URL": store_url}
    if store_url.startswith("s3://"):
        extra["MEDIAFLOWS_STORE__S3_ENDPOINT_URL"] = os.environ["MEDIAFLOWS_STORE__S3_ENDPOINT_URL"]
    return {**session_env, **extra}


@pytest.fixture
def local_env(session_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The session's settings with a fresh local store: for the commands that run an operation.
    Their subject is the command (its options, output and exit codes); each operation runs on
    both store backends in tests/flows, and the commands that read and write the store
    themselves (import, get, errors) run here on both."""
    return {**session_env, "MEDIAFLOWS_STORE__URL": str(tmp_path / "store")}


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


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("untimed.ttml", b'<?xml version="1.0"?><tt xmlns="http://www.w3.org/ns/ttml" '
         b'xml:lang="en"><body><div><p>Hello</p></div></body></tt>',
         "untimed.ttml: no timed cues (a TTML document needs begin and end times)"),
        ("notes.vtt", b"shopping list\nmilk, bread\n", "notes.vtt: the content is not a vtt "
         "file we can read"),
    ],
)  # fmt: skip
def test_a_subtitle_file_that_cannot_be_read_exits_2_with_one_line(
    local_env: dict[str, str], tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    imported = json.loads(cli(local_env, "import", "--profile", "carol", str(path)).stdout)
    assert imported["kind"] == "subtitle"
    done = cli(local_env, "run", "fix-srt", "--profile", "carol", imported["file_id"], "--json")
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    listed = cli(local_env, "list", "--profile", "carol").stdout.strip().splitlines()
    assert len(listed) == 1  # nothing stored


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


def test_generate_srt_and_transcribe_from_the_command_line(
    local_env: dict[str, str], jfk: Path
) -> None:
    env = local_env
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
    local_env: dict[str, str], llm_server: LLMServer, tmp_path: Path
) -> None:
    env = local_env
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


def test_sigterm_mid_convert_kills_ffmpeg_and_removes_work_files(
    session_env: dict[str, str], tmp_path: Path
) -> None:
    """`kill PID` (SIGTERM to the mediaflows process only, as `docker stop` sends it) while
    ffmpeg transcodes: the command exits 143, ffmpeg is gone, the run's work directory removed,
    nothing stored, and the flow run is not left Running."""
    import signal
    import time

    from tests.deployments.test_worker import _processes_mentioning
    from tests.media_factory import VIDEOS, make_video

    env = {**session_env, "MEDIAFLOWS_STORE__URL": str(tmp_path / "store")}
    video = make_video(tmp_path / "long.avi", VIDEOS["mpeg4_mp3.avi"][1], 60.0, "1280x720")
    imported = cli(env, "import", "--profile", "tess", str(video))
    assert imported.returncode == 0, imported.stderr
    file_id = json.loads(imported.stdout)["file_id"]
    runs = Path(session_env["MEDIAFLOWS_HOME"]) / "work" / "runs"
    before = set(runs.iterdir()) if runs.exists() else set()
    proc = subprocess.Popen(
        [MEDIAFLOWS, "run", "convert", "--profile", "tess", file_id, "--preset", "slower"],
        env=without_prefect_auth({**os.environ, **env}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:  # until ffmpeg transcodes in the run's work directory
        new = set(runs.iterdir()) - before if runs.exists() else set()
        busy = [w for w in new if _processes_mentioning(f"{w}/")]
        if busy and any(p.name.endswith(".mp4") for p in busy[0].rglob("*")):
            break
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
        time.sleep(0.3)
    workspace = busy[0]
    proc.send_signal(signal.SIGTERM)  # to the mediaflows process alone, not its group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-3000:]
    time.sleep(0.5)
    assert _processes_mentioning(f"{workspace}/") == []
    assert not workspace.exists()
    listed = cli(env, "list", "--profile", "tess")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [file_id]
    from uuid import UUID

    from tests import prefect_api

    run = prefect_api.flow_run(UUID(workspace.name))  # the work directory is named after it
    assert run.state is not None and run.state.is_final(), run.state


def test_sigterm_mid_fix_srt_stops_sending_and_ends_requests_in_flight(
    session_env: dict[str, str], llm_server: LLMServer, tmp_path: Path
) -> None:
    """A single-slot server, 2 s a request: SIGTERM while chunks are in flight. The command
    exits 143 within seconds, the requests in flight are closed (the server sees their clients
    go) and no chunk is sent after the signal."""
    import signal
    import time

    from tests.srt_samples import long_srt

    llm_env = {k: v for k, v in os.environ.items() if k.startswith("MEDIAFLOWS_LLM__")}
    env = {**session_env, **llm_env, "MEDIAFLOWS_LLM__TIMEOUT_S": "30"}
    env["MEDIAFLOWS_STORE__URL"] = str(tmp_path / "store")  # the store is not the subject
    path = tmp_path / "long.srt"
    path.write_bytes(long_srt(200))
    imported = json.loads(cli(env, "import", "--profile", "carol", str(path)).stdout)
    llm_server.set_mode("ok", latency_s=2, serial=True)
    proc = subprocess.Popen(
        [MEDIAFLOWS, "run", "fix-srt", "--profile", "carol", imported["file_id"]],
        env=without_prefect_auth({**os.environ, **env}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(llm_server.requests) < 2:  # chunks in flight
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    signalled, sent = time.monotonic(), len(llm_server.requests)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-3000:]
    assert time.monotonic() - signalled < 10
    time.sleep(1)
    assert len(llm_server.requests) == sent  # nothing new after the signal
    assert llm_server.abandoned >= 1  # the requests in flight were closed, not waited for


def test_translate_srt_from_the_command_line(
    local_env: dict[str, str], llm_server: LLMServer, tmp_path: Path
) -> None:
    env = local_env
    llm_env = {k: v for k, v in os.environ.items() if k.startswith("MEDIAFLOWS_LLM__")}
    env = {**env, **llm_env}
    path = tmp_path / "talk.srt"
    path.write_bytes(messy_srt(TRANSLATION_CUES))
    imported = json.loads(cli(env, "import", "--profile", "carol", str(path)).stdout)
    done = cli(env, "run", "translate-srt", "--profile", "carol", imported["file_id"], "--to",
               "de", "--to", "fr", "--bilingual", "--glossary", "Prefect", "--formats",
               "ass,ttml", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [(t["language"], bool(t["file_id"])) for t in result["translations"]] == [
        ("de", True),
        ("fr", True),
    ]
    assert [sorted(t["files"]) for t in result["translations"]] == [["ass", "ttml"]] * 2
    assert (
        "<i>I did not receive the letter.</i>\r\n<i>Ich habe nicht bekommen den Brief.</i>"
        in (result["translations"][0]["content"])
    )
    for args, message in [
        (["--to", "xx"], "unknown language 'xx'"),
        ([], "target_languages"),
        (["--to", "de", "--source-language", "de"], "is the source language"),
    ]:
        requests = len(llm_server.requests)
        done = cli(env, "run", "translate-srt", "--profile", "carol", imported["file_id"], *args,
                   "--json")  # fmt: skip
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], done.stderr
        assert len(llm_server.requests) == requests


def test_generate_srt_by_a_provider_from_the_command_line(
    local_env: dict[str, str], asr_server: ASRServer, jfk: Path
) -> None:
    env = local_env
    env = {**env, "MEDIAFLOWS_ASR__ENDPOINTS": os.environ["MEDIAFLOWS_ASR__ENDPOINTS"]}
    imported = json.loads(cli(env, "import", "--profile", "carol", str(jfk)).stdout)
    done = cli(env, "run", "generate-srt", "--profile", "carol", imported["file_id"],
               "--provider", "loop", "--language", "en", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "Americans" in result["content"] and result["asr"]["provider"] == "loop"
    assert len(asr_server.uploads) == 1
    asr_server.set_mode("401")
    done = cli(env, "run", "transcribe", "--profile", "carol", imported["file_id"],
               "--provider", "loop", "--json")  # fmt: skip
    assert done.returncode == 3 and "API key was refused" in done.stderr
    assert ASR_TEST_KEY not in done.stderr + done.stdout
    done = cli(env, "run", "transcribe", "--profile", "carol", imported["file_id"],
               "--provider", "nope", "--json")  # fmt: skip
    assert done.returncode == 2 and "provider 'nope' is not configured" in done.stderr
