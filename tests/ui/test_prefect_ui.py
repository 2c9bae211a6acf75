"""The real Prefect UI, in headless Chromium (the Debian package, driven by Playwright): the
server's login (the session's server requires an auth string), then a finished generate_srt run
shows its state, its progress and its QA table artifact."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from flows.generate_srt import generate_srt
from mediaflows.store import ProfileStore
from tasks.prefect_adapter import state_of
from tests.conftest import SERVER_AUTH

pytestmark = [pytest.mark.ui, pytest.mark.slow]

#: Where the screenshot is kept after the test (git-ignored), for people and CI to look at.
KEPT = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui-run.png"


@pytest.fixture
def finished_run(local_store: ProfileStore, jfk: Path) -> str:
    """A completed generate_srt run (before the browser: Playwright's sync API holds a loop)."""
    source = local_store.import_file("gail", jfk)
    state = asyncio.run(state_of(generate_srt, profile="gail", file_id=source.id))
    assert state.is_completed(), state.message
    return str(state.state_details.flow_run_id)


@pytest.fixture
def page(finished_run: str, chromium: Any) -> Any:
    return chromium.new_page(viewport={"width": 1400, "height": 1000})


def log_in(page: Any, ui: str) -> None:
    """The session's server requires an auth string: the UI's login page refuses a wrong one
    (it stays, nothing is kept) and takes the right one (kept for the browser's later calls)."""
    page.goto(f"{ui}/login")
    password = page.locator("input[type=password]")
    password.wait_for(timeout=60_000)
    password.fill("mediaflows:not-the-string")
    page.get_by_role("button", name="Login").click()
    page.wait_for_timeout(2000)
    assert password.is_visible()
    assert page.evaluate("localStorage.getItem('prefect-password')") is None
    password.fill(SERVER_AUTH)
    page.get_by_role("button", name="Login").click()
    password.wait_for(state="detached", timeout=30_000)
    assert page.evaluate("localStorage.getItem('prefect-password')")


def test_finished_run_shows_state_and_qa_artifact(
    page: Any, finished_run: str, prefect_server: str, tmp_path: Path
) -> None:
    run_id = finished_run
    ui = prefect_server.removesuffix("/api")

    log_in(page, ui)
    page.goto(f"{ui}/runs/flow-run/{run_id}")
    try:
        page.get_by_text("Completed").first.wait_for(timeout=60_000)
        page.get_by_text("Artifacts", exact=True).first.click()
        qa = page.get_by_text("Subtitle QA: gail/jfk.flac").first
        qa.wait_for(timeout=30_000)
    except Exception:
        KEPT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(KEPT.with_name("ui-run-failed.png")), full_page=True)
        print(page.url, page.inner_text("body")[:3000])
        raise
    page.wait_for_timeout(1000)  # let the cards finish rendering
    shot = tmp_path / "ui-run.png"
    page.screenshot(path=str(shot), full_page=True)
    KEPT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, KEPT)

    text = page.inner_text("body")
    assert "Completed" in text
    assert "Subtitle QA: gail/jfk.flac" in text
    assert "succeeded: " in text  # the progress artifact's last stage, e.g. "succeeded: 4 cues"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
