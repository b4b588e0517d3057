"""The Retrieve and Few-shot segmentation tabs in a real browser (headless Chromium via
Playwright; skipped without them, see tests/test_browser.py)."""
from __future__ import annotations

import re

import pytest
from test_browser import (EXAMPLES, RESULT_TIMEOUT_MS, _block, open_page,
                          sync_playwright_api)  # noqa: F401  (fixture)



@pytest.mark.browser
def test_retrieve_and_segment_tabs_work_in_a_real_browser(sync_playwright_api, app_url,  # noqa: F811
                                                          tmp_path):
    from playwright.sync_api import expect

    with open_page(sync_playwright_api, app_url, tmp_path, height=1100) as page:
        # -- Retrieve: the cat + "in black and white" (the text box's default) -------------
        page.get_by_role("tab", name="Retrieve", exact=True).click()
        block = _block(page, "Reference image")
        block.locator("input[type=file]").set_input_files(EXAMPLES / "cat.jpg")
        expect(block.locator("img").first).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Retrieve", exact=True).click()
        expect(page.get_by_text("photo_cat_bw.jpg").first).to_be_visible(
            timeout=RESULT_TIMEOUT_MS)
        # click the first result: it becomes the new reference
        results = _block(page, "Results (click one to refine from it)")
        results.locator("button.thumbnail-item, .thumbnail-item").first.click()
        expect(block.locator("img").first).to_have_attribute(
            "src", re.compile("photo_cat_bw"), timeout=30_000)
        # -- Few-shot segmentation: the bundled horse example -------------------------------
        page.get_by_role("tab", name="Few-shot segmentation", exact=True).click()
        page.get_by_role("button", name="Load the example (horse)").click()
        expect(_block(page, "Query image").locator("img").first).to_be_visible(
            timeout=30_000)
        page.get_by_role("button", name="Segment", exact=True).click()
        expect(page.get_by_text(re.compile(r"Predicted area: \d"))).to_be_visible(
            timeout=RESULT_TIMEOUT_MS)
