"""The Few-shot tab in a real browser (headless Chromium via Playwright; skipped without them,
see tests/test_browser.py): what a new user met in issue 15.

* item 12: three symbols drawn and added in a row, waiting between them as a person does (the
  canvas used to lock on a "processing" spinner about 3 s after an add and lose the next one);
* item 13: an example query clicked and "Classify drawing" clicked at once (the answer used to
  be for the previous canvas);
* item 16: both query inputs used and labelled so, a broken file named with its input, the
  previous answer cleared on an error, the class inputs emptied after "Add".
"""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image
from test_browser import (EXAMPLES, RESULT_TIMEOUT_MS, _block, _column, open_page,
                          sync_playwright_api)  # noqa: F401  (fixture)

#: Symbols drawn in item 12's test: name -> strokes in canvas fractions (0..1).
SHAPES = {
    "O": [[(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75), (0.25, 0.25)]],
    "X": [[(0.25, 0.25), (0.75, 0.75)], [(0.75, 0.25), (0.25, 0.75)]],
    "L": [[(0.3, 0.2), (0.3, 0.8), (0.75, 0.8)]],
}


def _draw(page, canvas, strokes) -> None:
    """Draw ``strokes`` with the mouse on the drawing area centred in ``canvas``."""
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    side = 0.7 * min(box["width"], box["height"])  # inside the white drawing square

    def at(x: float, y: float) -> tuple[float, float]:
        return cx + (x - 0.5) * side, cy + (y - 0.5) * side

    for stroke in strokes:
        page.mouse.move(*at(*stroke[0]))
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(*at(x, y), steps=10)
        page.mouse.up()


def _open(page, sub_tab: str) -> None:
    from playwright.sync_api import expect
    tab = page.get_by_role("tab", name="Few-shot", exact=True)
    expect(tab).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    tab.click()
    page.get_by_role("tab", name=sub_tab, exact=True).click()


def _image(page, img) -> Image.Image:
    """The picture an <img> shows, fetched from the app."""
    data = page.request.get(img.get_attribute("src")).body()
    return Image.open(io.BytesIO(data)).convert("L")


@pytest.mark.browser
def test_handwriting_canvas_takes_three_drawings_in_a_row(sync_playwright_api, app_url,
                                                          tmp_path):
    from playwright.sync_api import expect

    with open_page(sync_playwright_api, app_url, tmp_path, height=1100) as page:
        _open(page, "Handwriting (meta-learned)")
        sketch = _block(page, "Draw a support example")
        canvas = sketch.locator("canvas").first
        expect(canvas).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        name = _block(page, "Symbol name").locator("textarea, input").first
        summary = page.locator("p:has(> strong:text-is('Support set:'))")
        added = []
        for symbol, strokes in SHAPES.items():
            name.fill(symbol)
            _draw(page, canvas, strokes)
            page.get_by_role("button", name="Add drawing").click()
            added.append(f"{symbol} (1)")
            expect(summary).to_contain_text(", ".join(added), timeout=RESULT_TIMEOUT_MS)
            page.wait_for_timeout(4_000)  # the spinner used to come about 3 s after an add
        expect(page.locator(".toast-body")).to_have_count(0)  # no add was refused
        thumbs = _block(page, "Support drawings").locator("img")
        expect(thumbs).to_have_count(3, timeout=RESULT_TIMEOUT_MS)
        pictures = [np.asarray(_image(page, thumbs.nth(i)).resize((32, 32))) < 128
                    for i in range(3)]
        assert all(p.any() for p in pictures), "a support drawing came out blank"
        for i in range(3):  # three different drawings, not one drawing three times
            for j in range(i):
                assert (pictures[i] != pictures[j]).mean() > 0.05, (i, j)


@pytest.mark.browser
def test_handwriting_examples_are_classified_when_clicked_right_before_the_button(
        sync_playwright_api, app_url, tmp_path):
    from playwright.sync_api import expect

    from engine.fewshot.omniglot import preprocess_drawing
    from engine.inputs.images import load_image
    expected = [1 - preprocess_drawing(load_image(
        EXAMPLES / "handwriting" / "query" / f"symbol_{n}_query.png").image)[0].numpy()
        for n in (1, 2, 3)]  # (28, 28) what the model sees, dark ink on white

    with open_page(sync_playwright_api, app_url, tmp_path, height=1400) as page:
        _open(page, "Handwriting (meta-learned)")
        page.get_by_role("button", name="Load example (3 symbols)").click()
        expect(page.get_by_text("symbol_1 (2)")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        examples = page.locator("div.block").filter(
            has=page.get_by_text("Example queries", exact=True)).last.locator("button")
        expect(examples).to_have_count(3, timeout=RESULT_TIMEOUT_MS)
        answer = _block(page, "Class probabilities").get_by_test_id("label-output-value")
        seen = _block(page, "What the model saw (28x28)").locator("img")
        run = page.get_by_role("button", name="Classify drawing")
        for order in ([0, 1, 2], [2, 0]):
            for i in order:
                examples.nth(i).click()
                run.click()  # at once: the canvas is still loading the example
                expect(answer).to_have_text(f"symbol_{i + 1}", timeout=RESULT_TIMEOUT_MS)
                picture = _image(page, seen)  # 112x112 drawing in a white margin of 8 px
                W, H = picture.size  # (28 px above it, for the block's label)
                shown = np.asarray(picture.crop((8, 28, W - 8, H - 8)).resize(
                    (28, 28), Image.Resampling.BOX), dtype=np.float32) / 255
                errors = [np.abs(shown - e).mean() for e in expected]
                assert int(np.argmin(errors)) == i, (i, errors)
        # the MAML settings and loss plot show for MAML models only
        steps = page.get_by_text("MAML steps", exact=True)
        expect(steps).to_be_hidden()
        model = _block(page, "Meta-learned model")
        model.locator("input").click()
        page.get_by_role("option", name="omniglot-maml", exact=True).click()
        expect(steps).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        examples.nth(1).click()
        run.click()
        expect(answer).to_have_text(re.compile(r"symbol_\d|no class is preferred"),
                                    timeout=RESULT_TIMEOUT_MS)
        expect(_block(page, "MAML support loss")).to_be_visible()


@pytest.mark.browser
def test_photos_query_inputs_broken_file_and_cleared_class_inputs(sync_playwright_api, app_url,
                                                                  cases_dir, tmp_path):
    from playwright.sync_api import expect

    from demos.fewshot import CLASS_FILES_LABEL, QUERY_FILES_LABEL, QUERY_PHOTO_LABEL

    with open_page(sync_playwright_api, app_url, tmp_path, height=1400) as page:
        _open(page, "Photos")
        page.get_by_role("button", name="Load example (cat vs coffee)").click()
        expect(page.get_by_text("2-way 3-shot support set")).to_be_visible(
            timeout=RESULT_TIMEOUT_MS)
        # a class added: its name and images are emptied for the next class
        support = _column(page, "1. Support set")
        name = _block(page, "Class name", support).locator("textarea, input").first
        name.fill("dog")
        files = _block(page, CLASS_FILES_LABEL, support)
        files.locator("input[type=file]").set_input_files(EXAMPLES / "grace_hopper.jpg")
        expect(files).to_contain_text("grace_hopper.jpg", timeout=RESULT_TIMEOUT_MS)
        support.get_by_role("button", name="Add to support set").click()
        expect(page.get_by_text("3-way 1-3-shot support set")).to_be_visible(
            timeout=RESULT_TIMEOUT_MS)
        expect(files).not_to_contain_text("grace_hopper.jpg", timeout=RESULT_TIMEOUT_MS)
        expect(name).to_have_value("")
        # both query inputs are used: one file in each, two rows with their file names
        query = _column(page, "2. Query")
        _block(page, QUERY_FILES_LABEL, query).locator("input[type=file]").set_input_files(
            EXAMPLES / "fewshot" / "query" / "cat_query.jpg")
        photo = _block(page, QUERY_PHOTO_LABEL, query)
        photo.locator("input[type=file]").set_input_files(
            EXAMPLES / "fewshot" / "query" / "coffee_query.jpg")
        expect(photo.locator("img").first).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        query.get_by_role("button", name="Classify", exact=True).click()
        answer = _block(page, "Query 1: class probabilities", query).get_by_test_id(
            "label-output-value")
        expect(answer).to_have_text("cat", timeout=RESULT_TIMEOUT_MS)
        table = query.locator("div.block").filter(
            has=page.get_by_text("All queries", exact=True)).last
        expect(table).to_contain_text("coffee_query.jpg")
        expect(table).to_contain_text("cat_query.jpg")
        # a broken file in one input beside a good photo in the other: the message names the
        # file and the input it sits in, and the old answer goes
        files = _block(page, QUERY_FILES_LABEL, query)
        files.get_by_role("button", name="Clear", exact=True).click()
        expect(files).not_to_contain_text("cat_query.jpg", timeout=RESULT_TIMEOUT_MS)
        files.locator("input[type=file]").set_input_files(cases_dir / "truncated_16.jpg")
        expect(files).to_contain_text("truncated_16.jpg", timeout=RESULT_TIMEOUT_MS)
        query.get_by_role("button", name="Classify", exact=True).click()
        toast = page.locator(".toast-body").filter(has_text="truncated_16.jpg")
        expect(toast).to_be_visible(timeout=RESULT_TIMEOUT_MS)
        expect(toast).to_contain_text(QUERY_FILES_LABEL)
        expect(answer).to_have_count(0)  # the previous "cat" is not left beside the error
        expect(table).not_to_contain_text("cat_query.jpg")
