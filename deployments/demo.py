"""The main job on the embedded default: make a sample video, import it, run the operations."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from importlib import resources
from typing import Any

from mediaflows.settings import Settings
from mediaflows.store import ProfileStore

DEMO_PROFILE = "demo"


def make_sample_video(settings: Settings) -> Any:
    """A 11 s WebM (VP9 + Opus) of a test pattern over the bundled speech sample."""
    out = settings.work_path / "demo" / "sample.webm"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    speech = resources.files("mediaflows") / "samples" / "jfk.flac"
    with resources.as_file(speech) as audio:
        tmp = out.with_suffix(".tmp.webm")
        subprocess.run(
            [
                settings.media.ffmpeg_binary,
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=25",
                "-i",
                str(audio),
                "-shortest",
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "300k",
                "-c:a",
                "libopus",
                str(tmp),
            ],
            check=True,
            timeout=300,
        )
        os.replace(tmp, out)
    return out


def run_demo(settings: Settings) -> Iterator[dict[str, Any]]:
    """Import the sample into profile ``demo``, convert it and subtitle it; one record a step."""
    from deployments.setup import ensure_concurrency_limits
    from flows.convert import convert
    from flows.generate_srt import generate_srt

    yield {"step": "setup", "concurrency_limits": ensure_concurrency_limits(settings)}
    store = ProfileStore.from_settings(settings)
    sample = store.import_file(DEMO_PROFILE, make_sample_video(settings))
    yield {"step": "import", "file_id": sample.id, "name": sample.name, "store": store.url}
    converted = asyncio.run(convert(profile=DEMO_PROFILE, file_id=sample.id))
    yield {"step": "convert", **converted.model_dump(mode="json")}
    subtitles = asyncio.run(generate_srt(profile=DEMO_PROFILE, file_id=converted.file_id))
    yield {
        "step": "generate_srt",
        **subtitles.model_dump(mode="json", exclude={"qa"}),
        "qa": subtitles.qa.violations,
    }
    url = os.environ.get("PREFECT_API_URL", "").removesuffix("/api")
    yield {"step": "done", "ui": f"{url}/runs" if url else None}
