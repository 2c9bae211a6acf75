"""A packaged MP4 in a real browser: headless Chromium (the Debian package, driven by Playwright)
plays it in a ``<video>`` with one WebVTT ``<track>`` per subtitle track of the MP4, lists the
tracks with their languages and names, and shows each language's cue at a given time; the
Prefect UI shows the run's preview frame (the image artifact) at its size.

Chromium exposes no ``mov_text`` track of an MP4 in ``video.textTracks`` (checked with Chromium
156: none listed), so the page gives it each track as WebVTT, converted from the packaged MP4
itself: what is checked is the MP4's tracks, as a web player gets them."""

from __future__ import annotations

import asyncio
import functools
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from flows.package import package
from mediaflows.models import PackageRequest
from mediaflows.store import ProfileStore
from tasks.prefect_adapter import state_of
from tests import prefect_api
from tests.media_factory import probe_streams
from tests.srt_samples import PACKAGE_CUES, package_srt
from tests.ui.conftest import CHROMIUM
from tests.ui.test_prefect_ui import log_in

pytestmark = [pytest.mark.ui, pytest.mark.slow]

LANGUAGES = ("de", "fr", "zh-Hans")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site(
    local_store: ProfileStore, videos: dict[str, Path], tmp_path: Path
) -> Iterator[tuple[str, str]]:
    """The MP4 a package run stored, its tracks as WebVTT and a page playing them, served on
    loopback (the run before the browser: Playwright's sync API holds a loop); and the run's
    id."""
    if CHROMIUM is None:
        pytest.skip("no chromium here (apt-get install chromium)")
    video = local_store.import_file("alice", videos["h264_aac.mkv"])
    srts = [
        local_store.put_text(
            "alice", f"srt-{language}", package_srt(language), kind="subtitle",
            name=f"talk.{language}.srt", source_file_id=video.id, operation="translate_srt",
            details={"language": language},
        ).id
        for language in LANGUAGES
    ]  # fmt: skip
    request = PackageRequest(subtitles=tuple(srts))
    state = asyncio.run(state_of(package, profile="alice", file_id=video.id, request=request))
    assert state.is_completed(), state.message
    mp4 = tmp_path / "talk.mp4"
    local_store.download("alice", state.result().file_id, mp4)
    elements = []
    subtitles = [s for s in probe_streams(mp4) if s["codec_type"] == "subtitle"]
    for i, stream in enumerate(subtitles):
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-i", str(mp4), "-map", f"0:s:{i}",
             "-f", "webvtt", str(tmp_path / f"track{i}.vtt")],
            check=True, timeout=60,
        )  # fmt: skip
        tags, default = stream["tags"], " default" if stream["disposition"]["default"] else ""
        elements.append(f'<track kind="subtitles" src="track{i}.vtt" srclang="{tags["language"]}" '
                        f'label="{tags["handler_name"]}"{default}>')  # fmt: skip
    (tmp_path / "index.html").write_text(
        '<!doctype html><meta charset="utf-8">'
        f'<video id="v" muted preload="auto">{"".join(elements)}</video>'
        # Python's file server answers no Range requests, without which Chromium cannot seek
        # in a served video: the page plays the MP4 from memory instead.
        '<script>fetch("talk.mp4").then((r) => r.blob()).then((b) => {'
        'document.getElementById("v").src = URL.createObjectURL(b); });</script>',
        encoding="utf-8",
    )
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        run_id = str(state.state_details.flow_run_id)
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html", run_id
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page(site: tuple[str, str], chromium: Any) -> Any:
    return chromium.new_page()


_CUES_AT = """async (at) => {
  const v = document.getElementById("v");
  if (v.readyState < 1) await new Promise((ok) => v.addEventListener("loadedmetadata", ok));
  const tracks = Array.from(v.textTracks);
  tracks.forEach((t) => { t.mode = "hidden"; });
  await Promise.all(Array.from(v.querySelectorAll("track")).map((el) => el.readyState === 2
    ? null : new Promise((ok) => el.addEventListener("load", ok))));
  v.currentTime = at;
  await new Promise((ok) => v.addEventListener("seeked", ok, {once: true}));
  await new Promise((ok) => setTimeout(ok, 200));
  return {duration: v.duration, error: v.error && v.error.code,
          tracks: tracks.map((t) => ({language: t.language, label: t.label, kind: t.kind,
            cues: Array.from(t.activeCues || []).map((c) => c.text)}))};
}"""


def test_browser_lists_tracks_and_shows_each_language_cue(
    page: Any, site: tuple[str, str], prefect_server: str
) -> None:
    page.goto(site[0])
    first = page.evaluate(_CUES_AT, 1.0)
    assert first["error"] is None and abs(first["duration"] - 3.0) < 0.2  # the MP4 plays
    assert [(t["language"], t["label"], t["kind"]) for t in first["tracks"]] == [
        ("deu", "Deutsch", "subtitles"),
        ("fra", "Français", "subtitles"),
        ("zho", "简体中文", "subtitles"),
    ]
    assert [t["cues"] for t in first["tracks"]] == [
        [PACKAGE_CUES[lang][0][2]] for lang in LANGUAGES
    ]
    between = page.evaluate(_CUES_AT, 2.0)
    assert [t["cues"] for t in between["tracks"]] == [[], [], []]
    last = page.evaluate(_CUES_AT, 2.8)  # the last cue, cut at the video's end (3.0 s)
    assert [t["cues"] for t in last["tracks"]] == [[PACKAGE_CUES[lang][1][2]] for lang in LANGUAGES]
    # The run's preview in the Prefect UI: the frame, drawn by the browser from the artifact.
    (preview,) = [a for a in prefect_api.artifacts(UUID(site[1])) if a.type == "image"]
    log_in(page, prefect_server.removesuffix("/api"))  # the session's server requires it
    page.goto(f"{prefect_server.removesuffix('/api')}/artifacts/artifact/{preview.id}")
    image = page.locator('img[src^="data:image/jpeg;base64,"]').first
    image.wait_for(timeout=30_000)
    page.wait_for_function("(img) => img.complete", arg=image.element_handle(), timeout=10_000)
    assert image.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [640, 360]
