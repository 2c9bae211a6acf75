"""transcribe by a speech endpoint (``provider``) on a 10-minute file cut into pieces, against
the loopback OpenAI-compatible server (``tests/asr_server.py``) answering after a fixed latency
without running a model (its ``echo`` mode: only our side is measured).

Prints: wall time ÷ ideal, where ideal = decode + ceil(pieces ÷ asr limit) × latency (decode:
the same decoding and Opus encoding, timed on their own; pieces: the requests the run made,
their sizes paced by :mod:`mediaflows.speech.pacing`); goal ≤ 1.15. Each timed run uses a
fresh store and a fresh model name, so that every piece really goes to the server.

``--realtime X``: a self-hosted server instead, one request at a time at X times realtime
(``timeout_s`` 600 as configured by default): ideal = audio ÷ X; goal wall ÷ ideal ≤ 1.2 with
no piece sent twice (issue 23's benchmark: ``--realtime 2``).
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
    parser.add_argument("--realtime", type=float, default=None,
                        help="a one-at-a-time server at this many times realtime")  # fmt: skip
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
        from mediaflows.media.audio import SAMPLE_RATE
        from mediaflows.models import TranscribeRequest
        from mediaflows.settings import get_settings
        from mediaflows.speech import pacing
        from mediaflows.speech.endpoint import encode_piece
        from mediaflows.store import ProfileStore

        get_settings.cache_clear()
        ensure_concurrency_limits(get_settings())
        clip = make_speech_clip(Path(tmp), args.seconds)
        request = TranscribeRequest(provider="bench", language="en")

        def decode() -> float:
            """Decoding once and encoding every piece (of ``--piece`` s), one after another."""
            start = time.perf_counter()
            work = Path(tempfile.mkdtemp(dir=tmp))
            audio = pacing.decode_once(clip, clip.name, work)
            endpoint = get_settings().asr.endpoint("bench")
            step = int(args.piece * SAMPLE_RATE)
            for at in range(0, audio.samples, step):
                span = pacing.Span(at, min(at + step, audio.samples))
                encode_piece(audio.read(span), at / SAMPLE_RATE, endpoint, work)
            return time.perf_counter() - start

        def run(n: int) -> float:
            endpoint(n)
            os.environ["MEDIAFLOWS_STORE__URL"] = str(Path(tmp) / f"store-{n}")
            get_settings.cache_clear()
            file = ProfileStore.from_settings().import_file("bench", clip)
            server.reset()
            server.set_mode("echo", latency_s=args.latency if n and not args.realtime else 0.0)
            if n and args.realtime:
                server.realtime_x, server.one_at_a_time = args.realtime, True
            start = time.perf_counter()
            result = asyncio.run(transcribe(profile="bench", file_id=file.id, request=request))
            elapsed = time.perf_counter() - start
            answered = [u for u in server.uploads if u.outcome == "echo"]
            assert not result.cached and result.asr.pieces == len(answered)
            assert server.max_in_flight <= args.limit
            digests = [u.digest for u in server.uploads]
            resent[n] = len(digests) - len(set(digests))
            split[n] = len(server.uploads) - len(answered)
            sizes = sorted(round(u.duration) for u in answered)
            print(f"  run {n}: {len(answered)} pieces ({sizes[0]}..{sizes[-1]} s), at most "
                  f"{server.max_in_flight} in flight, {elapsed:.2f} s, sent twice whole "
                  f"{resent[n]}, timed out {split[n]}")  # fmt: skip
            pieces[n] = len(answered)
            return elapsed

        pieces: dict[int, int] = {}
        resent: dict[int, int] = {}
        split: dict[int, int] = {}
        run(0)  # warm-up (no latency): imports, server connection, task registration
        decode_s = min(decode() for _ in range(2))
        walls = [run(n) for n in range(1, args.repeat + 1)]
        wall = median(walls)
        if args.realtime:
            ideal = args.seconds / args.realtime
            print(
                f"transcribe by a one-at-a-time server at {args.realtime:g}x realtime: "
                f"{args.seconds:.0f} s of speech, asr limit {args.limit}, timeout_s 600"
            )
            print(f"ideal (audio / speed): {ideal:.2f} s; decode alone {decode_s:.2f} s")
            goal = 1.2
        else:
            n_pieces = median([float(p) for k, p in pieces.items() if k])
            ideal = decode_s + math.ceil(n_pieces / args.limit) * args.latency
            print(f"transcribe by a provider: {args.seconds:.0f} s of speech in {n_pieces:.0f} "
                  f"pieces of <= {args.piece:g} s, asr limit {args.limit}, "
                  f"{args.latency:g} s a request")  # fmt: skip
            print(f"ideal (decode and encode {decode_s:.2f} s + ceil(pieces / limit) x latency): "
                  f"{ideal:.2f} s")  # fmt: skip
            goal = 1.15
        print(f"flow: {wall:.2f} s (median of {args.repeat}: "
              f"{', '.join(f'{w:.2f}' for w in walls)})")  # fmt: skip
        print(f"wall / ideal: {wall / ideal:.3f}x  (goal <= {goal:g}); pieces sent twice "
              f"whole: {sum(resent.values())}")  # fmt: skip


if __name__ == "__main__":
    main()
