"""convert flow vs plain ffmpeg on the same file, in one run.

Prints: remux flow ÷ `ffmpeg -c copy` (goal ≤ 1.10 once warm) and transcode ÷ remux.
Each flow run uses a fresh store so that it really converts (a second run on the same store would
be served from the store without ffmpeg).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.common import bench_home, median, timed
from tests.media_factory import ffmpeg


def make_source(path: Path, seconds: int) -> Path:
    """A 720p30 H.264/AAC test pattern with a tone, ``seconds`` long."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
           "-f", "lavfi", "-i", f"sine=frequency=300:sample_rate=48000:duration={seconds}",
           "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "6M", "-c:a", "aac",
           str(path))  # fmt: skip
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=300, help="length of the test video")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with bench_home() as home, tempfile.TemporaryDirectory() as tmp:
        import os

        from flows.convert import convert
        from mediaflows.models import ConvertRequest
        from mediaflows.settings import get_settings
        from mediaflows.store import ProfileStore

        src = make_source(Path(tmp) / "src.mkv", args.seconds)
        size_mb = src.stat().st_size / 1e6
        counter = iter(range(10**6))

        def plain_copy() -> None:
            """The direct ffmpeg call the flow's remux is measured against."""
            ffmpeg("-i", str(src), "-c", "copy", "-movflags", "+faststart",
                   str(Path(tmp) / "plain.mp4"))  # fmt: skip

        def flow_run(request: ConvertRequest) -> float:
            """Import into a fresh store (untimed), then time the flow alone."""
            os.environ["MEDIAFLOWS_STORE__URL"] = str(home / f"store-{next(counter)}")
            get_settings.cache_clear()
            file = ProfileStore.from_settings().import_file("bench", src)
            start = time.perf_counter()
            result = asyncio.run(convert(profile="bench", file_id=file.id, request=request))
            elapsed = time.perf_counter() - start
            assert not result.cached
            return elapsed

        # Warm up: imports, ffmpeg version probe, server connection, page cache.
        plain_copy()
        flow_run(ConvertRequest(codec="copy"))

        plain = median(timed(plain_copy, args.repeat))
        remux = median([flow_run(ConvertRequest(codec="copy")) for _ in range(args.repeat)])
        transcode = flow_run(ConvertRequest(codec="transcode", preset="ultrafast"))
        print(f"source: {args.seconds} s 1280x720 H.264/AAC MKV, {size_mb:.0f} MB")
        print(f"plain ffmpeg -c copy +faststart: {plain:.2f} s (median of {args.repeat})")
        print(f"convert flow, remux:             {remux:.2f} s (median of {args.repeat})")
        print(f"convert flow, transcode:         {transcode:.2f} s (ultrafast)")
        print(f"remux flow / plain ffmpeg:       {remux / plain:.2f}x  (goal <= 1.10)")
        print(f"transcode / remux:               {transcode / remux:.2f}x")


if __name__ == "__main__":
    main()
