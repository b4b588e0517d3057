"""The Generate tab in a real browser (issue 11): an example fills the description, Generate
shows the image, the 8-frame denoising strip and what the model read; an empty description
shows the one-line error and no stale result."""
from __future__ import annotations

import pytest
from test_browser import (RESULT_TIMEOUT_MS, _block, open_page,
                          sync_playwright_api)  # noqa: F401  (fixture)

from engine.models.scene_generator import ASSET

pytestmark = pytest.mark.skipif(not ASSET.is_file(), reason="no shipped generator")


@pytest.mark.browser
def test_generate_shows_image_strip_and_details_then_a_clear_error(sync_playwright_api,  # noqa: F811
                                                                    app_url, tmp_path):
    from playwright.sync_api import expect

    with open_page(sync_playwright_api, app_url, tmp_path, height=1300) as page:
        page.get_by_role("tab", name="Generate", exact=True).click()
        page.get_by_text("there is a large red rubber cylinder", exact=True).first.click()
        text = _block(page, "Description").locator("textarea")
        expect(text).to_have_value("there is a large red rubber cylinder", timeout=30_000)
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.get_by_text("Read by the model:")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        expect(page.get_by_text("large red rubber cylinder", exact=False).last).to_be_visible()
        image = _block(page, "Generated (32x32, shown 8x)").locator("img").first
        expect(image).to_be_visible()
        strip = _block(page, "Denoising: from noise (left) to the image (right)")
        expect(strip.locator("img")).to_have_count(8, timeout=30_000)

        text.fill("   ")
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.get_by_text("The description is empty").first).to_be_visible(
            timeout=RESULT_TIMEOUT_MS)
        expect(page.get_by_text("Read by the model:")).to_have_count(0, timeout=30_000)
        expect(strip.locator("img")).to_have_count(0)
