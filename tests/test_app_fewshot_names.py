"""The Few-shot tab's endpoints (gradio_client, the served app) with the inputs of issue 15:
class names with "$", markup or the table's column names, "café" in NFC and NFD, "A" and "a",
inverted handwriting, a MAML tie, a 1x1 query and a broken file left in one query input."""
from __future__ import annotations

import unicodedata

import pytest
from conftest import EXAMPLES
from PIL import Image, ImageOps
from test_app_api import upload_value

pytestmark = pytest.mark.server

FS = EXAMPLES / "fewshot"
HW = EXAMPLES / "handwriting"
NFC, NFD = (unicodedata.normalize(f, "café") for f in ("NFC", "NFD"))


@pytest.fixture()
def client(app_url):
    from gradio_client import Client
    return Client(app_url, verbose=False)  # a fresh session (support set) per test


def _files(cls: str) -> list:
    from gradio_client import handle_file
    return [handle_file(str(p)) for p in sorted((FS / "support" / cls).iterdir())]


def _queries() -> list:
    from gradio_client import handle_file
    return [handle_file(str(FS / "query" / n)) for n in ("cat_query.jpg", "coffee_query.jpg")]


def _add(client, name: str, cls: str):
    gallery, summary, classes, *cleared = client.predict(name, _files(cls), None,
                                                         api_name="/fewshot_add_class")
    assert cleared == ["", None, None]  # the inputs are emptied for the next class
    return summary


def _classify(client, queries=None, photo=None):
    return client.predict(_queries() if queries is None else queries, photo, "protonet",
                          "efficientnet_lite0", api_name="/fewshot_classify")


@pytest.mark.parametrize("names", [("Ba$$in", "coffee"), ("<b>x</b>_1^", "c*of\\fee$")])
def test_class_names_with_math_and_markup_characters_come_back_verbatim(client, names):
    summary = _add(client, names[0], "cat")
    summary = _add(client, names[1], "coffee")
    assert "2-way 3-shot" in summary and "$" not in summary and "<b>" not in summary
    label, table, plot, details = _classify(client)
    assert label["label"] == names[0] and plot
    assert table["headers"] == ["query", "file", "prediction", f"p({names[0]})",
                                f"p({names[1]})"]
    assert [row[2] for row in table["data"]] == list(names)


@pytest.mark.parametrize("names", [("prediction", "query"), ("file", "p(query)")])
def test_class_names_equal_to_table_columns_keep_the_query_number_and_label(client, names):
    _add(client, names[0], "cat")
    _add(client, names[1], "coffee")
    _, table, _, _ = _classify(client)
    assert table["headers"] == ["query", "file", "prediction", f"p({names[0]})",
                                f"p({names[1]})"]
    assert [row[:3] for row in table["data"]] == [[1, "cat_query.jpg", names[0]],
                                                  [2, "coffee_query.jpg", names[1]]]


@pytest.mark.parametrize("first,second", [(NFC, NFD), ("Cat ", "CAT")])
def test_names_equal_up_to_unicode_form_case_and_spaces_are_one_class(client, first, second):
    _add(client, first, "cat")
    summary = _add(client, second, "cat")
    assert "1-way 6-shot" in summary
    if first == "Cat ":  # a visibly different spelling: the user is told where it went
        assert "added to the existing class 'Cat'" in summary


def test_handwriting_refuses_a_case_duplicate_when_the_drawing_is_added(client):
    from gradio_client.exceptions import AppError
    drawing = upload_value("imageeditor", HW / "query" / "symbol_1_query.png")
    gallery, summary, canvas = client.predict("A", drawing, api_name="/handwriting_add")
    assert "A (1)" in summary and len(gallery) == 1 and canvas  # a fresh canvas comes back
    with pytest.raises(AppError, match="'A' and 'a' differ only in case"):
        client.predict("a", drawing, api_name="/handwriting_add")
    client.predict(NFD, drawing, api_name="/handwriting_add")
    _, summary, _ = client.predict(NFC, drawing, api_name="/handwriting_add")
    assert "café (2)" in summary  # NFC and NFD: one symbol


@pytest.mark.parametrize("n", [1, 2, 3])
def test_inverted_bundled_queries_are_classified_as_the_originals(client, tmp_path, n):
    client.predict(api_name="/handwriting_load_example")
    src = HW / "query" / f"symbol_{n}_query.png"
    dark = tmp_path / f"dark_{n}.png"
    ImageOps.invert(Image.open(src).convert("RGB")).save(dark)
    answers = []
    for path in (src, dark):
        probs, plot, losses, seen, details = client.predict(
            upload_value("imageeditor", path), "omniglot-protonet", 2, 0.4,
            api_name="/handwriting_classify")
        answers.append(probs)
        assert seen and plot
    assert answers[0]["label"] == answers[1]["label"] == f"symbol_{n}"
    assert "the drawing was inverted (light strokes on a dark background)" in details


def test_maml_with_zero_steps_reports_a_tie(client):
    client.predict(api_name="/handwriting_load_example")
    probs, *_, details = client.predict(
        upload_value("imageeditor", HW / "query" / "symbol_2_query.png"), "omniglot-maml", 0,
        0.4, api_name="/handwriting_classify")
    assert probs["label"] == "no class is preferred (tie)"
    assert "No class is preferred" in details


def test_a_one_pixel_query_gets_a_note_and_a_broken_file_is_named_with_its_input(
        client, cases_dir):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    client.predict(api_name="/fewshot_load_example")
    *_, details = _classify(client, [], handle_file(str(cases_dir / "tiny_1x1.png")))
    assert ("The query image 1 ('tiny_1x1.png') is very small (1×1 px); the answer may not "
            "mean anything.") in details
    with pytest.raises(AppError) as info:  # a broken file left in the photo input
        _classify(client, photo=handle_file(str(cases_dir / "truncated_16.jpg")))
    message = str(info.value)
    assert "truncated_16.jpg" in message and "one more query photo" in message
