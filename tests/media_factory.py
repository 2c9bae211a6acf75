"""Test media made with real ffmpeg: videos in several containers/codecs, and bad inputs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

VIDEOS: dict[str, tuple[str, list[str]]] = {
    # name: (expected plan, ffmpeg output args)
    "h264_aac.mkv": ("remux", ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]),
    "hevc_aac.mkv": (
        "remux",
        [
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-c:a",
            "aac",
        ],
    ),
    "h264_mp3.mov": ("remux", ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libmp3lame"]),
    "vp9_opus.webm": (
        "transcode",
        ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"],
    ),
    "mpeg4_mp3.avi": ("transcode", ["-c:v", "mpeg4", "-c:a", "libmp3lame"]),
}


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


def make_video(
    dest: Path, out_args: list[str], seconds: float = 3.0, size: str = "320x240"
) -> Path:
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate=25:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-shortest",
        *out_args,
        str(dest),
    )
    return dest


def make_bad_inputs(directory: Path, http_port: int) -> dict[str, Path]:
    """Inputs that must be refused: empty, text, truncated, and indirections named .mp4."""
    bad = {}
    bad["empty.mp4"] = directory / "empty.mp4"
    bad["empty.mp4"].write_bytes(b"")
    bad["text.mp4"] = directory / "text.mp4"
    bad["text.mp4"].write_text("this is not a video, just text renamed to .mp4\n" * 20)
    whole = make_video(directory / "whole.mkv", VIDEOS["h264_aac.mkv"][1], seconds=8)
    data = whole.read_bytes()
    bad["truncated.mkv"] = directory / "truncated.mkv"
    bad["truncated.mkv"].write_bytes(data[: len(data) // 2])
    bad["playlist.mp4"] = directory / "playlist.mp4"
    bad["playlist.mp4"].write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n"
        f"#EXTINF:10,\nhttp://127.0.0.1:{http_port}/segment.ts\n#EXT-X-ENDLIST\n"
    )
    bad["concat.mp4"] = directory / "concat.mp4"
    bad["concat.mp4"].write_text(
        f"ffconcat version 1.0\nfile '/etc/passwd'\nfile 'http://127.0.0.1:{http_port}/x.mp4'\n"
    )
    return bad


def top_level_atoms(path: Path) -> list[str]:
    """The top-level MP4 box types, in file order."""
    atoms = []
    with path.open("rb") as f:
        while header := f.read(8):
            if len(header) < 8:
                break
            size = int.from_bytes(header[:4], "big")
            kind = header[4:8].decode("latin-1")
            if size == 1:
                size = int.from_bytes(f.read(8), "big")
                f.seek(size - 16, 1)
            elif size == 0:
                atoms.append(kind)
                break
            else:
                f.seek(size - 8, 1)
            atoms.append(kind)
    return atoms


SPEECH_TEXT = (
    "The quick brown fox jumps over the lazy dog. "
    "Every morning we walk to the market and buy fresh bread. "
    "Please call me when you arrive at the station."
)

SPEECH_CONTAINERS: dict[str, list[str]] = {
    "speech.mkv": ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    "speech.webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                    "-c:a", "libopus"],
    "speech.mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    "speech.mp3": ["-vn", "-c:a", "libmp3lame"],
    "speech.ogg": ["-vn", "-c:a", "libvorbis"],
    "speech.wav": ["-vn", "-c:a", "pcm_s16le", "-ar", "44100", "-ac", "2"],
}  # fmt: skip


def make_speech(directory: Path, text: str = SPEECH_TEXT) -> Path:
    """Speech with known text, spoken by espeak-ng (a 22 kHz mono WAV)."""
    wav = directory / "espeak.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(wav), text], check=True,
                   timeout=60)  # fmt: skip
    return wav


def make_speech_media(directory: Path, speech: Path, name: str) -> Path:
    """``speech`` in the container/codec of ``name`` (with a test-pattern video if it has one)."""
    args = SPEECH_CONTAINERS[name]
    out = directory / name
    if "-vn" in args:
        ffmpeg("-i", str(speech), *[a for a in args if a != "-vn"], str(out))
    else:
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=15", "-i", str(speech),
               "-shortest", *args, str(out))  # fmt: skip
    return out


def make_silence(dest: Path, seconds: float = 20.0) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"anullsrc=r=16000:cl=mono:d={seconds}", "-c:a", "flac", str(dest))
    return dest


def make_flat_video(dest: Path, seconds: float = 4.0, size: str = "320x240") -> Path:
    """An H.264/AAC MP4 of one flat colour: any drawn subtitle stands out of it, and x264 keeps
    it nearly exact, so frames compare pixel by pixel."""
    ffmpeg(
        "-f", "lavfi", "-i", f"color=c=0x336699:size={size}:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(dest),
    )  # fmt: skip
    return dest


def frame_rgb(path: Path, at: float) -> Any:
    """The frame shown at ``at`` seconds, as a height × width × 3 uint8 array."""
    import numpy as np

    info = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip().split(",")  # fmt: skip
    width, height = int(info[0]), int(info[1])
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ss", f"{at:.3f}",
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def packet_checksums(path: Path, selector: str) -> list[str]:
    """The size and MD5 of every packet of the streams ``selector`` picks (``v``, ``a``), in
    order (times are left out: containers count them in their own time bases). Equal lists
    mean the streams were copied bit for bit."""
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:{selector}",
         "-c", "copy", "-f", "framemd5", "-"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return [
        ",".join(part.strip() for part in line.split(",")[-2:])
        for line in out.splitlines()
        if line[:1].isdigit()
    ]


def probe_streams(path: Path) -> list[dict[str, Any]]:
    """ffprobe's own description of every stream (tags and dispositions included)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    streams: list[dict[str, Any]] = json.loads(out)["streams"]
    return streams


#: Real speech recorded by others (tests/data): the known text of each recording.
SPEECH_DATA = Path(__file__).parent / "data"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, ask what you "
            "can do for your country.")  # fmt: skip


def real_speech_text(part: str) -> str:
    """What is said in ``part`` (``jfk`` or ``sonnet1``..``sonnet3``)."""
    return JFK_TEXT if part == "jfk" else (SPEECH_DATA / "speech" / f"{part}.txt").read_text()


def join_real_speech(dest: Path, parts: list[str], pause_s: float = 1.0) -> tuple[Path, str]:
    """The recordings ``parts`` one after another with ``pause_s`` of silence between them, as
    16 kHz mono FLAC at ``dest``; and the text said in it."""
    inputs: list[str] = []
    for part in parts:
        path = SPEECH_DATA / ("jfk.flac" if part == "jfk" else f"speech/{part}.flac")
        inputs += ["-i", str(path), "-f", "lavfi", "-t", f"{pause_s}", "-i",
                   "anullsrc=r=16000:cl=mono"]  # fmt: skip
    n = 2 * len(parts)
    labels = "".join(
        f"[{i}:a]aresample=16000,aformat=channel_layouts=mono[a{i}];" for i in range(n)
    )
    joined = "".join(f"[a{i}]" for i in range(n))
    ffmpeg(*inputs, "-filter_complex", f"{labels}{joined}concat=n={n}:v=0:a=1[out]",
           "-map", "[out]", "-ar", "16000", "-ac", "1", str(dest))  # fmt: skip
    return dest, " ".join(real_speech_text(p) for p in parts)
