"""Issue 15 through the served app (gradio_client): the change tab's types on the issue's
instances (a cup added onto the astronaut's suit, and taken away), its messages when images
are missing, and the segmentation tab's note for a query without the painted object."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from app_server import app_url  # noqa: F401  (session fixture: the app on a free port)
from conftest import EXAMPLES, ROOT
from PIL import Image

pytestmark = pytest.mark.server
sys.path.insert(0, str(ROOT / "assets"))


@pytest.fixture(scope="module")
def client(app_url):  # noqa: F811
    from gradio_client import Client
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def cup_pair(tmp_path_factory):
    """The astronaut photo and the same with the espresso cup pasted over the suit (files)."""
    from make_change_examples import _cutout, _open, _paste
    out = tmp_path_factory.mktemp("cup")
    astronaut = _open("astronaut.jpg")
    after = _paste(astronaut, _cutout(_open("coffee.jpg"), (290, 140), 125, 45), (100, 330))
    astronaut.save(out / "before.jpg", quality=92)
    after.save(out / "after.jpg", quality=92)
    return out / "before.jpg", out / "after.jpg"


def test_cup_on_the_suit_is_added_and_its_reverse_removed(client, cup_pair):
    from gradio_client import handle_file
    before, after = (handle_file(str(p)) for p in cup_pair)
    sentences, before_map, after_map, changes, _ = client.predict(
        before, after, "efficientnet_lite0", api_name="/change")
    assert [c["type"] for c in changes["changes"]] == ["added"] and "1. **added**" in sentences
    assert "replaced" not in sentences and before_map and after_map
    sentences, *_, changes, _ = client.predict(after, before, "efficientnet_lite0",
                                               api_name="/change")
    assert [c["type"] for c in changes["changes"]] == ["removed"], sentences


def test_missing_images_are_named_one_by_one(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    cup = handle_file(str(EXAMPLES / "changes" / "moved_cup_before.jpg"))
    with pytest.raises(AppError, match=r"^Please upload the before and after images\.$"):
        client.predict(None, None, "efficientnet_lite0", api_name="/change")
    with pytest.raises(AppError, match=r"Please upload the before image too"):
        client.predict(None, cup, "efficientnet_lite0", api_name="/change")
    with pytest.raises(AppError, match=r"Please upload the after image too"):
        client.predict(cup, None, "efficientnet_lite0", api_name="/change")


def _layer(tmp_path, mask_file):
    mask = np.asarray(Image.open(mask_file).convert("L")) >= 128
    layer = np.zeros(mask.shape + (4,), np.uint8)
    layer[mask] = (255, 0, 0, 255)
    path = tmp_path / "layer.png"
    Image.fromarray(layer, "RGBA").save(path)
    return path


def test_segment_says_when_the_query_probably_lacks_the_object(client, tmp_path):
    from gradio_client import handle_file
    segment = EXAMPLES / "segment"
    support = {"background": handle_file(str(segment / "support.jpg")),
               "layers": [handle_file(str(_layer(tmp_path, segment / "support_mask.png")))],
               "composite": None}
    cameraman = ROOT / "assets" / "galleries" / "default" / "photo_camera.jpg"
    _, _, area = client.predict(support, None, None, None, None, handle_file(str(cameraman)),
                                "efficientnet_lite0", 0.5, api_name="/segment")
    assert "probably does not contain the painted object" in area
    assert area.startswith("**Probably not in this query:**")
    _, _, area = client.predict(support, None, None, None, None,
                                handle_file(str(segment / "query.jpg")), "efficientnet_lite0",
                                0.5, api_name="/segment")
    assert "Predicted area" in area and "probably does not contain" not in area
