"""The Describe-the-changes and Edit-by-text tabs in a real browser (headless Chromium via
Playwright; skipped without them, see tests/test_browser.py)."""
from __future__ import annotations

import re

import pytest
from test_browser import (EXAMPLES, RESULT_TIMEOUT_MS, _block, open_page,
                          sync_playwright_api)  # noqa: F401  (fixture)


CHANGES = EXAMPLES / "changes"


@pytest.mark.browser
def test_change_and_edit_tabs_work_in_a_real_browser(sync_playwright_api, app_url,  # noqa: F811
                                                     tmp_path):
    from playwright.sync_api import expect

    with open_page(sync_playwright_api, app_url, tmp_path, height=1100) as page:
        # -- Describe the changes: upload the moved-cup pair -------------------------------
        page.get_by_role("tab", name="Describe the changes", exact=True).click()
        for label, name in (("Before", "moved_cup_before.jpg"),
                            ("After", "moved_cup_after.jpg")):
            block = _block(page, label)
            block.locator("input[type=file]").set_input_files(CHANGES / name)
            expect(block.locator("img").first).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Describe the changes", exact=True).click()
        expect(page.get_by_text(re.compile(r"moved from the top left to the top right"))
               ).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        # -- Edit by text: instruction mode -------------------------------------------------
        page.get_by_role("tab", name="Edit by text", exact=True).click()
        block = _block(page, "Image to edit")
        block.locator("input[type=file]").set_input_files(EXAMPLES / "coffee.jpg")
        expect(block.locator("img").first).to_be_visible(timeout=30_000)
        _block(page, "Instruction").locator("textarea").fill("turn it black and white")
        page.get_by_role("button", name="Edit", exact=True).click()
        expect(page.get_by_text(re.compile(r"outside the edited region: 0\.00 %"))
               ).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        expect(page.get_by_text("grayscale", exact=False).first).to_be_visible()
        # -- Edit by text: caption + mask mode, from a bundled painted mask -----------------
        page.get_by_label("Caption + mask").check()
        page.get_by_role("button", name="Edit the painted region").wait_for(timeout=10_000)
        page.get_by_text("gold", exact=True).first.click()  # the helmet example row
        _block(page, "What the painted region should become").locator("textarea") \
            .wait_for(timeout=10_000)
        expect(_block(page, "What the painted region should become").locator("textarea")
               ).to_have_value("gold", timeout=10_000)
        page.get_by_role("button", name="Edit the painted region").click()
        expect(page.get_by_text(re.compile(r"target:\s*the painted region"))
               ).to_be_visible(timeout=RESULT_TIMEOUT_MS)
