"""A long file of real speech (the sonnets and JFK of tests/data joined with pauses, in varying
order, to ``--minutes``): faster-whisper called directly on the whole audio, against the
``transcribe`` flow (windows as cached tasks) run by ``mediaflows run`` against the embedded
server; then the flow killed (kill -9, with its ffmpeg) at 60 % of its uninterrupted time and
run again.

Then, through the deployment (``prefect deploy --all``, the ``gpu`` limit at 2), the same kind
of file on one warm worker and on two, each model run on one CPU thread
(``MEDIAFLOWS_WHISPER__CPU_THREADS=1``): the windows spread over the workers (goal: two ≥ 1.6×
one), and each worker's peak RSS (goal ≤ 1 GB).

Prints wall times, peak RSS of each process, WER against what was said, and the ratios: flow ÷
direct, re-run ÷ uninterrupted (goal ≤ 0.45), peak RSS of the flow's process (goal ≤ 1 GB).
Each part runs in a process of its own (its peak RSS is its own).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import bench_home, deploy_here

BIN = Path(sys.executable).parent
PARTS = ["sonnet1", "sonnet2", "sonnet3", "jfk"]

_DIRECT = """
import resource, sys, time, json
from mediaflows.media.audio import decode_audio
from mediaflows.settings import get_settings
from mediaflows.speech.whisper import load_model, model_path
s = get_settings()
model = load_model(model_path("tiny.en", s), s.whisper)
started = time.perf_counter()
audio = decode_audio(__import__("pathlib").Path(sys.argv[1]), "long")
segments, _ = model.transcribe(audio, language="en", beam_size=5, vad_filter=True,
                               word_timestamps=True, condition_on_previous_text=False)
text = " ".join(x.text.strip() for x in segments)
print(json.dumps({"wall_s": time.perf_counter() - started, "text": text,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_long(directory: Path, minutes: float, seed: int = 1) -> tuple[Path, str]:
    """Parts in shuffled rounds until ``minutes`` are reached."""
    from tests.media_factory import join_real_speech

    rng = random.Random(seed)
    order: list[str] = []
    while len(order) * 45 < minutes * 60:  # each part ~53 s (jfk 11 s) with its pause
        round_ = PARTS[:]
        rng.shuffle(round_)
        order += round_
    return join_real_speech(directory / "long.flac", order, pause_s=1.5)


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall s, peak RSS MB (the process and its waited children) and stdout of ``args``."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak (with its children's)
    wall = time.perf_counter() - started
    assert os.waitstatus_to_exitcode(status) == 0, f"{args[:3]} failed"
    return wall, usage.ru_maxrss / 1024, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--kill-at", type=float, default=0.6)
    parser.add_argument(
        "--no-workers",
        dest="workers",
        action="store_false",
        help="skip the one-worker / two-worker part",
    )
    options = parser.parse_args(argv)
    from tests.wer import wer

    with tempfile.TemporaryDirectory(prefix="long-bench-") as tmp, bench_home():
        path, said = make_long(Path(tmp), options.minutes)
        env = {**os.environ}
        direct = json.loads(_run([sys.executable, "-c", _DIRECT, str(path)], env)[2])
        print(f"direct faster-whisper: {direct['wall_s']:.0f} s, peak RSS "
              f"{direct['rss_mb']:.0f} MB, WER {wer(said, direct['text']):.3f}")  # fmt: skip
        mf = str(BIN / "mediaflows")
        imported = json.loads(_run([mf, "import", "--profile", "bench", str(path)], env)[2])
        run = [mf, "run", "transcribe", "--profile", "bench", imported["file_id"],
               "--language", "en", "--json"]  # fmt: skip
        flow_wall, flow_rss, out = _run(run, env)  # fresh: PREFECT_TASKS_REFRESH_CACHE
        text = json.loads(out.strip().splitlines()[-1])["text"]
        print(f"flow, one process: {flow_wall:.0f} s ({flow_wall / direct['wall_s']:.2f}× "
              f"direct), peak RSS {flow_rss:.0f} MB, WER {wer(said, text):.3f}")  # fmt: skip

        # Killed at 60 % and run again, from the windows' cache (no refresh from here on).
        env.pop("PREFECT_TASKS_REFRESH_CACHE", None)
        other = Path(tmp) / "other.flac"  # other content: nothing of the first run's cache
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path), "-af",
                        "apad=pad_dur=0.5", str(other)], check=True)  # fmt: skip
        imported = json.loads(_run([mf, "import", "--profile", "bench", str(other)], env)[2])
        run[5] = imported["file_id"]
        proc = subprocess.Popen(run, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
        time.sleep(options.kill_at * flow_wall)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rerun_wall, _, out = _run(run, env)
        print(f"killed at {options.kill_at:.0%} ({options.kill_at * flow_wall:.0f} s); the re-run "
              f"took {rerun_wall:.0f} s = {rerun_wall / flow_wall:.2f} of the uninterrupted "
              f"run (goal ≤ 0.45)")  # fmt: skip
        spread = _on_workers(Path(tmp), path, said) if options.workers else {}
        print(json.dumps({**spread, "minutes": options.minutes,
                          "direct_s": round(direct["wall_s"], 1),
                          "flow_s": round(flow_wall, 1), "rerun_s": round(rerun_wall, 1),
                          "rerun_ratio": round(rerun_wall / flow_wall, 3),
                          "flow_peak_rss_mb": round(flow_rss), "direct_peak_rss_mb":
                          round(direct["rss_mb"])}))  # fmt: skip


_ONE_WINDOW = """
import sys, time
from pathlib import Path
from mediaflows.media.audio import decode_span
from mediaflows.models import TranscribeRequest
from mediaflows.speech.whisper import transcribe
audio = decode_span(Path(sys.argv[1]), "long", float(sys.argv[2]), 300.0)
transcribe(audio, TranscribeRequest(language="en"))
"""


def _ceiling(path: Path) -> float:
    """What this machine allows two workers: two 300 s windows heard at once by two processes
    of one CPU thread each, against one alone (2 × alone ÷ together)."""
    env = {**os.environ, "MEDIAFLOWS_WHISPER__CPU_THREADS": "1"}
    args = [sys.executable, "-c", _ONE_WINDOW, str(path)]
    started = time.perf_counter()
    subprocess.run([*args, "0"], env=env, check=True, capture_output=True)
    alone = time.perf_counter() - started
    started = time.perf_counter()
    both = [subprocess.Popen([*args, at], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for at in ("0", "300")]  # fmt: skip
    assert all(p.wait() == 0 for p in both)
    together = time.perf_counter() - started
    print(f"the machine: one 300 s window alone {alone:.1f} s, two at once {together:.1f} s: "
          f"two single-thread workers can be at most {2 * alone / together:.2f}x one")  # fmt: skip
    return 2 * alone / together


def _start_worker(name: str, log: Path) -> subprocess.Popen[bytes]:
    from tests.prefect_api import worker_online

    args = [str(BIN / "mediaflows"), "worker", "--name", name, "--limit", "2"]
    with log.open("w") as out:
        proc = subprocess.Popen(args, env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not worker_online("mediaflows-process", name):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.3)
    return proc


def _stop_worker(proc: subprocess.Popen[bytes]) -> float:
    """Stop it; its peak RSS in MB."""
    proc.terminate()
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_maxrss / 1024


def _on_workers(tmp: Path, path: Path, said: str) -> dict[str, float]:
    """The file through the deployment on one warm worker, then two (one CPU thread each)."""
    from deployments import client
    from mediaflows.store import ProfileStore
    from tests.wer import wer

    os.environ.pop("PREFECT_TASKS_REFRESH_CACHE", None)  # each file is new content anyway
    os.environ["MEDIAFLOWS_ORCHESTRATION__GPU_LIMIT"] = "2"
    os.environ["MEDIAFLOWS_WHISPER__CPU_THREADS"] = "1"
    deploy_here()
    store = ProfileStore.from_settings()
    walls: dict[int, float] = {}
    measured: dict[str, float] = {}
    for count in (1, 2):
        copy = tmp / f"workers-{count}.flac"  # new content: nothing from a cache
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path), "-af",
                        f"apad=pad_dur={count}", str(copy)], check=True)  # fmt: skip
        file = store.import_file("bench", copy)
        workers = [_start_worker(f"long-{count}-{i}", tmp / f"w{count}-{i}.log")
                   for i in range(count)]  # fmt: skip
        started = time.perf_counter()
        run_id = client.submit("transcribe", "bench", file.id, {"language": "en"},
                               via="deployment")  # fmt: skip
        result = client.wait(run_id, timeout=7200, poll_s=0.5)
        walls[count] = time.perf_counter() - started
        rss = max(_stop_worker(w) for w in workers)
        print(f"{count} warm worker(s), 1 CPU thread each: {walls[count]:.0f} s, WER "
              f"{wer(said, result.text):.3f}, peak RSS per worker {rss:.0f} MB "
              f"(goal <= 1024)")  # fmt: skip
        measured[f"workers_{count}_s"] = round(walls[count], 1)
        measured[f"workers_{count}_peak_rss_mb"] = round(rss)
    print(f"two workers against one: {walls[1] / walls[2]:.2f}x faster (goal >= 1.6)")
    measured["two_over_one"] = round(walls[1] / walls[2], 3)
    measured["machine_ceiling"] = round(_ceiling(path), 3)
    return measured


if __name__ == "__main__":
    main()
