"""Retrieve's result click in a real browser after ``/retrieval_select`` became a public
endpoint taking a rank (issue 15, item 10): the gallery's click passes its rank through a
hidden number, so clicking the *second* result must make exactly that image the reference."""
from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import unquote

import pytest
from test_browser import (EXAMPLES, RESULT_TIMEOUT_MS, _block, open_page,
                          sync_playwright_api)  # noqa: F401  (fixture)


@pytest.mark.browser
def test_clicking_the_second_result_makes_it_the_reference(sync_playwright_api, app_url,  # noqa: F811
                                                           tmp_path):
    from playwright.sync_api import expect

    with open_page(sync_playwright_api, app_url, tmp_path, height=1100) as page:
        page.get_by_role("tab", name="Retrieve", exact=True).click()
        block = _block(page, "Reference image")
        block.locator("input[type=file]").set_input_files(EXAMPLES / "cat.jpg")
        expect(block.locator("img").first).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Retrieve", exact=True).click()
        expect(page.get_by_text("photo_cat_bw.jpg").first).to_be_visible(
            timeout=RESULT_TIMEOUT_MS)
        thumbs = _block(page, "Results (click one to refine from it)").locator(
            "button.thumbnail-item, .thumbnail-item")
        src = thumbs.nth(1).locator("img").first.get_attribute("src")
        name = PurePosixPath(unquote(src.split("?")[0])).stem
        assert name and "photo_cat_bw" not in name  # the second result, not the first
        thumbs.nth(1).click()
        expect(block.locator("img").first).to_have_attribute("src", re.compile(re.escape(name)),
                                                             timeout=30_000)
