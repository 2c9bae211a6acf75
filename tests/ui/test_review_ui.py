"""A reviewer in the Prefect UI (headless Chromium, Playwright): the run page of a translation
waiting for review offers Resume; its form has the flagged cues' fields (filled with the text the
run would deliver) under the cue list; the reviewer's text, submitted there, ends in the SRT."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mediaflows.models import TranslateSrtResult
from mediaflows.store import ProfileStore
from tests.flows.test_review import Background, _texts, waiting_translation
from tests.flows.test_review import background as background  # the module's fixtures
from tests.flows.test_review import two_refused as two_refused
from tests.llm_server import LLMServer
from tests.ui.test_prefect_ui import KEPT, log_in

pytestmark = [pytest.mark.ui, pytest.mark.slow]


def test_the_ui_resume_form_shows_the_flagged_cues_and_resumes_the_run(
    two_refused: LLMServer, local_store: ProfileStore, tmp_path: Path,
    background: list[Background], chromium: Any, prefect_server: str,
) -> None:  # fmt: skip
    page = chromium.new_page(viewport={"width": 1400, "height": 1400})
    run, run_id = waiting_translation(tmp_path, local_store, background)
    ui = prefect_server.removesuffix("/api")
    log_in(page, ui)
    page.goto(f"{ui}/runs/flow-run/{run_id}")
    edited = "Wir brauchen getrennte Zimmer."
    try:
        page.get_by_role("button", name="Resume").first.click(timeout=60_000)
        page.get_by_text("de cue 5 · 00:00:20,000 → 00:00:24,500 (Optional)").wait_for(
            timeout=30_000
        )
        form = page.inner_text("body")
        KEPT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(KEPT.with_name("ui-review.png")), full_page=True)
        # The form's text fields, in the schema's order: the reviewer, then the cues (each
        # filled with the text the run would deliver).
        fields = page.locator("textarea")
        values = [fields.nth(i).input_value() for i in range(fields.count())]
        assert values == ["", "We need separate rooms because\nthe house is very small.",
                          "See you tomorrow."]  # fmt: skip
        fields.nth(0).fill("ui")
        fields.nth(1).fill(edited)
        page.get_by_role("button", name="Submit").click()
    except Exception:
        KEPT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(KEPT.with_name("ui-review-failed.png")), full_page=True)
        print(page.url, page.inner_text("body")[:4000])
        raise
    assert "de cue 6 · 00:00:25,000 → 00:00:29,500" in form
    assert "left untranslated" in form  # the cue list (the form's description)
    state = run.end()
    assert state.is_completed(), state.message
    with ThreadPoolExecutor(1) as pool:  # outside Playwright's running loop
        result: TranslateSrtResult = pool.submit(state.result).result()
    assert _texts(result.translations[0].content)[4] == edited
    assert result.review is not None and result.review.reviewer == "ui"
