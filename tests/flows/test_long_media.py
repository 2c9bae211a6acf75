"""Long files in windows (the bundled model, real ffmpeg, a real Prefect server): each window a
cached task run, the result what one pass gives, a killed run resumed at the first window not
done. The file is real speech (sonnets and JFK joined with pauses, tests/data); windows of 30 s
stand for the minutes a film's are."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.generate_srt import generate_srt
from mediaflows.media.audio import decode_audio
from mediaflows.models import GenerateSrtRequest, SrtResult, TranscribeRequest
from mediaflows.settings import get_settings
from mediaflows.speech import transcribe_file, windows
from mediaflows.speech.whisper import load_model, model_path
from mediaflows.store import ProfileStore
from tests import prefect_api
from tests.conftest import without_prefect_auth
from tests.media_factory import join_real_speech
from tests.runs import MEDIAFLOWS, cli, run_flow, run_id_of, wait_for
from tests.subtitle_rules import parse, rule_violations
from tests.wer import wer

pytestmark = pytest.mark.slow

WINDOW_S = "30"


@pytest.fixture
def windowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Windows of 30 s, here and in the subprocesses given the returned environment."""
    monkeypatch.setenv("MEDIAFLOWS_WHISPER__WINDOW_S", WINDOW_S)
    get_settings.cache_clear()
    yield {"MEDIAFLOWS_WHISPER__WINDOW_S": WINDOW_S}
    get_settings.cache_clear()


def _duration(path: Path) -> float:
    args = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"]
    out = subprocess.run([*args, str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout)


def _one_pass(path: Path) -> str:
    """faster-whisper called directly on the whole audio (the options of a request's)."""
    settings = get_settings()
    model = load_model(model_path("tiny.en", settings), settings.whisper)
    segments, _ = model.transcribe(decode_audio(path, path.name), language="en", beam_size=5,
                                   vad_filter=True, word_timestamps=True,
                                   condition_on_previous_text=False)  # fmt: skip
    return " ".join(s.text.strip() for s in segments)


def _on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """``args`` with stderr on a pseudo-terminal: exit status, stdout, what the terminal got."""
    import pty

    controller, terminal = pty.openpty()
    proc = subprocess.Popen(args, env=without_prefect_auth(env), stdout=subprocess.PIPE,
                            stderr=terminal, text=True)  # fmt: skip
    os.close(terminal)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        shown += chunk
    out = proc.stdout.read() if proc.stdout else ""
    os.close(controller)
    return proc.wait(timeout=60), out, shown.decode(errors="replace")


def test_a_long_file_is_heard_window_by_window_as_one_pass_would(
    windowed: dict[str, str], local_store: ProfileStore, tmp_path: Path
) -> None:
    path, said = join_real_speech(tmp_path / "long.flac", ["sonnet2", "jfk", "sonnet1"])
    spans = windows.plan_spans(path, path.name, _duration(path))
    assert len(spans) >= 4 and spans[0].start == 0 and spans[-1].end is None
    source = local_store.import_file("wes", path)
    state = run_flow(generate_srt, "wes", source.id, GenerateSrtRequest(language="en"))
    assert state.is_completed(), state.message
    result: SrtResult = state.result()
    cues = parse(result.content)
    heard = " ".join(c.content.replace("\n", " ") for c in cues)
    # As good as one pass of faster-whisper over the whole file (its words, against what was said).
    assert wer(said, heard) <= wer(said, _one_pass(path)) + 0.005, heard
    # Nothing twice at a cut, times in order, the cue rules held.
    texts = [c.content for c in cues]
    assert all(a != b for a, b in itertools.pairwise(texts)), texts
    assert all(a.end <= b.start for a, b in itertools.pairwise(cues))
    assert rule_violations(result.content) == []
    runs = prefect_api.task_runs(run_id_of(state), expect=len(spans) + 1, named="transcribe_window",
                                 named_count=len(spans))  # fmt: skip
    names = sorted(r.name for r in runs if r.name.startswith("transcribe_window"))
    assert names == sorted(f"transcribe_window-{s.index}" for s in spans)
    assert [r.name for r in runs if r.name.startswith("plan_windows")]


def test_a_killed_run_goes_on_at_the_first_window_not_done(
    windowed: dict[str, str], session_env: dict[str, str], tmp_path: Path
) -> None:
    """kill -9 of the `mediaflows run` process (and its ffmpeg) once two windows are done: the
    run again answers those two from the cache, hears only the others, and its transcript is
    the one an uninterrupted pass makes."""
    env = {**session_env, **windowed, "MEDIAFLOWS_STORE__URL": str(tmp_path / "store")}
    path, _ = join_real_speech(tmp_path / "long.flac", ["sonnet3", "sonnet1", "jfk"])
    spans = windows.plan_spans(path, path.name, _duration(path))
    file_id = json.loads(cli(env, "import", "--profile", "zed", str(path)).stdout)["file_id"]
    args = [MEDIAFLOWS, "run", "transcribe", "--profile", "zed", file_id, "--language", "en"]
    killed = subprocess.Popen(args, env=without_prefect_auth({**os.environ, **env}),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip

    def windows_done() -> int:
        runs = prefect_api.flow_runs_named("transcribe", file_id)
        done = [
            t
            for r in runs
            for t in prefect_api.task_runs(r.id, expect=0, timeout=0)
            if t.name.startswith("transcribe_window") and t.state and t.state.is_completed()
        ]
        assert killed.poll() is None, killed.communicate()[1][-3000:]
        return len(done)

    wait_for(lambda: windows_done() >= 2, 300, "two windows done", every=0.5)
    done_at_kill = windows_done()
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=10)
    # Again, on a terminal: a progress bar on stderr, the JSON on stdout as without one.
    code, out, terminal = _on_terminal([*args, "--json"], {**os.environ, **env})
    assert code == 0, terminal[-3000:]
    assert f"window {len(spans)}/{len(spans)}" in terminal and "100% succeeded" in terminal
    rerun = max(prefect_api.flow_runs_named("transcribe", file_id), key=lambda r: r.created or 0)
    runs = prefect_api.task_runs(rerun.id, expect=len(spans) + 1, named="transcribe_window",
                                 named_count=len(spans))  # fmt: skip
    window_runs = [r for r in runs if r.name.startswith("transcribe_window")]
    cached = [r for r in window_runs if r.state and r.state.name == "Cached"]
    assert len(window_runs) == len(spans)
    assert len(cached) >= done_at_kill and len(cached) < len(spans), [
        (r.name, r.state.name if r.state else None) for r in window_runs
    ]
    stored = json.loads(out.strip().splitlines()[-1])
    uninterrupted = transcribe_file(path, path.name, TranscribeRequest(language="en"),
                                    expected_s=_duration(path))  # fmt: skip
    assert stored["text"] == uninterrupted.text
