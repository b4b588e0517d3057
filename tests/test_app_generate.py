"""The Generate tab through gradio_client against the served app (issue 11): an image, the
denoising strip and the details; the same seed gives the same pixels; bad inputs are clear
one-line errors, never the internal-error line."""
from __future__ import annotations

import numpy as np
import pytest
from app_server import app_url  # noqa: F401  (session fixture: the app on a free port)
from PIL import Image

from engine.models.scene_generator import ASSET

pytestmark = [pytest.mark.server,
              pytest.mark.skipif(not ASSET.is_file(), reason="no shipped generator")]
TEXT = "a large blue metal sphere left of a small yellow cube"
INTERNAL = "internal error"


@pytest.fixture(scope="module")
def client(app_url):  # noqa: F811
    from gradio_client import Client
    return Client(app_url, verbose=False)


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_generate_returns_the_image_the_strip_and_what_was_read(client):
    image, strip, details = client.predict(TEXT, 3.0, 5, 6, api_name="/generate")
    assert _pixels(image).shape == (256, 256, 3)
    assert len(strip) == 7  # noise + 6 steps (at most 8 frames)
    assert strip[0]["caption"] == "noise" and strip[-1]["caption"] == "after 6/6 steps"
    assert "large blue metal sphere left small yellow cube" in details
    assert "scene parser sees" in details and "Seed** 5" in details
    # the strip's last frame is the result (upscaled 96 vs 256, nearest: same 32x32 content)
    last = Image.open(strip[-1]["image"]).convert("RGB").resize((32, 32), Image.NEAREST)
    first = Image.open(image).convert("RGB").resize((32, 32), Image.NEAREST)
    assert np.array_equal(np.asarray(last), np.asarray(first))


def test_the_same_seed_gives_the_same_pixels_and_another_seed_does_not(client):
    a = _pixels(client.predict(TEXT, 3.0, 11, 4, api_name="/generate")[0])
    b = _pixels(client.predict(TEXT, 3.0, 11, 4, api_name="/generate")[0])
    c = _pixels(client.predict(TEXT, 3.0, 12, 4, api_name="/generate")[0])
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_unknown_words_are_named_in_the_notes(client):
    _, _, details = client.predict("a red cube and a unicorn", 3.0, 0, 2, api_name="/generate")
    assert "unicorn" in details and "red cube" in details


@pytest.mark.parametrize("args,expected", [
    (("   ", 3.0, 0, 5), "empty"),
    (("a dog on a sofa", 3.0, 0, 5), "scene world"),
    # out-of-range numbers are refused by Gradio's own range check of the slider / number
    ((TEXT, 3.0, -4, 5), "less than minimum value 0"),
    ((TEXT, 3.0, 0, 0), "less than minimum value 1"),
    ((TEXT, 99.0, 0, 5), "greater than maximum value 10"),
])
def test_bad_inputs_are_clear_errors(client, args, expected):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError) as info:
        client.predict(*args, api_name="/generate")
    message = str(info.value).lower()
    assert INTERNAL not in message and "traceback" not in message
    assert expected in message, message
