"""Issue 15 in the Caption, Edit and Retrieve engines: object words in any script (7), edits of
objects that are not in the photo (14), inputs the tabs should question (16). The pipelines are
the embedded ones the app uses (``engine.factory``; offline, small)."""
from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

from engine.editing.instruction import WHOLE_IMAGE, parse_instruction
from engine.errors import UserInputError
from engine.inputs.images import load_image, load_mask, small_image_note
from engine.inputs.text import english_words, words
from engine.retrieval.scoring import parse_modification


@pytest.fixture(scope="module")
def edit():
    from engine.factory import get_pipeline
    return get_pipeline("edit")


@pytest.fixture(scope="module")
def retrieve():
    from engine.factory import get_pipeline
    pipe = get_pipeline("retrieve")
    return pipe, pipe.default_index()


@pytest.fixture(scope="module")
def astronaut_image():
    return load_image(EXAMPLES / "astronaut.jpg").image


# --- 7: object words outside [a-z] ----------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("make the piñata red", ["make", "the", "piñata", "red"]),
    (unicodedata.normalize("NFD", "make the piñata red"), ["make", "the", "piñata", "red"]),
    ("make the 🐈 red", ["make", "the", "🐈", "red"]),
    ("make the 猫 red", ["make", "the", "猫", "red"]),
    ("a 🐈‍⬛, please!", ["a", "🐈‍⬛", "please"]),  # cat + zero-width joiner + black square
    ("the jack-o'-lantern", ["the", "jack-o'-lantern"]),
])
def test_words_keep_every_script_and_emoji(text, expected):
    assert words(text) == expected


def test_emoji_are_read_by_their_unicode_names_and_other_scripts_set_apart():
    read = english_words(["🐈", "猫", "кошка", "piñata"])
    assert read.words == ("cat", "piñata") and read.unknown == ("猫", "кошка")
    assert read.notes == ("'🐈' was read as 'cat' (its Unicode name).",)


@pytest.mark.parametrize("text,target", [
    ("make the piñata red", "piñata"),  # was "pi ata"
    ("make the 🐈 red", "🐈"),  # was the whole image
    ("make the 猫 red", "猫"),  # was the whole image
    ("make the кошка red", "кошка"),
])
def test_instruction_keeps_unicode_object_words(text, target):
    assert parse_instruction(text).target == target


def test_cat_emoji_recolours_the_cat_not_the_whole_image(edit, cat_image):
    r = edit(cat_image, "make the 🐈 red")
    assert r.target == "🐈" and r.operation == "recolour"
    assert 0.25 < r.changed_fraction < 0.9  # the cat, not 1.0
    assert "'🐈' was read as 'cat' (its Unicode name)." in r.notes


@pytest.mark.parametrize("text,word", [("make the 猫 red", "猫"),
                                       ("make the кошка red", "кошка")])  # own instance
def test_an_object_word_the_editor_cannot_read_edits_nothing_and_says_so(edit, cat_image, text,
                                                                         word):
    with pytest.raises(UserInputError) as info:
        edit(cat_image, text)
    msg = str(info.value)
    assert msg.startswith(f"I don't know what '{word}' is") and "nothing was edited" in msg
    assert "Caption + mask" in msg


# --- 14: edits of objects that are not there --------------------------------------------------

@pytest.mark.parametrize("photo,text,word", [
    ("coffee.jpg", "make the dog red", "dog"),  # recoloured cup, saucer and table (50.7 %)
    ("astronaut.jpg", "remove the flag", "flag"),  # smeared her face
    ("astronaut.jpg", "make the motorcycle green", "motorcycle"),  # recoloured the floor
    ("cat.jpg", "make the banana yellow", "banana"),  # own instance
])
def test_an_object_not_found_in_the_photo_is_not_edited(edit, photo, text, word):
    image = load_image(EXAMPLES / photo).image
    with pytest.raises(UserInputError) as info:
        edit(image, text)
    msg = str(info.value)
    assert msg.startswith(f"\"{word}\" was not found in this image, so nothing was edited")
    assert "probability 0.00" in msg and "paint a mask" in msg


def test_an_emoji_object_that_is_not_there_says_how_it_was_read(edit, coffee_image):
    with pytest.raises(UserInputError, match=r"^'🐕' was read as 'dog' \(its Unicode name\)\. "
                                             r"\"dog\" was not found in this image"):
        edit(coffee_image, "make the 🐕 red")


@pytest.mark.parametrize("text,op", [("make it grayscale", "grayscale"),
                                     ("make the whole image brighter", "brighten"),
                                     ("turn it black and white", "grayscale")])
def test_instructions_without_an_object_still_edit_the_whole_image(edit, coffee_image, text, op):
    r = edit(coffee_image, text)
    assert (r.operation, r.target) == (op, WHOLE_IMAGE) and r.changed_fraction > 0.9


def test_every_bundled_edit_example_still_edits():
    from demos.edit import INSTRUCTION_EXAMPLES, MASK_EXAMPLES
    from engine.factory import get_pipeline
    pipe = get_pipeline("edit")
    for photo, text in INSTRUCTION_EXAMPLES:
        r = pipe(load_image(EXAMPLES / photo).image, text)
        assert r.changed_fraction > 0.05 and r.changed_fraction_outside == 0.0, (photo, text)
    for photo, mask_file, caption in MASK_EXAMPLES:
        image = load_image(EXAMPLES / photo).image
        mask = load_mask(EXAMPLES / "edit" / mask_file, size=image.size)
        r = pipe(image, caption, mask)
        assert r.changed_fraction > 0.01 and r.changed_fraction_outside == 0.0, (photo, caption)


def test_the_presence_threshold_separates_the_measured_objects():
    """The figures of ``benchmarks.edit_presence`` behind MIN_PROBABILITY: every object the
    examples name edits; at most 3 of the 112 (photo, absent object) pairs pass."""
    from benchmarks.edit_presence import measure
    from engine.editing.localize import MIN_PROBABILITY
    summary = measure(MIN_PROBABILITY)["summary"]
    assert summary["example"]["edited"] == summary["example"]["pairs"] == 5
    assert summary["absent"]["pairs"] == 112 and summary["absent"]["edited"] <= 3


# --- 16: inputs the tabs should question -------------------------------------------------------

@pytest.mark.parametrize("size,note", [((1, 1), "The image is very small (1×1 px); the answer "
                                                 "may not mean anything."),
                                        ((31, 400), "The image is very small (31×400 px); the "
                                                    "answer may not mean anything."),
                                        ((32, 32), None), ((640, 480), None)])
def test_small_image_note_under_32_pixels_on_a_side(size, note):
    assert small_image_note(Image.new("RGB", size)) == note


def test_a_1x1_image_is_captioned_with_a_note():
    from engine.factory import get_pipeline
    result = get_pipeline("caption")(Image.new("RGB", (1, 1), (120, 130, 140)))
    assert result.notes == ["The image is very small (1×1 px); the answer may not mean "
                            "anything."]
    assert result.to_json()["notes"] == result.notes


def test_a_normal_photo_is_captioned_without_a_note(cat_image):
    from engine.factory import get_pipeline
    result = get_pipeline("caption")(cat_image)
    assert result.notes == [] and result.to_json()["notes"] == []


def test_a_tiny_image_is_edited_with_a_note(edit):
    r = edit(Image.new("RGB", (2, 3), (200, 30, 30)), "turn it black and white")
    assert "The image is very small (2×3 px); the answer may not mean anything." in r.notes


@pytest.mark.parametrize("text,words_", [("asdf qwerty", "'asdf', 'qwerty' match "),
                                         ("xyzzy", "'xyzzy' matches ")])  # own instance
def test_retrieval_text_that_matches_nothing_known_gets_a_note(retrieve, cat_image, text,
                                                               words_):
    pipe, index = retrieve
    r = pipe(cat_image, text, index=index, top_k=3)
    assert len(r.results) == 3
    assert any(n.startswith(words_ + "nothing the `efficientnet_lite0` model knows")
               for n in r.notes), r.notes


@pytest.mark.parametrize("text", ["the same but with a dog", "a bus instead",
                                  "in black and white", "espresso"])
def test_retrieval_text_of_known_words_gets_no_note(retrieve, cat_image, text):
    pipe, index = retrieve
    assert pipe(cat_image, text, index=index, top_k=3).notes == []


def test_retrieval_reads_emoji_and_leaves_out_other_scripts_with_a_note(retrieve, cat_image):
    pipe, index = retrieve
    r = pipe(cat_image, "the same but with a 🐕", index=index, top_k=3)
    assert r.content == "dog" and r.notes == ["'🐕' was read as 'dog' (its Unicode name)."]
    r = pipe(cat_image, "with a 猫", index=index, top_k=3)
    assert r.content == "" and r.notes[0] == ("I don't know what '猫' is: the text models read "
                                              "English words only, so it was left out of the "
                                              "search.")
    assert parse_modification("with a piñata").content == "piñata"


def test_a_1x1_reference_image_gets_a_note(retrieve):
    pipe, index = retrieve
    r = pipe(Image.new("RGB", (1, 1), (200, 0, 0)), "a dog", index=index, top_k=3)
    assert "The reference image is very small (1×1 px); the answer may not mean anything." \
        in r.notes and len(r.results) == 3


def test_the_hub_encoder_does_not_judge_words():
    from engine.retrieval.encoders import ClipEncoder
    assert ClipEncoder.unknown_words(None, ["asdf"]) == []  # CLIP reads any byte sequence


def test_unknown_words_keep_real_words_split_into_pieces(retrieve):
    encoder = retrieve[0].encoder
    assert encoder.unknown_words(["espresso", "teapot", "dog", "people"]) == []
    assert encoder.unknown_words(["asdf", "dog", "qwerty", "猫"]) == ["asdf", "qwerty", "猫"]
    assert np.isfinite(encoder.embed_text("asdf qwerty")[0]).all()


# --- 13: Caption + mask examples clicked right before the action (the handler's side) ----------

def test_an_action_sent_before_the_example_arrived_edits_the_example(tmp_path):
    from demos.edit import MASK_EXAMPLES, load_mask_example, mask_example_value, shown_example
    coffee = mask_example_value(2)  # what the canvas shows when the astronaut example is clicked
    value, caption, mode, state = load_mask_example(0, coffee, "green")
    assert value == mask_example_value(0) and caption == "nothing" == MASK_EXAMPLES[0][2]
    # the canvas and caption box had not received the example: they sent the coffee photo
    assert shown_example(coffee, "green", state) == (mask_example_value(0), "nothing")
    # same photo, another painted region: the helmet example clicked on the shuttle one
    _, _, _, state = load_mask_example(1, mask_example_value(0), "nothing")
    assert shown_example(mask_example_value(0), "nothing", state) == (mask_example_value(1),
                                                                      "gold")
    # an empty canvas (nothing uploaded yet)
    _, _, _, state = load_mask_example(2, None, "blue")
    assert shown_example(None, "blue", state) == (mask_example_value(2), "green")


def test_what_the_user_put_in_the_canvas_or_typed_after_an_example_is_kept(tmp_path):
    from demos.edit import caption_typed, load_mask_example, mask_example_value, shown_example
    _, _, _, state = load_mask_example(0, mask_example_value(2), "green")
    loaded = mask_example_value(0)  # the canvas drew the example: used as sent
    assert shown_example(loaded, "nothing", state) == (loaded, "nothing")
    own = {"background": str(EXAMPLES / "cat.jpg"), "layers": [], "composite": None}
    assert shown_example(own, "nothing", state)[0] == own  # the user's own upload
    assert shown_example(loaded, "green", caption_typed(state)) == (loaded, "green")  # typed
    assert shown_example(own, "red", None) == (own, "red")  # no example clicked
