"""What the browser tests share: headless Chromium (the Debian package) driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium (skipped where there is none). Request it after the fixtures that
    run flows: Playwright's sync API holds an event loop in this thread."""
    if CHROMIUM is None:
        pytest.skip("no chromium here (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()
