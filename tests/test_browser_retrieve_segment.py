"""The Retrieve and Few-shot segmentation tabs in a real browser (headless Chromium via
Playwright; skipped without them, see tests/test_browser.py)."""
from __future__ import annotations

import re

import pytest
from test_browser import (CHROMIUM, CHROMIUM_ARGS, EXAMPLES, RESULT_TIMEOUT_MS, _block,
                          sync_playwright_api)  # noqa: F401  (fixture)

import app_server


@pytest.mark.browser
def test_retrieve_and_segment_tabs_work_in_a_real_browser(sync_playwright_api, app_url,  # noqa: F811
                                                          tmp_path):
    from playwright.sync_api import expect

    with sync_playwright_api() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page_errors: list[str] = []
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        try:
            page.goto(app_url)
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
        except BaseException:
            shot = tmp_path / "browser_failure.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failure: {shot}")
            except Exception as exc:  # the page may be gone; keep the original error
                print(f"no screenshot ({exc})")
            if page_errors:
                print("JavaScript errors on the page:\n  " + "\n  ".join(page_errors))
            if app_server.current is not None:
                print("server log tail:\n" + app_server.current.log_tail(40))
            raise
        finally:
            browser.close()
