"""fix_srt, or translate_srt (``--to de,fr``), on a 600-cue SRT against the loopback
OpenAI-compatible server with a fixed latency.

Prints: wall time ÷ ideal, where ideal = ceil(requests ÷ llm limit) × latency (every request
takes ``latency`` and ``limit`` run at once; requests = chunks × target languages, plus the
condense requests a translation makes); goal ≤ 1.2. With ``--verbose`` the server's
translations run ~30 % long (as German does), so that most chunks need a condense request:
requests ÷ (chunks × languages) is printed too (1 without condensing, at most 2 with).
With ``--serial`` the server answers one request at a time (a single-slot llama.cpp or Ollama):
ideal = requests × latency, goal ≤ 1.15
with the default settings (no request may time out in the server's queue). Each timed run uses a
fresh store and a fresh model name, so that every chunk really goes to the server.
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
    parser.add_argument("--serial", action="store_true", help="a single-slot server")
    parser.add_argument("--to", default="", help="translate_srt into these languages (de,fr)")
    parser.add_argument("--verbose", action="store_true", help="translations ~30 %% too long")
    args = parser.parse_args(argv)
    targets = tuple(t for t in args.to.split(",") if t)

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
        from flows.translate_srt import translate_srt
        from mediaflows.models import TranslateSrtRequest
        from mediaflows.settings import get_settings
        from mediaflows.store import ProfileStore

        get_settings.cache_clear()
        if not os.environ.get("NOLIMIT"):  # diagnosis: without the server-side tag limit
            ensure_concurrency_limits(get_settings())
        src = Path(tmp) / "long.srt"
        src.write_bytes(long_srt(args.cues))

        def run(n: int) -> tuple[float, int]:
            os.environ["MEDIAFLOWS_STORE__URL"] = str(Path(tmp) / f"store-{n}")
            os.environ["MEDIAFLOWS_LLM__MODELS"] = f'["bench-model-{n}-{time.time_ns()}"]'

            get_settings.cache_clear()
            file = ProfileStore.from_settings().import_file("bench", src)
            server.reset()
            mode = "verbose" if args.verbose else "ok"
            server.set_mode(mode, latency_s=args.latency if n else 0.0, serial=args.serial)
            start, wall_start = time.perf_counter(), time.time()
            if targets:
                request = TranslateSrtRequest(target_languages=targets)
                done = asyncio.run(translate_srt(profile="bench", file_id=file.id, request=request))
                elapsed = time.perf_counter() - start
                assert not done.cached and len(done.translations) == len(targets)
                reports = [t.report for t in done.translations if t.report is not None]
                assert all(r.cues == args.cues and not r.untranslated for r in reports)
                retries = sum(r.retries for r in reports)
                for r in reports:
                    speed = r.reading
                    print(f"  run {n}: {r.language}: too fast {speed.share_too_fast_before:.0%} "
                          f"of cues before condensing, {speed.share_too_fast:.0%} after; "
                          f"{speed.chars_over_budget_before} characters over budget "
                          f"before, {speed.chars_over_budget} after")  # fmt: skip
            else:
                result = asyncio.run(fix_srt(profile="bench", file_id=file.id))
                elapsed = time.perf_counter() - start
                assert not result.cached and result.fix is not None
                assert result.fix.cues == args.cues and result.fix.changed > 0
                retries = result.fix.retries
            starts = sorted(r.at - wall_start for r in server.requests)
            if starts:
                rounded = [round(t, 2) for t in starts]
                print(f"  run {n}: first request at {starts[0]:.2f} s, last at "
                      f"{starts[-1]:.2f} s, done at {elapsed:.2f} s; starts {rounded}")  # fmt: skip
            assert server.max_in_flight <= args.limit
            assert server.abandoned == 0, f"{server.abandoned} requests abandoned"
            print(f"  run {n}: {len(server.requests)} requests, at most {server.max_in_flight} "
                  f"in flight, {retries} retries")  # fmt: skip
            return elapsed, len(server.requests)

        run(0)  # warm-up (no latency): imports, server connection, task registration
        chunks = math.ceil(args.cues / args.chunk)
        asked = chunks * max(len(targets), 1)
        goal = 1.15 if args.serial else 1.2
        measured = [run(n) for n in range(1, args.repeat + 1)]
        walls = [w for w, _ in measured]
        wall = median(walls)
        requests = max(r for _, r in measured)  # the same every run (fresh model, no cache)
        rounds = requests if args.serial else math.ceil(requests / args.limit)
        ideal = rounds * args.latency
        kind = "a single-slot server" if args.serial else "a parallel server"
        operation = f"translate_srt to {','.join(targets)}" if targets else "fix_srt"
        print(f"{operation}: {args.cues} cues, {chunks} chunks of {args.chunk}, "
              f"{requests} requests, llm limit {args.limit}, {args.latency:g} s per request, "
              f"{kind}")  # fmt: skip
        print(f"ideal ({'requests' if args.serial else 'ceil(requests / limit)'} x latency): "
              f"{ideal:.2f} s")  # fmt: skip
        print(f"flow: {wall:.2f} s (median of {args.repeat}: "
              f"{', '.join(f'{w:.2f}' for w in walls)})")  # fmt: skip
        print(f"requests / (chunks x languages): {requests / asked:.2f}")
        print(f"wall / ideal: {wall / ideal:.3f}x  (goal <= {goal})")


if __name__ == "__main__":
    main()
