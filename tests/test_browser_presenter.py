"""The presenter view and the reproduce download in a real browser (issue 16): after a caption
the "Reproduce" JSON can be downloaded; the presenter checkbox (or ``?presenter``) enlarges the
text and hides the download. Uses the Chromium fixtures of tests/test_browser.py."""
from __future__ import annotations

import json
import re

import pytest
from test_browser import (EXAMPLES, RESULT_TIMEOUT_MS, _block, open_page,
                          sync_playwright_api)  # noqa: F401  (fixture)


def _font_px(locator) -> float:
    return float(locator.evaluate("el => parseFloat(getComputedStyle(el).fontSize)"))


@pytest.mark.browser
def test_reproduce_download_and_presenter_view(sync_playwright_api, app_url, tmp_path):
    from playwright.sync_api import expect

    with open_page(sync_playwright_api, app_url, tmp_path, height=1200) as page:
        upload = _block(page, "Image").locator("input[type=file]")
        expect(upload).to_have_count(1, timeout=30_000)
        upload.set_input_files(EXAMPLES / "cat.jpg")
        expect(_block(page, "Image").locator("img").first).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Caption", exact=True).click()
        caption = _block(page, "Caption").locator("textarea")
        expect(caption).to_have_value(re.compile("cat", re.I), timeout=RESULT_TIMEOUT_MS)

        # the reproduce JSON appears beside the result and is the recipe of this caption
        link = page.locator("a[href*='/caption-'][href$='.json']").first
        expect(link).to_be_visible(timeout=30_000)
        reproduce = page.locator(".vl-advanced").filter(has=link).first  # its block
        with page.expect_download() as info:
            link.click()
        recipe = json.loads(open(info.value.path(), encoding="utf-8").read())
        assert recipe["command"] == "caption"
        assert recipe["output"]["caption"] == caption.input_value()

        # presenter view: larger text, the download hidden; off again restores both
        before = _font_px(caption)
        toggle = page.locator("#vl-presenter-toggle input[type=checkbox]")
        toggle.check()
        expect(page.locator("body")).to_have_class(re.compile(r"\bvl-presenter\b"))
        expect(reproduce).to_be_hidden()
        assert _font_px(caption) > before
        toggle.uncheck()
        expect(page.locator("body")).not_to_have_class(re.compile(r"\bvl-presenter\b"))
        expect(reproduce).to_be_visible()

    with open_page(sync_playwright_api, app_url + "?presenter", tmp_path) as page:
        expect(page.locator("body")).to_have_class(re.compile(r"\bvl-presenter\b"),
                                                   timeout=30_000)
        expect(page.locator("#vl-presenter-toggle input[type=checkbox]")).to_be_checked()
