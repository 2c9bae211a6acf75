"""Batch fan-out cost: a batch of N children against N × the work of one child done directly.

For ``transcribe`` the work of a child is a direct faster-whisper call on its clip (model warm),
and the ``gpu`` limit gives 1 slot: ideal = N × work. For ``convert`` it is a plain
``ffmpeg -c copy`` of the clip, and the 2 cores give ideal = N × work ÷ 2.

Prints, for each N: batch wall, per-child overhead = (wall − ideal) ÷ N (goal ≤ 150 ms) and
throughput ÷ ideal = ideal ÷ wall (goal ≥ 0.9).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import bench_home
from tasks.prefect_adapter import state_of


def clips(directory: Path, n: int, op: str, seconds: float) -> list[Path]:
    """``n`` distinct clips: speech (MP3) for transcribe, H.264/AAC MKV for convert."""
    from bench.whisper_bench import make_speech_clip

    if op == "transcribe":
        base = make_speech_clip(directory, seconds)
    else:
        base = directory / "base.mkv"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
             f"testsrc2=size=320x240:rate=25:duration={seconds}", "-f", "lavfi", "-i",
             f"sine=frequency=440:duration={seconds}", "-shortest", "-c:v", "libx264",
             "-preset", "ultrafast", "-c:a", "aac", str(base)],
            check=True,
        )  # fmt: skip
    out = []
    for i in range(n):
        clip = directory / f"clip{i:04}{base.suffix}"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(base), "-c", "copy",
                        "-metadata", f"title=clip {i}", str(clip)], check=True)  # fmt: skip
        out.append(clip)
    return out


def direct_work(op: str, clip: Path, tmp: Path, repeat: int = 3) -> float:
    """Best wall time of one child's work done directly (no Prefect, no store)."""
    best = float("inf")
    if op == "transcribe":
        from mediaflows.models import TranscribeRequest
        from mediaflows.speech import whisper

        whisper.transcribe_file(clip, clip.name, TranscribeRequest())  # load the model
        for _ in range(repeat):
            start = time.perf_counter()
            whisper.transcribe_file(clip, clip.name, TranscribeRequest())
            best = min(best, time.perf_counter() - start)
    else:
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(clip), "-c",
                            "copy", "-movflags", "+faststart", str(tmp / "direct.mp4")],
                           check=True)  # fmt: skip
            best = min(best, time.perf_counter() - start)
    return best


def batch(op: str, paths: list[Path], profile: str, in_flight: int) -> float:
    from flows.batch import batch_convert, batch_transcribe
    from mediaflows.settings import get_settings
    from mediaflows.store import ProfileStore

    os.environ["MEDIAFLOWS_STORE__URL"] = tempfile.mkdtemp(prefix="mf-bench-store-")
    get_settings.cache_clear()
    store = ProfileStore.from_settings()
    ids = [store.import_file(profile, p).id for p in paths]
    flow = batch_transcribe if op == "transcribe" else batch_convert
    start = time.perf_counter()
    state = asyncio.run(state_of(flow, profile=profile, file_ids=ids, in_flight=in_flight))
    elapsed = time.perf_counter() - start
    assert state.is_completed(), state.message
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--op", choices=["transcribe", "convert"], default="transcribe")
    parser.add_argument("--sizes", default="10,100", help="comma-separated N (e.g. 10,100,500)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each clip")
    parser.add_argument("--in-flight", type=int, default=4)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    with bench_home(), tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        from deployments.setup import ensure_concurrency_limits

        ensure_concurrency_limits()
        paths = clips(tmp, max(sizes), args.op, args.seconds)
        work = direct_work(args.op, paths[0], tmp)
        slots = 1 if args.op == "transcribe" else 2
        batch(args.op, paths[:2], "warm", args.in_flight)  # imports, model, first runs
        print(f"{args.op}: {args.seconds:g} s clips, direct work {work * 1000:.0f} ms per child, "
              f"{slots} slot(s), {args.in_flight} children in flight")  # fmt: skip
        for n in sizes:
            wall = batch(args.op, paths[:n], f"n{n}", args.in_flight)
            ideal = n * work / slots
            print(f"N={n:4d}: batch {wall:7.1f} s, ideal {ideal:7.1f} s, per-child overhead "
                  f"{(wall - ideal) / n * 1000:6.0f} ms (goal <= 150), throughput / ideal "
                  f"{ideal / wall:.2f} (goal >= 0.9)")  # fmt: skip


if __name__ == "__main__":
    main()
