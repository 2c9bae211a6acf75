"""fix_srt on a 600-cue SRT against the loopback OpenAI-compatible server with a fixed latency.

Prints: wall time ÷ ideal, where ideal = ceil(chunks ÷ llm limit) × latency (every request
takes ``latency`` and ``limit`` run at once); goal ≤ 1.2. Each timed run uses a fresh store and
refreshes Prefect's cache, so that every chunk really goes to the server.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import tempfile
import time
from pathlib import Path

from bench.common import bench_home, median


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cues", type=int, default=600)
    parser.add_argument("--chunk", type=int, default=30, help="cues per request")
    parser.add_argument("--limit", type=int, default=4, help="MEDIAFLOWS_ORCHESTRATION__LLM_LIMIT")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per request")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from tests.llm_server import RunningServer
    from tests.srt_samples import long_srt

    with RunningServer() as server, bench_home(), tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            {
                "MEDIAFLOWS_LLM__BASE_URL": server.base_url,
                "MEDIAFLOWS_LLM__MODELS": '["bench-model"]',
                "MEDIAFLOWS_LLM__CHUNK_CUES": str(args.chunk),
                "MEDIAFLOWS_ORCHESTRATION__LLM_LIMIT": str(args.limit),
            }
        )
        from deployments.setup import ensure_concurrency_limits
        from flows.fix_srt import fix_srt
        from mediaflows.settings import get_settings
        from mediaflows.store import ProfileStore

        get_settings.cache_clear()
        if not os.environ.get("NOLIMIT"):  # diagnosis: without the server-side tag limit
            ensure_concurrency_limits(get_settings())
        src = Path(tmp) / "long.srt"
        src.write_bytes(long_srt(args.cues))

        def run(n: int) -> float:
            os.environ["MEDIAFLOWS_STORE__URL"] = str(Path(tmp) / f"store-{n}")
            get_settings.cache_clear()
            file = ProfileStore.from_settings().import_file("bench", src)
            server.reset()
            server.set_mode("ok", latency_s=args.latency)
            start, wall_start = time.perf_counter(), time.time()
            result = asyncio.run(fix_srt(profile="bench", file_id=file.id))
            elapsed = time.perf_counter() - start
            starts = sorted(r.at - wall_start for r in server.requests)
            if starts:
                rounded = [round(t, 2) for t in starts]
                print(f"  run {n}: first request at {starts[0]:.2f} s, last at "
                      f"{starts[-1]:.2f} s, done at {elapsed:.2f} s; starts {rounded}")  # fmt: skip
            assert not result.cached and result.fix is not None
            assert result.fix.cues == args.cues and result.fix.changed > 0
            assert server.max_in_flight <= args.limit
            return elapsed

        run(0)  # warm-up: imports, server connection, task registration
        chunks = math.ceil(args.cues / args.chunk)
        ideal = math.ceil(chunks / args.limit) * args.latency
        walls = [run(n) for n in range(1, args.repeat + 1)]
        wall = median(walls)
        print(f"{args.cues} cues, {chunks} chunks of {args.chunk}, llm limit {args.limit}, "
              f"{args.latency:g} s per request")  # fmt: skip
        print(f"ideal (ceil(chunks / limit) x latency): {ideal:.2f} s")
        print(f"fix_srt flow: {wall:.2f} s (median of {args.repeat}: "
              f"{', '.join(f'{w:.2f}' for w in walls)})")  # fmt: skip
        print(f"wall / ideal: {wall / ideal:.3f}x  (goal <= 1.2)")


if __name__ == "__main__":
    main()
