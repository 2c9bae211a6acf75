"""Decoding: the first audio stream of a file as 16 kHz mono float32, by our own ffmpeg call.

faster-whisper's own decoder (PyAV) would follow playlists; this one runs with the same protocol
and demuxer whitelists as every other ffmpeg call, streams the audio window by window (memory stays
bounded on long files), and refuses a file that decodes to clearly less than it claims to hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mediaflows import cancel
from mediaflows.media.probe import check_complete, input_flags
from mediaflows.media.tools import ToolRun
from mediaflows.settings import Settings, get_settings

SAMPLE_RATE = 16000
#: A window is cut at the quietest 100 ms within this many seconds of its nominal end.
CUT_SEARCH_S = 10.0
_FRAME = SAMPLE_RATE // 10


def decode_args(
    path: Path, settings: Settings, start: float | None = None, length: float | None = None
) -> list[str]:
    """ffmpeg's command line: the first audio stream as raw 16 kHz mono float32 on stdout (from
    ``start`` seconds, ``length`` seconds of it, when given: ffmpeg seeks the input and decodes
    from the packet before, dropping what precedes ``start``)."""
    span = [*(["-ss", f"{start:.6f}"] if start else []),
            *(["-t", f"{length:.6f}"] if length is not None else [])]  # fmt: skip
    return [
        settings.media.ffmpeg_binary, "-nostdin", "-hide_banner", "-v", "error", *input_flags(),
        *span, "-i", f"file:{path}", "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1",
    ]  # fmt: skip


def decode_span(
    path: Path, name: str, start: float, length: float | None, settings: Settings | None = None
) -> np.ndarray:
    """``length`` seconds of the first audio stream from ``start`` (None: to its end), as 16 kHz
    mono float32 (a window of a long file, or the audio around a planned cut)."""
    settings = settings or get_settings()
    args = decode_args(path, settings, start, length)
    with ToolRun(args, name, settings.media.ffmpeg_timeout_s, failure="cannot decode audio") as run:
        out = run.stdout.read()
        run.finish()
    return np.frombuffer(out[: len(out) - len(out) % 4], dtype=np.float32)


def quietest_cut(audio: np.ndarray, lo: int, hi: int) -> int:
    """The sample index in ``[lo, hi)`` at the middle of the quietest 100 ms frame."""
    frames = (hi - lo) // _FRAME
    if frames <= 1:
        return hi
    region = audio[lo : lo + frames * _FRAME].reshape(frames, _FRAME)
    energy = np.einsum("ij,ij->i", region, region)
    return lo + int(np.argmin(energy)) * _FRAME + _FRAME // 2


def audio_windows(
    path: Path,
    name: str,
    settings: Settings | None = None,
    window_s: float | None = None,
    expected_s: float | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """The first audio stream in windows of about ``window_s`` seconds, each cut at a quiet moment
    so that no word is split.

    Yields ``(start in seconds, samples)``; holds at most one window and its look-ahead in
    memory, however long the file.

    Args:
        expected_s: How long the audio claims to be (the probe's). A file that decodes to
            clearly less is truncated or corrupt: :class:`MediaError` once its end is reached.

    Raises:
        MediaError: no audio stream, ffmpeg cannot decode it, or it is truncated (after the
            windows decoded).
        ToolTimeoutError: ffmpeg produced nothing for ``media.ffmpeg_timeout_s``.
    """
    settings = settings or get_settings()
    window = int((window_s or settings.whisper.window_s) * SAMPLE_RATE)
    search = min(int(CUT_SEARCH_S * SAMPLE_RATE), window // 3)
    with ToolRun(
        decode_args(path, settings),
        name,
        settings.media.ffmpeg_timeout_s,
        stall_timeout=True,
        failure="cannot decode audio",
    ) as decoder:
        pending = np.empty(0, dtype=np.float32)
        offset = 0
        while True:
            want = window + search - len(pending)
            block = decoder.read(want * 4)
            cancel.check()  # a killed decoder ends its output early: that is no end of file
            usable = len(block) - len(block) % 4
            if usable:
                more = np.frombuffer(block[:usable], dtype=np.float32)
                pending = np.concatenate([pending, more]) if len(pending) else more
            if len(block) < want * 4:  # end of stream
                decoder.finish()
                if len(pending):
                    yield offset / SAMPLE_RATE, pending
                if expected_s is not None:
                    check_complete(name, (offset + len(pending)) / SAMPLE_RATE, expected_s)
                return
            cut = quietest_cut(pending, window - search, window + search)
            yield offset / SAMPLE_RATE, pending[:cut]
            pending, offset = pending[cut:].copy(), offset + cut


def decode_audio(path: Path, name: str, settings: Settings | None = None) -> np.ndarray:
    """The whole first audio stream (for short files; see :func:`audio_windows` for long ones)."""
    parts = [audio for _, audio in audio_windows(path, name, settings)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)
