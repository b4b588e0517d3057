"""The "Scenes" sources of the Caption and Describe-the-changes tabs through gradio_client:
/scene_caption, /scene_attention, /scene_caption_upload and /scene_change (issue 10)."""
from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

from demos.common import INTERNAL_ERROR

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client
    return Client(app_url, verbose=False)


def _image(value) -> np.ndarray:
    """An image output as gradio_client returns it (a path, or a dict with one)."""
    path = value if isinstance(value, str) else (value.get("path") or value.get("value"))
    if isinstance(path, dict):
        path = path.get("path")
    return np.asarray(Image.open(path).convert("RGB"))


def _words(chips) -> list[str]:
    """The caption's words from the HighlightedText value."""
    items = chips.get("value", chips) if isinstance(chips, dict) else chips
    return [(c["token"] if isinstance(c, dict) else c[0]).strip() for c in items]


def test_scene_caption_shows_a_learned_caption_with_the_truth_and_tags(client):
    image, chips, details, *_ = client.predict(7, "greedy", 0, api_name="/scene_caption")
    words = _words(chips)
    assert len(words) > 5 and words[-1] == "."
    assert any(w in ("cube", "sphere", "cylinder") for w in words)
    assert _image(image).shape == (256, 256, 3)
    assert "Ground truth:" in details and "Scene parser" in details


def test_scene_caption_is_the_same_for_the_same_seed(client):
    a = client.predict(11, "nucleus", 3, api_name="/scene_caption")
    b = client.predict(11, "nucleus", 3, api_name="/scene_caption")
    assert _words(a[1]) == _words(b[1])
    assert np.array_equal(_image(a[0]), _image(b[0]))


def test_scene_attention_gives_each_words_own_map(client):
    _, chips, _ = client.predict(7, "greedy", 0, api_name="/scene_caption")[:3]
    words = _words(chips)
    nouns = [k for k, w in enumerate(words) if w in ("cube", "sphere", "cylinder")]
    first, second = nouns[0], nouns[-1]
    map1, word1 = client.predict(7, "greedy", 0, first, api_name="/scene_attention")
    map2, word2 = client.predict(7, "greedy", 0, second, api_name="/scene_attention")
    assert word1 == words[first] and word2 == words[second]
    assert not np.array_equal(_image(map1), _image(map2))


@pytest.mark.parametrize("seed", [-3, 2 ** 40])
def test_a_bad_scene_seed_is_a_clear_message(client, seed):
    with pytest.raises(Exception) as info:
        client.predict(seed, "greedy", 0, api_name="/scene_caption")
    message = str(info.value)
    # refused by the Number box's range (Gradio's own message) or by the engine's seed rule
    assert re.search(r"seed|less than minimum|greater than maximum", message), message
    assert INTERNAL_ERROR not in message


def test_an_uploaded_photo_is_captioned_and_told_it_is_a_scene_world_model(client):
    from gradio_client import handle_file
    _, chips, details, *_ = client.predict(handle_file(str(EXAMPLES / "cat.jpg")), "greedy", 0,
                                           api_name="/scene_caption_upload")
    assert _words(chips)
    assert "trained only on rendered scenes" in details


def test_a_corrupt_upload_is_refused_without_a_trace(client, cases_dir):
    from gradio_client import handle_file
    with pytest.raises(Exception) as info:
        client.predict(handle_file(str(cases_dir / "junk_bytes.png")), "greedy", 0,
                       api_name="/scene_caption_upload")
    message = str(info.value)
    assert INTERNAL_ERROR not in message and "Traceback" not in message
    assert "image" in message.lower()


@pytest.mark.parametrize("kind", ["color", "drop", "distractor"])
def test_scene_change_shows_duda_both_maps_and_the_truth(client, kind):
    before, after, before_map, after_map, details, answer = client.predict(
        5, kind, api_name="/scene_change")
    assert answer["change_type"] == kind and answer["caption"]
    assert answer["truth"] and f"Ground truth** ({kind})" in details
    b, bm, am = _image(before), _image(before_map), _image(after_map)
    assert b.shape == bm.shape == am.shape == (256, 256, 3)
    assert not np.array_equal(b, bm)            # the map is drawn over the image
    assert not np.array_equal(_image(before), _image(after))


def test_scene_change_refuses_an_unknown_type_clearly(client):
    with pytest.raises(Exception) as info:
        client.predict(5, "teleport", api_name="/scene_change")
    message = str(info.value)
    # refused by the dropdown (Gradio lists the choices) or by the engine (it lists them too)
    assert "teleport" in message and "distractor" in message, message
    assert INTERNAL_ERROR not in message
