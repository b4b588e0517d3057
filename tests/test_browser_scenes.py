"""Issue 10's "done when" in a real browser (headless Chromium via Playwright; skipped without
them): in Caption -> Scenes, "New scene" shows a learned caption as clickable words, and
clicking a word replaces the scene with that word's attention map; in Describe the changes ->
Scenes, "New pair" shows DUDA's sentence, the ground truth and both attention maps."""
from __future__ import annotations

import re

import pytest
from test_browser import (RESULT_TIMEOUT_MS, _block, open_page,
                          sync_playwright_api)  # noqa: F401  (fixture)

SHAPES = re.compile(r"^\s*(cube|sphere|cylinder)\s*$")


@pytest.mark.browser
def test_new_scene_then_clicking_a_word_shows_where_it_looked(sync_playwright_api,  # noqa: F811
                                                               app_url, tmp_path):
    from playwright.sync_api import expect

    with open_page(sync_playwright_api, app_url, tmp_path, height=1200) as page:
        page.get_by_role("tab", name="Caption", exact=True).click()
        page.get_by_role("tab", name="Scenes (learned captioner)").click()
        page.get_by_role("button", name="New scene", exact=True).click()

        words = page.locator("#scene-caption-words .token")
        expect(words.nth(5), "no caption words after New scene").to_be_visible(
            timeout=RESULT_TIMEOUT_MS)
        assert words.count() > 5
        expect(page.get_by_text("Ground truth:")).to_be_visible()
        seed = _block(page, "Scene seed").locator("input")
        assert re.fullmatch(r"\d+", seed.input_value())  # New scene wrote the seed it drew

        image = page.locator("#scene-caption-image img").first
        expect(image).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        scene_src = image.get_attribute("src")

        nouns = words.filter(has_text=SHAPES)
        nouns.first.click()
        expect(page.locator("#scene-caption-image")).to_contain_text(
            re.compile(r"writing word \d+"), timeout=RESULT_TIMEOUT_MS)
        expect(image).not_to_have_attribute("src", scene_src, timeout=RESULT_TIMEOUT_MS)
        first_src = image.get_attribute("src")

        nouns.last.click()                   # another word: another map
        expect(image).not_to_have_attribute("src", first_src, timeout=RESULT_TIMEOUT_MS)


@pytest.mark.browser
def test_new_pair_shows_duda_both_maps_and_the_truth(sync_playwright_api,  # noqa: F811
                                                      app_url, tmp_path):
    from playwright.sync_api import expect

    with open_page(sync_playwright_api, app_url, tmp_path, height=1400) as page:
        page.get_by_role("tab", name="Describe the changes", exact=True).click()
        page.get_by_role("tab", name="Scenes (DUDA)").click()
        page.get_by_role("button", name="New pair", exact=True).click()
        details = page.locator("#scene-change-details")
        expect(details).to_contain_text("DUDA:", timeout=RESULT_TIMEOUT_MS)
        expect(details).to_contain_text("Ground truth")
        for label in ("DUDA's attention on the before image",
                      "DUDA's attention on the after image", "Before (scene)",
                      "After (scene)"):
            expect(_block(page, label).locator("img").first).to_be_visible(
                timeout=RESULT_TIMEOUT_MS)
