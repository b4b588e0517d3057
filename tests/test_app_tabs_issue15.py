"""Issue 15 in the Caption, Edit and Retrieve tabs through gradio_client against the served app:
object words in any script (7), objects not in the photo (14), small images and unknown words
(16), "1 image indexed" (18)."""
from __future__ import annotations

import pytest
from app_server import app_url  # noqa: F401  (session fixture: the app on a free port)
from conftest import EXAMPLES
from PIL import Image

pytestmark = pytest.mark.server
OPTIONS = ("efficientnet_lite0", 20, 7.5, 1.5, 0)  # model, steps, guidance x2, seed


@pytest.fixture(scope="module")
def client(app_url):  # noqa: F811
    from gradio_client import Client
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def tiny_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "one_pixel.png"
    Image.new("RGB", (1, 1), (30, 140, 200)).save(path)
    return path


def _edit(client, photo, text):
    from gradio_client import handle_file
    return client.predict(handle_file(str(photo)), text, *OPTIONS, api_name="/edit")


@pytest.mark.parametrize("photo,text,message", [
    ("cat.jpg", "make the 猫 red", "I don't know what '猫' is"),  # was: the whole image
    ("cat.jpg", "make the кошка red", "I don't know what 'кошка' is"),  # own instance
    ("coffee.jpg", "make the dog red", "\"dog\" was not found in this image"),
    ("astronaut.jpg", "remove the flag", "\"flag\" was not found in this image"),
    ("astronaut.jpg", "make the motorcycle green", "\"motorcycle\" was not found in this image"),
    ("flower.jpg", "make the guitar blue", "\"guitar\" was not found in this image"),  # own
])
def test_edit_refuses_objects_it_cannot_read_or_find(client, photo, text, message):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError, match=message) as info:
        _edit(client, EXAMPLES / photo, text)
    assert "nothing was edited" in str(info.value)


def test_edit_reads_a_cat_emoji_as_cat(client):
    *_, info, details = _edit(client, EXAMPLES / "cat.jpg", "make the 🐈 red")
    assert info["target"] == "🐈" and 0.25 < info["changed_fraction"] < 0.9
    assert "'🐈' was read as 'cat' (its Unicode name)." in details


def test_edit_masked_with_nothing_painted_refuses_an_absent_object(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    editor = {"background": handle_file(str(EXAMPLES / "astronaut.jpg")), "layers": [],
              "composite": None}
    with pytest.raises(AppError, match="\"motorcycle\" was not found in this image"):
        client.predict(editor, "make the motorcycle green", *OPTIONS, api_name="/edit_masked")


def test_edit_whole_image_instructions_still_work(client):
    for text in ("make it grayscale", "make the whole image brighter"):
        *_, info, _ = _edit(client, EXAMPLES / "coffee.jpg", text)
        assert info["target"] == "the whole image" and info["changed_fraction"] > 0.9


def test_caption_and_edit_of_a_1x1_image_say_it_is_very_small(client, tiny_png):
    from gradio_client import handle_file
    note = "The image is very small (1×1 px); the answer may not mean anything."
    caption, _, _, details = client.predict(handle_file(str(tiny_png)), "efficientnet_lite0",
                                            "beam", 0, 5, api_name="/caption")
    assert caption and note in details
    *_, details = _edit(client, tiny_png, "turn it black and white")
    assert note in details
    caption, _, _, details = client.predict(handle_file(str(EXAMPLES / "cat.jpg")),
                                            "efficientnet_lite0", "beam", 0, 5,
                                            api_name="/caption")
    assert "very small" not in details


def test_retrieve_notes_unknown_words_and_a_tiny_reference(client, tiny_png):
    from gradio_client import handle_file
    cat = handle_file(str(EXAMPLES / "cat.jpg"))
    for text, start in (("asdf qwerty", "'asdf', 'qwerty' match nothing"),
                        ("lorem ipsum", "'lorem', 'ipsum' match nothing")):  # own instance
        gallery, _, details, *_ = client.predict(cat, text, 0.5, 5, "efficientnet_lite0",
                                                 api_name="/retrieve")
        assert len(gallery) == 5 and start in details
    _, _, details, *_ = client.predict(cat, "the same but with a dog", 0.8, 5,
                                       "efficientnet_lite0", api_name="/retrieve")
    assert "match" not in details
    _, _, details, *_ = client.predict(handle_file(str(tiny_png)), "a dog", 0.5, 5,
                                       "efficientnet_lite0", api_name="/retrieve")
    assert "The reference image is very small (1×1 px)" in details


def test_retrieve_results_have_short_captions_and_a_scores_table(client):
    from gradio_client import handle_file
    gallery, table, *_ = client.predict(handle_file(str(EXAMPLES / "cat.jpg")),
                                        "in black and white", 0.5, 3, "efficientnet_lite0",
                                        api_name="/retrieve")
    assert [g["caption"].split()[0] for g in gallery] == ["#1", "#2", "#3"]
    assert all(len(g["caption"]) <= 9 for g in gallery)  # "#10 +1.95" fits a thumbnail
    rank, name, score, explicit, implicit = table["data"][0]
    assert rank == 1 and name == "photo_cat_bw.jpg"
    assert abs(score - (explicit + implicit)) <= 0.011  # rounded to 2 decimals each


def test_one_indexed_image_is_singular(client):
    from gradio_client import handle_file
    status = client.predict([handle_file(str(EXAMPLES / "rocket.jpg"))], "efficientnet_lite0",
                            api_name="/retrieval_index_gallery")
    assert "1 image indexed" in status and "1 images" not in status
