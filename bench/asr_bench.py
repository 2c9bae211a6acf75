"""transcribe by a speech endpoint (``provider``) on a 10-minute file cut into pieces, against
the loopback OpenAI-compatible server (``tests/asr_server.py``) answering after a fixed latency
without running a model (its ``echo`` mode: only our side is measured).

Prints: wall time ÷ ideal, where ideal = decode + ceil(pieces ÷ asr limit) × latency (decode:
the same decoding, cutting and Opus encoding, timed on its own); goal ≤ 1.15. Each timed run
uses a fresh store and a fresh model name, so that every piece really goes to the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import tempfile
import time
from pathlib import Path

from bench.common import bench_home, median
from bench.whisper_bench import make_speech_clip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=600, help="length of the file")
    parser.add_argument("--piece", type=float, default=75, help="max_piece_s of the endpoint")
    parser.add_argument("--limit", type=int, default=4, help="MEDIAFLOWS_ORCHESTRATION__ASR_LIMIT")
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per request")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from tests.asr_server import RunningASRServer

    with RunningASRServer() as server, bench_home(), tempfile.TemporaryDirectory() as tmp:

        def endpoint(n: int) -> None:
            os.environ["MEDIAFLOWS_ASR__ENDPOINTS"] = json.dumps({"bench": {
                "base_url": server.base_url, "model": f"bench-{n}-{time.time_ns()}",
                "max_piece_s": args.piece}})  # fmt: skip

        endpoint(0)
        os.environ["MEDIAFLOWS_ORCHESTRATION__ASR_LIMIT"] = str(args.limit)
        from deployments.setup import ensure_concurrency_limits
        from flows.transcribe import transcribe
        from mediaflows.models import TranscribeRequest
        from mediaflows.settings import get_settings
        from mediaflows.speech import endpoint as asr
        from mediaflows.store import ProfileStore

        get_settings.cache_clear()
        ensure_concurrency_limits(get_settings())
        clip = make_speech_clip(Path(tmp), args.seconds)
        request = TranscribeRequest(provider="bench", language="en")

        def decode() -> tuple[float, int]:
            start = time.perf_counter()
            pieces = asr.cut_pieces(clip, clip.name, get_settings().asr.endpoint("bench"),
                                    Path(tempfile.mkdtemp(dir=tmp)))  # fmt: skip
            return time.perf_counter() - start, len(pieces)

        def run(n: int) -> float:
            endpoint(n)
            os.environ["MEDIAFLOWS_STORE__URL"] = str(Path(tmp) / f"store-{n}")
            get_settings.cache_clear()
            file = ProfileStore.from_settings().import_file("bench", clip)
            server.reset()
            server.set_mode("echo", latency_s=args.latency if n else 0.0)
            start = time.perf_counter()
            result = asyncio.run(transcribe(profile="bench", file_id=file.id, request=request))
            elapsed = time.perf_counter() - start
            assert not result.cached and result.asr.pieces == len(server.uploads)
            assert server.max_in_flight <= args.limit
            print(f"  run {n}: {len(server.uploads)} pieces, at most {server.max_in_flight} in "
                  f"flight, {elapsed:.2f} s")  # fmt: skip
            return elapsed

        run(0)  # warm-up (no latency): imports, server connection, task registration
        decode_s, pieces = min(decode() for _ in range(2))
        ideal = decode_s + math.ceil(pieces / args.limit) * args.latency
        walls = [run(n) for n in range(1, args.repeat + 1)]
        wall = median(walls)
        print(f"transcribe by a provider: {args.seconds:.0f} s of speech in {pieces} pieces "
              f"of <= {args.piece:g} s, asr limit {args.limit}, "
              f"{args.latency:g} s a request")  # fmt: skip
        print(f"ideal (decode {decode_s:.2f} s + ceil(pieces / limit) x latency): {ideal:.2f} s")
        print(f"flow: {wall:.2f} s (median of {args.repeat}: "
              f"{', '.join(f'{w:.2f}' for w in walls)})")  # fmt: skip
        print(f"wall / ideal: {wall / ideal:.3f}x  (goal <= 1.15)")


if __name__ == "__main__":
    main()
