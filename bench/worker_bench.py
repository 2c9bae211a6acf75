"""Runs through a deployment and a worker: Prefect's process worker (a new process per run)
against the warm worker (runs in its own process, the model loaded once).

Prints, per worker kind:

* submit → result latency of single ``generate_srt`` runs (``--runs`` ~6 s speech clips, one
  after another, each submitted to an idle running worker): p50 and p90, and p50 minus the
  direct faster-whisper time of the same clip in this process (goal for the warm worker:
  ≤ 1.5 s);
* a distributed ``batch_transcribe`` of ``--batch`` × ``--batch-seconds`` clips over two
  workers of that kind: throughput ÷ ideal, ideal = the clips' total direct model time ÷ the
  ``gpu`` slots (goal ≥ 0.85), and the model loads the workers logged.

Each run uses distinct files (nothing from a cache). The embedded server (SQLite) in a private
home; ``prefect deploy --all`` from the checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import bench_home, deploy_here

BIN = Path(sys.executable).parent


def _clips(directory: Path, n: int, seconds: float, tag: str, salt: int = 0) -> list[Path]:
    """``n`` different clips of the same speech (padded with a different silence each; another
    ``salt``, other clips)."""
    from bench.whisper_bench import make_speech_clip

    base = make_speech_clip(directory, seconds)
    out = []
    for i in range(n):
        clip = directory / f"{tag}-{i:03}.flac"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(base), "-af",
                        f"apad=pad_dur={0.05 * (i + 1) + 1.5 * salt:.2f}", str(clip)],
                       check=True)  # fmt: skip
        out.append(clip)
    return out


def _direct(clip: Path) -> float:
    """faster-whisper through mediaflows' own call, the model already loaded; wall seconds."""
    from mediaflows.models import TranscribeRequest
    from mediaflows.speech import whisper

    request = TranscribeRequest(language="en")
    whisper.transcribe_file(clip, clip.name, request)  # the model loaded, the file cached
    start = time.perf_counter()
    whisper.transcribe_file(clip, clip.name, request)
    return time.perf_counter() - start


class _Worker:
    def __init__(self, kind: str, name: str, limit: int, log: Path) -> None:
        from tests.prefect_api import worker_online

        args = [str(BIN / "mediaflows"), "worker", "--kind", kind, "--name", name,
                "--limit", str(limit)]  # fmt: skip
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(args, env=os.environ.copy(), stdout=out,
                                         stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 120
        while not worker_online("mediaflows-process", name):
            assert self.proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)

    def stop(self) -> int:
        """Stop it; the model loads its log shows (warm) or its runs' processes paid (process:
        one a run)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.log.read_text().count("loaded Whisper model")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kinds", default="process,warm")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--batch-seconds", type=float, default=30)
    parser.add_argument("--gpu-slots", type=int, default=1, help="the gpu limit")
    args = parser.parse_args(argv)

    with bench_home() as home, tempfile.TemporaryDirectory() as tmp:
        os.environ["MEDIAFLOWS_ORCHESTRATION__GPU_LIMIT"] = str(args.gpu_slots)
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "CRITICAL"
        from deployments import client
        from flows.batch import BATCHES
        from mediaflows.models import GenerateSrtRequest
        from mediaflows.store import ProfileStore

        deploy_here()
        store = ProfileStore.from_settings()
        request = GenerateSrtRequest(language="en")
        root = Path(tmp)
        for salt, kind in enumerate(args.kinds.split(",")):
            (root / f"single-{kind}").mkdir()
            clips = _clips(root / f"single-{kind}", args.runs, args.seconds, "s", salt)
            direct = statistics.median(_direct(c) for c in clips[:3])
            worker = _Worker(kind, f"bench-{kind}", 2, home / f"{kind}.log")
            latencies = []
            for clip in clips:
                file = store.import_file("bench", clip)
                start = time.perf_counter()
                run_id = client.submit("generate_srt", "bench", file.id, request,
                                       via="deployment")  # fmt: skip
                result = client.wait(run_id, timeout=600, poll_s=0.05)
                latencies.append(time.perf_counter() - start)
                assert not result.cached
            loads = worker.stop()
            p50 = statistics.median(latencies)
            p90 = statistics.quantiles(latencies, n=10)[-1]
            print(f"{kind} worker, {args.runs} generate_srt runs of ~{args.seconds:g} s speech: "
                  f"submit -> result p50 {p50:.2f} s, p90 {p90:.2f} s; direct model "
                  f"{direct:.2f} s; p50 - direct {p50 - direct:.2f} s (goal <= 1.5); model "
                  f"loads logged {loads}")  # fmt: skip

            batch_dir = root / f"batch-{kind}"
            batch_dir.mkdir()
            clips = _clips(batch_dir, args.batch, args.batch_seconds, "b", salt)
            ideal = sum(_direct(c) for c in clips) / args.gpu_slots
            ids = [store.import_file("bench", c).id for c in clips]
            workers = [_Worker(kind, f"bench-{kind}-{i}", 2, home / f"{kind}-b{i}.log")
                       for i in range(2)]  # fmt: skip
            start = time.perf_counter()
            # The batch runs here; its children are runs of the deployment, on the workers.
            result = asyncio.run(BATCHES["transcribe"](
                profile="bench", file_ids=ids, request={"language": "en"},
                mode="distributed", in_flight=4,
            ))  # fmt: skip
            wall = time.perf_counter() - start
            loads = sum(w.stop() for w in workers)
            print(f"{kind} workers x2, batch of {args.batch} x {args.batch_seconds:g} s: wall "
                  f"{wall:.1f} s, ideal (direct model time / {args.gpu_slots} gpu slots) "
                  f"{ideal:.1f} s, throughput / ideal {ideal / wall:.3f} (goal >= 0.85); "
                  f"{result.succeeded} of {result.total} done; "
                  f"model loads logged {loads}")  # fmt: skip


if __name__ == "__main__":
    main()
