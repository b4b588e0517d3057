"""Issue 15 in a real browser (headless Chromium via Playwright; skipped without them): the
change tab shows its heatmaps' colour scale, and after a refused request the previous result
is cleared (not left beside the error) and no output stays on a processing spinner."""
from __future__ import annotations

import re

import pytest
from test_browser import (EXAMPLES, RESULT_TIMEOUT_MS, _block, open_page,
                          sync_playwright_api)  # noqa: F401  (fixture)

CHANGES = EXAMPLES / "changes"


@pytest.mark.browser
def test_change_tab_has_a_colour_scale_and_clears_a_stale_result(sync_playwright_api,  # noqa: F811
                                                                 app_url, tmp_path):
    from playwright.sync_api import expect

    with open_page(sync_playwright_api, app_url, tmp_path, height=1100) as page:
        page.get_by_role("tab", name="Describe the changes", exact=True).click()
        scale = page.locator(".change-scale")
        expect(scale).to_be_visible()
        expect(scale).to_contain_text("0.45 changed")
        expect(scale).to_contain_text("CIELAB")
        for label, name in (("Before", "moved_cup_before.jpg"),
                            ("After", "moved_cup_after.jpg")):
            block = _block(page, label)
            block.locator("input[type=file]").set_input_files(CHANGES / name)
            expect(block.locator("img").first).to_be_visible(timeout=30_000)
        button = page.get_by_role("button", name="Describe the changes", exact=True)
        button.click()
        result = page.get_by_text(re.compile(r"moved from the top left to the top right"))
        expect(result).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        overlay = _block(page, "Difference over the after image (numbered boxes)")
        expect(overlay.locator("img")).to_have_count(1)
        # remove the after image: the request is refused and the old result must go
        _block(page, "After").get_by_role("button", name=re.compile("Clear|Remove")).first.click()
        button.click()
        expect(page.get_by_text(re.compile(r"Please upload the after image too"))
               ).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        expect(result).to_have_count(0, timeout=RESULT_TIMEOUT_MS)
        expect(page.get_by_text(re.compile(r"No result: the last request"))).to_be_visible()
        expect(overlay.locator("img")).to_have_count(0)
        expect(page.locator(".change-scale").locator("xpath=..").locator(".wrap.pending")
               ).to_have_count(0)  # nothing left on a spinner
