"""The app in a real browser: headless Debian Chromium driven by Playwright (sync API).

    apt-get install -y chromium && pip install -r requirements-test.txt
    python -m pytest tests/test_browser.py -q          # or: -m browser

Never run ``playwright install`` (it downloads its own browser); the system Chromium is used.
Without /usr/bin/chromium or the playwright package the test is skipped, except when CI=true,
where it fails so the CI image gets fixed. On failure a full-page screenshot and the server's
log tail are written / printed.
"""
from __future__ import annotations

import contextlib

import os
import re
from pathlib import Path

import pytest

import app_server

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
CHROMIUM = Path("/usr/bin/chromium")
# No internet here: without the background-networking flags Chromium floods refused connections.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: Milliseconds to wait for a model call to show its result.
RESULT_TIMEOUT_MS = 60_000


def _require_browser():
    """Return playwright's ``sync_playwright``; skip (fail under CI=true) if unavailable."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        missing.append("the playwright package (pip install -r requirements-test.txt)")
    if missing:
        reason = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; CI must install them", pytrace=False)
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="session")
def sync_playwright_api():
    """Playwright's ``sync_playwright``, checked before the app is launched for nothing."""
    return _require_browser()


@contextlib.contextmanager
def open_page(sync_playwright, url: str, tmp_path: Path, height: int = 1000):
    """A headless Chromium page opened on ``url``, closed afterwards.

    On failure it saves a full-page screenshot in ``tmp_path`` and prints the page's JavaScript
    errors and the tail of the app's log before re-raising.
    """
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": height})
        page_errors: list[str] = []
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        try:
            page.goto(url)
            yield page
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


def _block(page, label: str, scope=None):
    """The component block labelled exactly ``label`` (inside ``scope``, default the page)."""
    name = page.get_by_test_id("block-label").or_(page.get_by_test_id("block-info"))
    return (scope or page).locator("div.block").filter(
        has=name.filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))


def _column(page, heading: str):
    """The innermost column holding the markdown heading ``heading``."""
    return page.locator("div.column").filter(
        has=page.get_by_role("heading", name=heading, exact=True)).last


@pytest.mark.browser
def test_caption_and_fewshot_tabs_work_in_a_real_browser(sync_playwright_api, app_url,
                                                         tmp_path):
    from playwright.sync_api import expect

    with open_page(sync_playwright_api, app_url, tmp_path, height=1000) as page:
        # -- Caption tab: upload the cat, caption it --------------------------------------
        upload = _block(page, "Image").locator("input[type=file]")
        expect(upload, "the Caption tab's image upload never rendered (JavaScript errors "
               "are printed below)").to_have_count(1, timeout=30_000)
        page.get_by_role("tab", name="Caption", exact=True).click()  # the default tab
        upload.set_input_files(EXAMPLES / "cat.jpg")
        expect(_block(page, "Image").locator("img").first).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Caption", exact=True).click()
        caption = _block(page, "Caption").locator("textarea")
        expect(caption).to_have_value(re.compile("cat", re.I), timeout=RESULT_TIMEOUT_MS)

        # -- Few-shot tab: example support set, one query photo, classify -----------------
        page.get_by_role("tab", name="Few-shot", exact=True).click()
        page.get_by_role("button", name="Load example (cat vs coffee)").click()
        expect(page.get_by_text("2-way 3-shot support set")).to_be_visible(
            timeout=RESULT_TIMEOUT_MS)
        query = _column(page, "2. Query")
        photo = _block(page, "+ one more query photo (webcam / upload / paste)", query)
        photo.locator("input[type=file]").set_input_files(
            EXAMPLES / "fewshot" / "query" / "cat_query.jpg")
        expect(photo.locator("img").first).to_be_visible(timeout=30_000)
        query.get_by_role("button", name="Classify", exact=True).click()
        result = _block(page, "Query 1: class probabilities", query)
        expect(result.get_by_test_id("label-output-value")).to_have_text(
            "cat", timeout=RESULT_TIMEOUT_MS)
