"""generate_srt flow vs a direct faster-whisper call, same model and options, same clip, one run.

Prints: flow ÷ direct (goal ≤ 1.10 on ~60 s, ≤ 1.02 on 10 min), realtime factors, and the peak
RSS of a generate_srt run on a long file (run in a child process so its peak is its own).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import bench_home

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Every morning we walk to the market and buy fresh bread.",
    "Please call me when you arrive at the station.",
    "The weather today is cold, but tomorrow it will be warm again.",
    "She reads a book while the children play in the garden.",
]


def make_speech_clip(directory: Path, seconds: float) -> Path:
    """espeak-ng sentences with short pauses, looped to ``seconds``, as a 44.1 kHz MP3."""
    part = directory / "part.wav"
    text = " ".join(SENTENCES)
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-g", "8", "-w", str(part), text],
                   check=True)  # fmt: skip
    out = directory / f"speech-{int(seconds)}s.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(part),
         "-t", str(seconds), "-ar", "44100", "-c:a", "libmp3lame", str(out)],
        check=True,
    )  # fmt: skip
    return out


def direct(path: Path, model_name: str | None = None) -> float:
    """faster-whisper alone: the same bundled model (or ``model_name``: ``base``), device,
    options; wall seconds."""
    from faster_whisper import WhisperModel

    from mediaflows.settings import get_settings
    from mediaflows.speech import whisper

    device, compute = whisper.resolve_device(get_settings().whisper)
    path_of = whisper.default_model() if model_name is None else whisper.model_path(model_name)
    model = WhisperModel(path_of, device=device, compute_type=compute)
    start = time.perf_counter()
    segments, _ = model.transcribe(
        str(path), beam_size=5, vad_filter=True, word_timestamps=True,
        condition_on_previous_text=False, hallucination_silence_threshold=2.0,
    )  # fmt: skip
    for _ in segments:
        pass
    return time.perf_counter() - start


def flow(path: Path, profile: str) -> float:
    """The generate_srt flow on a freshly imported copy (nothing cached); wall seconds."""
    from flows.generate_srt import generate_srt
    from mediaflows.settings import get_settings
    from mediaflows.store import ProfileStore

    os.environ["MEDIAFLOWS_STORE__URL"] = str(Path(tempfile.mkdtemp(prefix="mf-bench-store-")))
    get_settings.cache_clear()
    file = ProfileStore.from_settings().import_file(profile, path)
    start = time.perf_counter()
    result = asyncio.run(generate_srt(profile=profile, file_id=file.id))
    elapsed = time.perf_counter() - start
    assert not result.cached and result.qa.cues > 0
    return elapsed


def peak_rss_child(path: Path, runner: str) -> tuple[float, float]:
    """(peak RSS in MiB, wall s) of a fresh process running ``runner`` (``flow`` or ``direct``)
    on ``path``; each child's peak is its own. The flow's time includes loading the model (in
    its task), the direct call's does not."""
    call = "flow(Path(sys.argv[1]), 'long')" if runner == "flow" else "direct(Path(sys.argv[1]))"
    code = (
        "import resource, sys; from pathlib import Path; "
        "from bench.whisper_bench import flow, direct; "
        f"wall = {call}; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, wall)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True,
                         capture_output=True, text=True, env=os.environ.copy())  # fmt: skip
    rss, wall = out.stdout.strip().splitlines()[-1].split()
    return float(rss), float(wall)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--long", type=float, default=600, help="long file for RSS (0: skip)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    with bench_home(), tempfile.TemporaryDirectory() as tmp:
        clip = make_speech_clip(Path(tmp), args.seconds)
        direct(clip)  # warm-up: model files in page cache
        flow(clip, "warm")
        d = min(direct(clip) for _ in range(args.repeat))
        f = min(flow(clip, "bench") for _ in range(args.repeat))
        print(f"clip: {args.seconds:.0f} s espeak-ng speech, MP3 44.1 kHz; best of {args.repeat}")
        print(f"direct faster-whisper: {d:.2f} s  ({args.seconds / d:.1f}x realtime)")
        print(f"generate_srt flow:     {f:.2f} s  ({args.seconds / f:.1f}x realtime)")
        print(f"flow / direct:         {f / d:.3f}x  (goal <= 1.10)")
        base = min(direct(clip, "base") for _ in range(args.repeat))
        print(f"multilingual base (direct): {base:.2f} s  ({args.seconds / base:.1f}x realtime; "
              f"{base / d:.2f}x tiny.en's time)")  # fmt: skip
        if args.long:
            long_clip = make_speech_clip(Path(tmp), args.long)
            flow_rss, flow_wall = peak_rss_child(long_clip, "flow")
            direct_rss, direct_wall = peak_rss_child(long_clip, "direct")
            print(
                f"long file {args.long:.0f} s, each in a fresh process: "
                f"generate_srt {flow_wall:.1f} s, direct {direct_wall:.1f} s, flow / direct "
                f"{flow_wall / direct_wall:.3f}x (goal <= 1.02); peak RSS flow {flow_rss:.0f} MiB, "
                f"direct {direct_rss:.0f} MiB"
            )


if __name__ == "__main__":
    main()
