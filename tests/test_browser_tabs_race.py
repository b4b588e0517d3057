"""Issue 15 in a real browser (headless Chromium via Playwright; skipped without them, see
tests/test_browser.py): Caption + mask examples clicked right before the action (13), results
cleared when a request fails, with no spinner left (15), controls shown only for hub models
(18)."""
from __future__ import annotations

import re

import pytest
from test_browser import (EXAMPLES, RESULT_TIMEOUT_MS, _block, open_page,
                          sync_playwright_api)  # noqa: F401  (fixture)

#: What each Caption + mask example must give: (caption, operation, image size).
MASK_RESULTS = {0: ("nothing", "remove", "512x512"),  # astronaut, the shuttle painted
                1: ("gold", "recolour", "512x512"),  # astronaut, the helmet painted
                2: ("green", "recolour", "600x400")}  # coffee, the saucer painted
_OPERATION = "Operation:"


def _operation_text(page) -> str:
    found = page.locator("p").filter(has_text=_OPERATION)
    return found.first.inner_text() if found.count() else ""


def _wait_for_new_result(page, previous: str) -> str:
    page.wait_for_function(
        """prev => { const p = [...document.querySelectorAll('p')]
                       .filter(x => x.innerText.includes('Operation:'));
                     return p.length > 0 && p[0].innerText !== prev; }""",
        arg=previous, timeout=RESULT_TIMEOUT_MS)
    return _operation_text(page)


def _visible_spinners(page) -> list[str]:
    """Progress overlays (status trackers) still shown on the page."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.eta-bar, .progress-text, .meta-text')]
                 .filter(e => e.offsetParent !== null).map(e => e.className)""")


@pytest.mark.browser
def test_mask_examples_clicked_right_before_the_action_are_what_is_edited(
        sync_playwright_api, app_url, tmp_path):  # noqa: F811
    with open_page(sync_playwright_api, app_url, tmp_path, height=1100) as page:
        page.get_by_role("tab", name="Edit by text", exact=True).click()
        run = page.get_by_role("button", name="Edit the painted region")
        examples = page.locator("table").filter(has_text="What the painted region should become")
        previous = ""
        # every switch: to another photo, to another mask of the same photo, and back
        for index in (2, 0, 1, 0, 2, 1):
            caption, operation, size = MASK_RESULTS[index]
            examples.get_by_text(caption, exact=True).first.click()
            run.click()  # at once: the canvas has not drawn the example yet
            previous = _wait_for_new_result(page, previous)
            assert f"Operation: {operation} · target: the painted region" in previous, index
            before = _block(page, "Before / after").locator("img").first
            before.wait_for(timeout=30_000)
            handle = before.element_handle()
            page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=handle,
                                   timeout=30_000)
            assert handle.evaluate("i => i.naturalWidth + 'x' + i.naturalHeight") == size, index
            assert re.search(r"outside the edited region: 0\.00 %",
                             page.locator("p").filter(has_text="Changed pixels").first
                             .inner_text()), index


@pytest.mark.browser
def test_a_failed_request_clears_the_earlier_result_and_leaves_no_spinner(
        sync_playwright_api, app_url, tmp_path):  # noqa: F811
    from playwright.sync_api import expect
    with open_page(sync_playwright_api, app_url, tmp_path, height=1100) as page:
        # -- Edit: a result, then an object that is not in the photo ---------------------------
        page.get_by_role("tab", name="Edit by text", exact=True).click()
        block = _block(page, "Image to edit")
        block.locator("input[type=file]").set_input_files(EXAMPLES / "coffee.jpg")
        expect(block.locator("img").first).to_be_visible(timeout=30_000)
        instruction = _block(page, "Instruction").locator("textarea")
        edit = page.get_by_role("button", name="Edit", exact=True)
        instruction.fill("turn it black and white")
        edit.click()
        first = _wait_for_new_result(page, "")
        instruction.fill("make the dog red")
        edit.click()
        expect(page.get_by_text(re.compile("\"dog\" was not found in this image")).first
               ).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        expect(page.locator("p").filter(has_text=_OPERATION)).to_have_count(0, timeout=10_000)
        expect(_block(page, "Before / after").locator("img")).to_have_count(0)
        page.wait_for_timeout(1000)
        assert _visible_spinners(page) == []
        instruction.fill("make the whole image brighter")  # and the next request still works
        edit.click()
        assert "brighten" in _wait_for_new_result(page, first)
        # -- Retrieve: a ranking, then an empty text ------------------------------------------
        page.get_by_role("tab", name="Retrieve", exact=True).click()
        reference = _block(page, "Reference image")
        reference.locator("input[type=file]").set_input_files(EXAMPLES / "cat.jpg")
        expect(reference.locator("img").first).to_be_visible(timeout=30_000)
        retrieve = page.get_by_role("button", name="Retrieve", exact=True)
        retrieve.click()
        expect(page.get_by_text("photo_cat_bw.jpg").first).to_be_visible(
            timeout=RESULT_TIMEOUT_MS)
        _block(page, "Modification text").locator("textarea").fill("   ")
        retrieve.click()
        expect(page.get_by_text(re.compile("modification text is empty")).first).to_be_visible(
            timeout=RESULT_TIMEOUT_MS)
        expect(page.get_by_text("photo_cat_bw.jpg")).to_have_count(0, timeout=10_000)
        expect(page.get_by_text(re.compile(r"From the text:"))).to_have_count(0)
        page.wait_for_timeout(1000)
        assert _visible_spinners(page) == []
        # -- Caption: a caption, then no image ------------------------------------------------
        page.get_by_role("tab", name="Caption", exact=True).click()
        image = _block(page, "Image")
        image.locator("input[type=file]").set_input_files(EXAMPLES / "cat.jpg")
        expect(image.locator("img").first).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Caption", exact=True).click()
        caption = _block(page, "Caption").locator("textarea")
        expect(caption).to_have_value(re.compile("cat"), timeout=RESULT_TIMEOUT_MS)
        image.get_by_role("button", name="Remove Image").click()
        page.get_by_role("button", name="Caption", exact=True).click()
        expect(page.get_by_text(re.compile("Please upload the image")).first).to_be_visible(
            timeout=RESULT_TIMEOUT_MS)
        expect(caption).to_have_value("", timeout=10_000)
        expect(page.get_by_text(re.compile(r"Sentence from tags:"))).to_have_count(0)
        page.wait_for_timeout(1000)
        assert _visible_spinners(page) == []


@pytest.mark.browser
def test_sampling_controls_show_only_for_hub_models(sync_playwright_api, app_url,
                                                     tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    def choose(panel, name):
        _block(page, "Model", panel).locator("input").first.click()
        page.get_by_role("option", name=name, exact=True).click()

    with open_page(sync_playwright_api, app_url, tmp_path) as page:
        panel = page.locator("[role=tabpanel]:visible")
        expect(_block(page, "Image", panel).locator("input[type=file]")).to_have_count(
            1, timeout=30_000)
        expect(page.get_by_text("Decoding (BLIP)")).to_be_hidden()
        expect(page.get_by_text("Seed (nucleus)")).to_be_hidden()
        choose(panel, "blip-base")
        expect(page.get_by_text("Decoding (BLIP)")).to_be_visible(timeout=10_000)
        expect(page.get_by_text("Seed (nucleus)")).to_be_visible()
        choose(panel, "efficientnet_lite0")
        expect(page.get_by_text("Decoding (BLIP)")).to_be_hidden(timeout=10_000)
        page.get_by_role("tab", name="Edit by text", exact=True).click()
        page.get_by_role("button", name=re.compile("Model and sampling")).click()
        panel = page.locator("[role=tabpanel]:visible")
        expect(page.get_by_text("Guidance scale (text)")).to_be_hidden()
        choose(panel, "instruct-pix2pix")
        expect(page.get_by_text("Guidance scale (text)")).to_be_visible(timeout=10_000)
        expect(page.get_by_text("Image guidance scale (InstructPix2Pix)")).to_be_visible()
