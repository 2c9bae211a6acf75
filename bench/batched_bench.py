"""Sequential decoding vs faster-whisper's BatchedInferencePipeline, through mediaflows' own
transcription (options and hallucination guard as the flows use them): speed and the words kept.

The speech is espeak-ng reading a paragraph with a pause after each repetition, repeated whole
(no cut mid-sentence), so the reference text is exact. Prints, per mode: wall seconds, realtime
factor, words, WER against the text, segments dropped by the guard, and how far each word's
start is from the sequential run's (median, ms). Run it on the machine whose default you decide
(a GPU worker: ``MEDIAFLOWS_WHISPER__DEVICE=auto``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.whisper_bench import SENTENCES


def paragraph_speech(directory: Path, seconds: float) -> tuple[np.ndarray, str]:
    """(16 kHz mono audio of at least ``seconds``, its exact text)."""
    from mediaflows.media.audio import decode_audio

    text = " ".join(SENTENCES)
    part = directory / "paragraph.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-g", "8", "-w", str(part), text],
                   check=True)  # fmt: skip
    padded = directory / "padded.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(part), "-af",
                    "apad=pad_dur=0.6", str(padded)], check=True)  # fmt: skip
    once = decode_audio(padded, padded.name)
    times = math.ceil(seconds * 16000 / len(once))
    return np.concatenate([once] * times), " ".join([text] * times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--batch-sizes", default="8,16")
    parser.add_argument("--model", default=None, help="default: the bundled tiny.en")
    args = parser.parse_args(argv)

    from mediaflows.models import TranscribeRequest
    from mediaflows.settings import get_settings
    from mediaflows.speech import whisper
    from tests.wer import wer

    settings = get_settings()
    request = TranscribeRequest(language="en", model=args.model)
    device, compute = whisper.resolve_device(settings.whisper)
    with tempfile.TemporaryDirectory() as tmp:
        audio, text = paragraph_speech(Path(tmp), args.seconds)
    duration = len(audio) / 16000
    print(f"{duration:.0f} s of espeak-ng speech, {len(text.split())} words; "
          f"{whisper.model_name(request, settings)} on {device}/{compute}")  # fmt: skip
    modes = [("sequential", False, 0)] + [
        (f"batched, batch {n}", True, int(n)) for n in args.batch_sizes.split(",")
    ]
    whisper.transcribe(audio[: 16000 * 5], request, settings=settings)  # load the model
    reference_starts: list[float] | None = None
    for name, batched, size in modes:
        updates = {"batched": batched, **({"batch_size": size} if size else {})}
        mode = settings.model_copy(update={"whisper": settings.whisper.model_copy(update=updates)})
        start = time.perf_counter()
        result = whisper.transcribe(audio, request, settings=mode)
        wall = time.perf_counter() - start
        words = [w for s in result.segments for w in s.words]
        hypothesis = " ".join(s.text for s in result.segments)
        starts = [w.start for w in words]
        if reference_starts is None:
            reference_starts, offset = starts, "-"
        elif len(starts) == len(reference_starts):
            deltas = [abs(a - b) for a, b in zip(starts, reference_starts, strict=True)]
            offset = f"{statistics.median(deltas) * 1000:.0f}"
        else:
            offset = "n/a (word counts differ)"
        print(f"{name:18s} {wall:6.1f} s {duration / wall:6.1f}x realtime  words {len(words):5d}  "
              f"WER {wer(text, hypothesis):.3f}  dropped {result.dropped}  "
              f"word start vs sequential (median ms) {offset}")  # fmt: skip


if __name__ == "__main__":
    main()
