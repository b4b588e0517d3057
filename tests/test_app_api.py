"""The served app through gradio_client: every api_name, and every upload slot of every tab
fed every case of ../shared/cases. Slots are discovered from the app's own API description, so a
tab added later is covered without editing this file."""
from __future__ import annotations

import numpy as np
import pytest
from cases import ACCEPTED, REFUSED
from conftest import EXAMPLES

from demos.common import INTERNAL_ERROR

pytestmark = pytest.mark.server

UPLOAD_COMPONENTS = {"image", "file", "imageeditor", "gallery"}  # lower-case names
LIST_COMPONENTS = {"file", "gallery"}
#: What the app shows for an internal error (a bug): a user's mistake must never get it.
GENERIC_FAILURE = INTERNAL_ERROR.lower()
#: Endpoints whose image is a drawing (dark strokes on white): an inkless image is "blank".
DRAWING_ENDPOINTS = {"/handwriting_add", "/handwriting_classify"}
#: Calls that put a session in the state an endpoint needs (no arguments, same session).
SETUP = {"/fewshot_classify": ["/fewshot_load_example"],
         "/handwriting_classify": ["/handwriting_load_example"]}


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def api(client) -> dict:
    return client.view_api(return_format="dict", print_info=False)["named_endpoints"]


def _default(param: dict):
    if param.get("parameter_has_default"):
        return param["parameter_default"]
    component = param["component"]
    if component in ("Textbox",):
        return "cat"
    if component in ("Number", "Slider"):
        return 1
    return None


def upload_slots(api: dict) -> list[tuple[str, int, bool]]:
    """(api_name, parameter index, takes a list) for every upload parameter of the app."""
    slots = []
    for name, info in api.items():
        for i, p in enumerate(info["parameters"]):
            if p["component"].lower() in UPLOAD_COMPONENTS:
                slots.append((name, i, p["component"].lower() in LIST_COMPONENTS
                              and "list" in str(p.get("python_type", {}).get("type", ""))))
    return slots


def call_slot(client, api, endpoint: str, index: int, as_list: bool, path):
    args = [_default(p) for p in api[endpoint]["parameters"]]
    for i, p in enumerate(api[endpoint]["parameters"]):  # other upload slots: a good photo
        if p["component"].lower() in UPLOAD_COMPONENTS and i != index:
            args[i] = upload_value(p["component"], EXAMPLES / "cat.jpg",
                                   p["component"].lower() in LIST_COMPONENTS)
    args[index] = upload_value(api[endpoint]["parameters"][index]["component"], path, as_list)
    return client.predict(*args, api_name=endpoint)


def upload_value(component: str, path, as_list: bool = False):
    """What gradio_client sends for ``path`` in an upload component."""
    from gradio_client import handle_file
    if component.lower() == "imageeditor":  # a drawing/mask editor: the file as background and result
        return {"background": handle_file(str(path)), "layers": [],
                "composite": handle_file(str(path))}
    return [handle_file(str(path))] if as_list else handle_file(str(path))


def test_every_tab_has_upload_slots(api):
    slots = upload_slots(api)
    endpoints = {s[0] for s in slots}
    assert {"/caption", "/fewshot_add_class", "/fewshot_classify", "/handwriting_add",
            "/handwriting_classify", "/change", "/edit", "/edit_masked", "/retrieve",
            "/retrieval_index_gallery", "/segment"} <= endpoints


def test_caption_api_names_the_cat(client):
    from gradio_client import handle_file
    caption, tags, heatmap, details = client.predict(
        handle_file(str(EXAMPLES / "cat.jpg")), "efficientnet_lite0", "beam", 0, 5,
        api_name="/caption")
    assert "cat" in caption and "cat" in tags["label"]
    assert heatmap and "efficientnet_lite0" in details


def test_caption_with_hub_model_offline_says_so_and_still_captions(client):
    from gradio_client import handle_file
    caption, _, _, details = client.predict(
        handle_file(str(EXAMPLES / "cat.jpg")), "blip-base", "beam", 0, 5, api_name="/caption")
    assert "cat" in caption and "cannot be reached" in details


def test_fewshot_endpoints_build_use_and_clear_a_support_set(app_url):
    from gradio_client import Client, handle_file
    c = Client(app_url, verbose=False)
    gallery, summary, _ = c.predict(api_name="/fewshot_load_example")
    assert len(gallery) == 6 and "2-way 3-shot" in summary
    _, summary, _, name, files, photo = c.predict(
        "dog", [handle_file(str(EXAMPLES / "grace_hopper.jpg"))], None,
        api_name="/fewshot_add_class")
    assert "3-way" in summary and (name, files, photo) == ("", None, None)  # ready for the next
    _, summary, _ = c.predict("dog", api_name="/fewshot_remove_class")
    assert "2-way" in summary
    label, table, plot, details = c.predict(
        [handle_file(str(EXAMPLES / "fewshot" / "query" / "cat_query.jpg"))],
        handle_file(str(EXAMPLES / "fewshot" / "query" / "coffee_query.jpg")), "protonet",
        "efficientnet_lite0", api_name="/fewshot_classify")
    assert label["label"] == "cat"
    assert table["headers"][:3] == ["query", "file", "prediction"]
    assert [row[1:3] for row in table["data"]] == [["cat_query.jpg", "cat"],
                                                   ["coffee_query.jpg", "coffee"]]
    assert plot
    gallery, summary, _ = c.predict(api_name="/fewshot_clear")
    assert gallery == [] and "empty" in summary


def test_sessions_do_not_share_support_sets(app_url):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    a, b = Client(app_url, verbose=False), Client(app_url, verbose=False)
    a.predict(api_name="/fewshot_load_example")
    with pytest.raises(AppError, match="0 class"):
        b.predict([handle_file(str(EXAMPLES / "cat.jpg"))], None, "protonet",
                  "efficientnet_lite0", api_name="/fewshot_classify")
    label, *_ = a.predict([handle_file(str(EXAMPLES / "cat.jpg"))], None, "cosine",
                          "efficientnet_lite0", api_name="/fewshot_classify")
    assert label["label"] == "cat"


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_every_upload_slot_refuses_bad_files_clearly(client, api, cases_dir, case):
    from gradio_client.exceptions import AppError
    for endpoint, index, as_list in upload_slots(api):
        with pytest.raises(AppError) as info:
            call_slot(client, api, endpoint, index, as_list, cases_dir / case)
        message = str(info.value).lower()
        assert GENERIC_FAILURE not in message, (endpoint, message)
        assert all(w in message for w in REFUSED[case]), (endpoint, message)


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_every_upload_slot_accepts_odd_but_valid_images(app_url, api, cases_dir, case):
    from gradio_client import Client
    client = Client(app_url, verbose=False)  # a fresh session per case
    from gradio_client.exceptions import AppError

    from engine.inputs.images import load_image
    gray = np.asarray(load_image(cases_dir / case).image.convert("L"))
    for endpoint, index, as_list in upload_slots(api):
        for step in SETUP.get(endpoint, []):
            client.predict(api_name=step)
        dark_canvas = (gray < 128).mean() > 0.5  # light strokes on a dark canvas: inverted
        no_ink = gray.max() < 128 if dark_canvas else gray.min() >= 128
        if endpoint in DRAWING_ENDPOINTS and no_ink:  # a blank drawing (light or dark)
            with pytest.raises(AppError, match="blank"):
                call_slot(client, api, endpoint, index, as_list, cases_dir / case)
            continue
        result = call_slot(client, api, endpoint, index, as_list, cases_dir / case)
        outputs = result if isinstance(result, (tuple, list)) and len(api[endpoint]["returns"]) > 1 \
            else (result,)
        assert len(outputs) == len(api[endpoint]["returns"]), endpoint  # a full answer


def text_slots(api: dict) -> list[tuple[str, int]]:
    """(api_name, parameter index) for every free-text parameter of the app."""
    return [(name, i) for name, info in api.items()
            for i, p in enumerate(info["parameters"]) if p["component"] == "Textbox"]


@pytest.mark.parametrize("key", ["empty", "whitespace", "long_numbers", "very_long",
                                 "emoji_and_rtl", "control_chars"])
def test_every_text_slot_handles_the_text_cases(app_url, api, case_texts, key):
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    client = Client(app_url, verbose=False)
    assert text_slots(api), "the app has no text input to test"
    for endpoint, index in text_slots(api):
        for step in SETUP.get(endpoint, []):
            client.predict(api_name=step)
        args = [_default(p) for p in api[endpoint]["parameters"]]
        for i, p in enumerate(api[endpoint]["parameters"]):
            if p["component"].lower() in UPLOAD_COMPONENTS:
                as_list = p["component"].lower() in LIST_COMPONENTS
                args[i] = upload_value(p["component"], EXAMPLES / "cat.jpg", as_list)
        args[index] = case_texts[key]
        try:
            result = client.predict(*args, api_name=endpoint)
        except AppError as exc:  # a clear refusal; only empty text *must* be refused
            message = str(exc).lower()
            assert GENERIC_FAILURE not in message and "traceback" not in message, (endpoint,
                                                                                   message)
            assert "error" != message.strip(), endpoint
            continue
        assert key not in ("empty", "whitespace"), f"{endpoint} accepted {key} text"
        outputs = result if isinstance(result, (tuple, list)) and len(api[endpoint]["returns"]) > 1 \
            else (result,)
        assert len(outputs) == len(api[endpoint]["returns"]), endpoint  # a full answer


def test_server_survives_all_cases(client):
    from gradio_client import handle_file
    caption, *_ = client.predict(handle_file(str(EXAMPLES / "coffee.jpg")), "efficientnet_lite0",
                                 "beam", 0, 3, api_name="/caption")
    assert caption


def test_handwriting_endpoints_classify_held_out_symbols(app_url):
    from gradio_client import Client
    c = Client(app_url, verbose=False)
    _, summary = c.predict(api_name="/handwriting_load_example")
    assert "symbol_1 (2)" in summary
    query = EXAMPLES / "handwriting" / "query" / "symbol_1_query.png"
    probs, plot, losses, seen, details = c.predict(
        upload_value("imageeditor", query), "omniglot-protonet", 5, 0.4,
        api_name="/handwriting_classify")
    assert probs["label"] == "symbol_1" and plot and seen
    assert "omniglot-protonet" in details
    _, summary = c.predict(api_name="/handwriting_clear")
    assert "No drawings" in summary


def test_concurrent_requests_from_two_sessions_are_both_correct(app_url):
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    def caption(photo: str) -> str:
        c = Client(app_url, verbose=False)
        return c.predict(handle_file(str(EXAMPLES / photo)), "efficientnet_lite0", "beam", 0, 3,
                         api_name="/caption")[1]["label"]

    def fewshot(query: str) -> str:
        c = Client(app_url, verbose=False)
        c.predict(api_name="/fewshot_load_example")
        return c.predict([handle_file(str(EXAMPLES / "fewshot" / "query" / query))], None,
                         "linear", "efficientnet_lite0", api_name="/fewshot_classify")[0]["label"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        jobs = [pool.submit(caption, "cat.jpg"), pool.submit(caption, "coffee.jpg"),
                pool.submit(fewshot, "cat_query.jpg"), pool.submit(fewshot, "coffee_query.jpg")]
        cat, coffee, q_cat, q_coffee = [j.result(timeout=300) for j in jobs]
    assert "cat" in cat and coffee in ("espresso", "cup", "coffee mug")
    assert (q_cat, q_coffee) == ("cat", "coffee")
