"""The Retrieve and Few-shot segmentation tabs through gradio_client against the served app."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

from engine.inputs.images import load_mask

pytestmark = pytest.mark.server
SEGMENT = EXAMPLES / "segment"


def _client(app_url):
    from gradio_client import Client
    return Client(app_url, verbose=False)


def test_retrieve_example_ranks_the_black_and_white_cat_first(app_url):
    from gradio_client import handle_file
    gallery, table, details, *_ = _client(app_url).predict(
        handle_file(str(EXAMPLES / "cat.jpg")), "in black and white", 0.5, 5,
        "efficientnet_lite0", api_name="/retrieve")
    assert len(gallery) == 5 and "photo_cat_bw" in str(gallery[0])
    assert table["headers"][:5] == ["rank", "image", "score", "explicit (text)",
                                    "implicit (reference)"]
    assert "black and white" in details


def test_uploaded_gallery_stays_in_its_session(app_url, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    archive = tmp_path / "mine.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(EXAMPLES / "coffee.jpg", "../../outside/coffee.jpg")  # name shown, never a path
        zf.writestr("notes.png", b"not an image")
    a, b = _client(app_url), _client(app_url)
    status = a.predict([handle_file(str(archive)), handle_file(str(EXAMPLES / "rocket.jpg"))],
                       "efficientnet_lite0", api_name="/retrieval_index_gallery")
    assert "2 images indexed" in status and "notes.png" in status
    _, table, _, *_ = a.predict(handle_file(str(EXAMPLES / "cat.jpg")), "a rocket", 0.5, 5,
                                "efficientnet_lite0", api_name="/retrieve")
    assert sorted(r[1] for r in table["data"]) == ["coffee.jpg", "rocket.jpg"]
    _, table_b, _, *_ = b.predict(handle_file(str(EXAMPLES / "cat.jpg")), "a rocket", 0.5, 5,
                                  "efficientnet_lite0", api_name="/retrieve")
    assert "coffee.jpg" not in [r[1] for r in table_b["data"]]  # b searches the default gallery
    with pytest.raises(AppError, match="empty"):
        a.predict(handle_file(str(EXAMPLES / "cat.jpg")), "   ", 0.5, 5, "efficientnet_lite0",
                  api_name="/retrieve")
    # another model chosen: the session gallery's own model is used, and the user is told
    _, table, details, *_ = a.predict(handle_file(str(EXAMPLES / "cat.jpg")), "a rocket", 0.5,
                                      5, "openclip-vit-b-32", api_name="/retrieve")
    assert sorted(r[1] for r in table["data"]) == ["coffee.jpg", "rocket.jpg"]
    assert "Your gallery was indexed with `efficientnet_lite0`; that model is used." in details
    status = a.predict(api_name="/retrieval_use_default")
    assert status.startswith("**Gallery:** the bundled default gallery (")
    _, table, _, *_ = a.predict(handle_file(str(EXAMPLES / "cat.jpg")), "a rocket", 0.5, 5,
                                "efficientnet_lite0", api_name="/retrieve")
    assert "coffee.jpg" not in [r[1] for r in table["data"]]  # back on the default gallery


def _layer(tmp_path, mask_file=None):
    mask = (np.asarray(Image.open(mask_file).convert("L")) >= 128) if mask_file else \
        np.zeros((224, 224), bool)
    layer = np.zeros(mask.shape + (4,), np.uint8)
    layer[mask] = (255, 0, 0, 255)
    path = tmp_path / ("layer.png" if mask_file else "empty_layer.png")
    Image.fromarray(layer, "RGBA").save(path)
    return path


def test_segment_example_through_the_api(app_url, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    client = _client(app_url)
    support = {"background": handle_file(str(SEGMENT / "support.jpg")),
               "layers": [handle_file(str(_layer(tmp_path, SEGMENT / "support_mask.png")))],
               "composite": None}
    overlay, heatmap, area = client.predict(support, None, None, None, None,
                                            handle_file(str(SEGMENT / "query.jpg")),
                                            "efficientnet_lite0", 0.5, api_name="/segment")
    assert overlay and heatmap and "Predicted area" in area
    fraction = float(area.split("**Predicted area:** ")[1].split(" %")[0])
    assert 5 < fraction < 40  # the horse covers 12.5 % of the query
    empty = {"background": handle_file(str(EXAMPLES / "cat.jpg")),
             "layers": [handle_file(str(_layer(tmp_path)))], "composite": None}
    with pytest.raises(AppError, match="Support 2: its mask is empty"):
        client.predict(support, empty, None, None, None, handle_file(str(SEGMENT / "query.jpg")),
                       "efficientnet_lite0", 0.5, api_name="/segment")
    whole = {"background": handle_file(str(SEGMENT / "support.jpg")), "layers": [],
             "composite": None}
    _, _, area = client.predict(whole, None, None, None, None,
                                handle_file(str(SEGMENT / "query.jpg")), "efficientnet_lite0",
                                0.5, api_name="/segment")
    assert "came without a mask layer: the whole image is taken as the object" in area
    loaded = client.predict(api_name="/segment_load_example")
    assert loaded[0]["background"] and loaded[0]["layers"] and loaded[-2]
    assert "Example loaded" in loaded[-1]
    layer = loaded[0]["layers"][0]
    layer = layer.get("path") if isinstance(layer, dict) else layer
    assert np.array_equal(load_mask(layer, size=(224, 224)),  # the layer is the exact mask
                          load_mask(SEGMENT / "support_mask.png", size=(224, 224)))
