"""package flow vs plain ffmpeg with the same inputs, in one run.

Prints: package flow (3 languages, streams copied, preview included) ÷ the plain `ffmpeg -c copy
-c:s mov_text` of the same video and SRTs (goal ≤ 1.3 once warm); with ``--burn-in``, the burn-in
run (a re-encode) too. Each flow run uses a fresh store so that it really packages (a second
run on the same store would be served from the store without ffmpeg).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

from bench.common import bench_home, median, timed
from bench.convert_bench import make_source
from tests.media_factory import ffmpeg

LANGUAGES = {
    "de": "Das ist der Satz Nummer {n}, und er ist lang genug für zwei Zeilen.",
    "fr": "Voici la phrase numéro {n}, assez longue pour deux lignes.",
    "zh-Hans": "这是第{n}句话，长度足够两行。",
}


def make_srt(language: str, seconds: int) -> str:
    """A cue every 3 s, 2.5 s long, over the whole video."""
    cues = []
    for n, start in enumerate(range(0, seconds - 3, 3), 1):
        a, b = start * 1000 + 200, start * 1000 + 2700
        stamp = [f"{t // 3_600_000:02}:{t // 60_000 % 60:02}:{t // 1000 % 60:02},{t % 1000:03}"
                 for t in (a, b)]  # fmt: skip
        cues.append(f"{n}\n{stamp[0]} --> {stamp[1]}\n{LANGUAGES[language].format(n=n)}\n")
    return "\n".join(cues)


def print_breakdown() -> None:
    """The newest package flow run's task runs: when each started (after the flow run's start)
    and how long it took, from the server's records."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    time.sleep(3)  # task runs reach the server as events, a little after the run
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["package"])),
            sort=FlowRunSort.START_TIME_DESC, limit=1,
        )  # fmt: skip
        tasks = client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[run.id]))
        )
    assert run.start_time and run.end_time
    print(f"flow run {run.name}: {(run.end_time - run.start_time).total_seconds():.3f} s "
          "from Running to its final state")  # fmt: skip
    rows = sorted(
        ((t.start_time - run.start_time).total_seconds(),
         (t.end_time - t.start_time).total_seconds(), t.name)
        for t in tasks if t.start_time and t.end_time
    )  # fmt: skip
    for at, took, name in rows:
        print(f"  +{at:6.3f} s  {took:6.3f} s  {name}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=300, help="length of the test video")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--burn-in", action="store_true", help="also time one burn-in run")
    parser.add_argument(
        "--cold-probe", action="store_true",
        help="probe the video in every run (by default its probe is a cache hit, as after the "
        "generate_srt run that made its subtitles)",
    )  # fmt: skip
    parser.add_argument(
        "--breakdown", action="store_true", help="where the last flow run's time went (task runs)"
    )
    parser.add_argument(
        "--source", type=Path, help="an existing video of --seconds to use (making one takes long)"
    )
    args = parser.parse_args(argv)
    with bench_home() as home, tempfile.TemporaryDirectory() as tmp:
        import os

        from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

        from flows.package import package
        from mediaflows.models import PackageRequest
        from mediaflows.settings import get_settings
        from mediaflows.store import ProfileStore

        src = args.source or make_source(Path(tmp) / "src.mp4", args.seconds)
        srts = {}
        for language in LANGUAGES:
            srts[language] = Path(tmp) / f"{language}.srt"
            srts[language].write_text(make_srt(language, args.seconds), encoding="utf-8")
        size_mb = src.stat().st_size / 1e6
        counter = iter(range(10**6))

        def plain_copy() -> None:
            """The direct ffmpeg call the flow is measured against: the same inputs, streams
            copied, the SRTs as mov_text, moov first, into a new file each time as the flow's
            (overwriting one file would drop its pages not yet written back: measured here,
            this disk's write-back is what makes a run slow, 0.3 s against 0.7-1.1 s)."""
            inputs = [a for path in srts.values() for a in ("-i", str(path))]
            maps = [a for i in range(len(srts)) for a in ("-map", str(i + 1))]
            ffmpeg("-i", str(src), *inputs, "-map", "0:v", "-map", "0:a", *maps,
                   "-c:v", "copy", "-c:a", "copy", "-c:s", "mov_text",
                   "-movflags", "+faststart",
                   str(Path(tmp) / f"plain-{next(counter)}.mp4"))  # fmt: skip

        def flow_run(burn_in: str | None = None) -> float:
            """Import the video and store the SRTs into a fresh store (untimed), then time the
            flow alone."""
            os.environ["MEDIAFLOWS_STORE__URL"] = str(home / f"store-{next(counter)}")
            get_settings.cache_clear()
            store = ProfileStore.from_settings()
            file = store.import_file("bench", src)
            ids = tuple(
                store.put_text(
                    "bench", f"srt-{language.lower()}", path.read_text(encoding="utf-8"),
                    kind="subtitle", name=f"src.{language}.srt", source_file_id=file.id,
                    operation="translate_srt", details={"language": language},
                ).id
                for language, path in srts.items()
            )  # fmt: skip
            request = PackageRequest(subtitles=ids, burn_in=burn_in)
            os.sync()  # the import's 228 MB written back before the clock starts, as in use
            with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: args.cold_probe}):
                start = time.perf_counter()
                result = asyncio.run(package(profile="bench", file_id=file.id, request=request))
                elapsed = time.perf_counter() - start
            assert not result.cached and len(result.tracks) == len(srts)
            return elapsed

        # Warm up: imports, ffmpeg version probe, server connection, page cache.
        plain_copy()
        flow_run()

        # Alternated, so that a busy moment of the machine falls on both alike.
        plains, flows = [], []
        for _ in range(args.repeat):
            os.sync()
            plains += timed(plain_copy, 1)
            flows.append(flow_run())
        plain, packaged = median(plains), median(flows)
        print(f"source: {args.seconds} s {src.name}, {size_mb:.0f} MB; "
              f"{len(srts)} SRTs ({', '.join(srts)}); probe "
              f"{'in every run' if args.cold_probe else 'a cache hit'}")  # fmt: skip
        print(f"plain ffmpeg -c copy -c:s mov_text: {plain:.2f} s (median of {args.repeat})")
        print(f"package flow, streams copied:      {packaged:.2f} s (median of {args.repeat})")
        print(f"package flow / plain ffmpeg:       {packaged / plain:.2f}x  (goal <= 1.30)")
        mine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS: this process (the flow runs in it) {mine:.0f} MB, "
              f"the largest child (ffmpeg) {child:.0f} MB")  # fmt: skip
        if args.breakdown:
            print_breakdown()
        if args.burn_in:
            burnt = flow_run("de")
            print(f"package flow, de burnt in:         {burnt:.2f} s (x264 veryfast)")


if __name__ == "__main__":
    main()
