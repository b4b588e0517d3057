"""Issue 15 (items 1, 2, 8, 9, 10) through gradio_client against the served app: colour-keyed
transparency, semi-transparent paint, unreadable zip members and macOS litter in a gallery
upload, a scriptable gallery selection, and every endpoint called in a fresh session."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image
from test_app_api import LIST_COMPONENTS, UPLOAD_COMPONENTS, _default, upload_value
from test_input_kinds import _helmet_layer, framed_cat, png_bytes, zip_with

from demos.common import INTERNAL_ERROR

pytestmark = pytest.mark.server
SEGMENT = EXAMPLES / "segment"


def _client(app_url):
    from gradio_client import Client
    return Client(app_url, verbose=False)


def _path(item) -> str:
    """Local path of a file gradio_client downloaded: a str, {"path": ...}, or a gallery item
    {"image": path or {"path": ...}, "caption": ...}."""
    if isinstance(item, dict):
        item = item["image"] if "image" in item else item["path"]
    return item["path"] if isinstance(item, dict) else item


def test_caption_of_a_colour_keyed_border_equals_the_alpha_one(app_url, tmp_path):
    from gradio_client import handle_file
    client = _client(app_url)
    keyed, alpha = framed_cat(tmp_path)
    answers = [client.predict(handle_file(str(p)), "efficientnet_lite0", "beam", 0, 5,
                              api_name="/caption") for p in (keyed, alpha)]
    (cap_k, tags_k, _, _), (cap_a, tags_a, _, _) = answers
    assert cap_k == cap_a and "cat" in tags_k["label"]
    assert [c["label"] for c in tags_k["confidences"]] == [c["label"] for c in
                                                           tags_a["confidences"]]


def test_edit_masked_with_a_40_percent_brush_edits_the_painted_region(app_url, tmp_path):
    from gradio_client import handle_file
    client = _client(app_url)
    infos = []
    for alpha in (100, 255):
        editor = {"background": handle_file(str(EXAMPLES / "astronaut.jpg")),
                  "layers": [handle_file(str(_helmet_layer(tmp_path, alpha)))],
                  "composite": None}
        *_, info, details = client.predict(editor, "gold", "efficientnet_lite0", 20, 7.5, 1.5,
                                           0, api_name="/edit_masked")
        assert "Nothing was painted" not in details and info["target"] == "the painted region"
        infos.append(info)
    assert infos[0]["changed_fraction"] == infos[1]["changed_fraction"] < 0.2


def test_segment_accepts_a_40_percent_painted_support(app_url, tmp_path):
    from gradio_client import handle_file
    rgba = np.asarray(Image.open(SEGMENT / "support_layer.png").convert("RGBA")).copy()
    rgba[..., 3] = np.where(rgba[..., 3] > 0, 100, 0)
    layer = tmp_path / "faint.png"
    Image.fromarray(rgba, "RGBA").save(layer)
    support = {"background": handle_file(str(SEGMENT / "support.jpg")),
               "layers": [handle_file(str(layer))], "composite": None}
    _, _, area = _client(app_url).predict(support, None, None, None, None,
                                          handle_file(str(SEGMENT / "query.jpg")),
                                          "efficientnet_lite0", 0.5, api_name="/segment")
    assert 5 < float(area.split("**Predicted area:** ")[1].split(" %")[0]) < 40


def test_gallery_zips_with_unreadable_members_index_the_good_ones(app_url, tmp_path):
    from gradio_client import handle_file
    zips = []
    for kind, patch in [("encrypted", {"flags": 0x1}), ("crc", {"flip_byte": True}),
                        ("deflate64", {"method": 9})]:
        zips.append(zip_with(tmp_path / f"{kind}.zip",
                             {f"{kind}_good.png": png_bytes((20, 40, 200)),
                              f"{kind}_bad.png": png_bytes((200, 40, 20))},
                             {f"{kind}_bad.png": patch}))
    zips.append(zip_with(tmp_path / "mac.zip", {"mac/cat.png": png_bytes((90, 90, 90)),
                                                "__MACOSX/mac/._cat.png": b"\x00\x05\x16\x07",
                                                "mac/.DS_Store": b"Bud1",
                                                "mac/Thumbs.db": b"\xd0\xcf"}))
    status = _client(app_url).predict([handle_file(str(z)) for z in zips],
                                      "efficientnet_lite0", api_name="/retrieval_index_gallery")
    assert "4 images indexed" in status and "3 file(s) skipped" in status
    assert "encrypted_bad.png skipped: encrypted" in status
    assert "crc_bad.png skipped: corrupt" in status
    assert "deflate64_bad.png skipped: unsupported compression (Deflate64" in status
    assert "._cat" not in status and "Thumbs" not in status and "DS_Store" not in status


def test_retrieval_select_takes_a_rank_and_needs_a_search_first(app_url):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    client = _client(app_url)
    with pytest.raises(AppError, match="run a search first"):
        client.predict(1, api_name="/retrieval_select")
    gallery, *_ = client.predict(handle_file(str(EXAMPLES / "cat.jpg")),
                                           "in black and white", 0.5, 5, "efficientnet_lite0",
                                           api_name="/retrieve")
    chosen = client.predict(2, api_name="/retrieval_select")
    second = np.asarray(Image.open(_path(gallery[1])).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(_path(chosen)).convert("RGB")), second)
    for bad in (0, 6):
        with pytest.raises(AppError, match="1 to 5"):
            client.predict(bad, api_name="/retrieval_select")


def test_every_endpoint_in_a_fresh_session_answers_or_refuses_clearly(app_url):
    """No event relies on state or event data a client cannot send: called in a new session
    with its defaults (a photo in each upload), each gives a full answer or a user message."""
    import app_server
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    def tracebacks() -> int:
        return app_server.current.log_path.read_text(errors="replace").count("Traceback")

    logged = tracebacks()
    api = Client(app_url, verbose=False).view_api(return_format="dict",
                                                  print_info=False)["named_endpoints"]
    assert "/retrieval_select" in api
    for endpoint, info in api.items():
        client = Client(app_url, verbose=False)
        args = [_default(p) for p in info["parameters"]]
        for i, p in enumerate(info["parameters"]):
            if p["component"].lower() in UPLOAD_COMPONENTS:
                args[i] = upload_value(p["component"], EXAMPLES / "cat.jpg",
                                       p["component"].lower() in LIST_COMPONENTS)
        try:
            client.predict(*args, api_name=endpoint)
        except AppError as exc:
            message = str(exc)
            assert INTERNAL_ERROR.lower() not in message.lower(), (endpoint, message)
            assert "traceback" not in message.lower() and message.strip() not in ("", "Error")
        assert tracebacks() == logged, endpoint  # nothing failed inside Gradio or the app
