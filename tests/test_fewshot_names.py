"""Few-shot inputs users really send (issue 15): class names with Unicode forms, math-text and
Markdown characters or the table's own column names; inverted handwriting; ties; tiny images.
Engine and tab handlers called directly (no server): the app's API and the CLI have their own
files (test_app_fewshot_names.py, test_cli_fewshot_names.py)."""
from __future__ import annotations

import io
import unicodedata

import gradio as gr
import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image, ImageDraw, ImageOps

from engine.errors import UserInputError
from engine.factory import get_pipeline
from engine.fewshot.handwriting import DRAWING_LIMITS
from engine.fewshot.omniglot import INVERTED_NOTE, drawing_gray, preprocess_drawing
from engine.fewshot.photos import PHOTO_LIMITS
from engine.fewshot.support import (SupportSet, check_addition, read_support_folder,
                                    validate_support)
from engine.inputs.images import load_image, small_image_note
from engine.inputs.text import name_key, normalize_name

NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")
HW = EXAMPLES / "handwriting"
FS = EXAMPLES / "fewshot"


def _photos(cls: str) -> list[str]:
    return [str(p) for p in sorted((FS / "support" / cls).iterdir())]


def _queries() -> list[str]:
    return [str(FS / "query" / "cat_query.jpg"), str(FS / "query" / "coffee_query.jpg")]


def _inverted(path) -> Image.Image:
    return ImageOps.invert(load_image(path).image)


# -- names: one normal form, one duplicate key -------------------------------------------------
def test_nfc_and_nfd_cafe_are_one_name_and_spaces_are_trimmed():
    assert NFC != NFD  # the instance: two strings that look the same
    assert normalize_name(NFD) == normalize_name(NFC) == NFC
    assert normalize_name("  Cat \t  big ") == "Cat big"
    assert name_key("Cat ") == name_key("cat") == name_key("ＣＡＴ")  # full-width (NFKC)
    assert name_key("Cat") != name_key("Cap")


def test_support_set_merges_nfd_into_the_nfc_class_and_validation_refuses_key_duplicates():
    a, b = Image.new("RGB", (40, 40), "red"), Image.new("RGB", (40, 40), "blue")
    merged = SupportSet().add(NFC, [a]).add(NFD, [b])
    assert merged.names == (NFC,) and merged.counts() == [2]
    assert SupportSet().add(NFC, [a]).find(NFD.upper()) == NFC
    with pytest.raises(UserInputError, match="both named 'café'"):
        validate_support(SupportSet.from_classes([(NFC, [a]), (NFD, [b])]), PHOTO_LIMITS)
    with pytest.raises(UserInputError, match="differ only in case"):  # full-width = ASCII
        validate_support(SupportSet.from_classes([("Cat", [a]), ("ｃａｔ", [b])]),
                         DRAWING_LIMITS)


def test_add_time_check_uses_the_limits_photos_merge_case_drawings_refuse_it():
    img = Image.new("RGB", (40, 40))
    one = SupportSet().add("A", [img])
    assert check_addition(one, "a ", 1, PHOTO_LIMITS, merge_case=True) == "A"
    assert check_addition(one, "A", 1, DRAWING_LIMITS, merge_case=False) == "A"
    with pytest.raises(UserInputError, match="'A' and 'a' differ only in case"):
        check_addition(one, "a", 1, DRAWING_LIMITS, merge_case=False)
    twenty = SupportSet.from_classes([(f"s{i}", [img]) for i in range(20)])
    validate_support(twenty, DRAWING_LIMITS)  # 20 symbols are allowed ...
    with pytest.raises(UserInputError, match="already has 20 classes"):  # ... a 21st is not
        check_addition(twenty, "s20", 1, DRAWING_LIMITS, merge_case=False)
    ten = SupportSet.from_classes([("cat", [img] * 9)])
    with pytest.raises(UserInputError, match="would have 11 images"):
        check_addition(ten, "CAT", 2, PHOTO_LIMITS)


def test_support_folders_naming_one_class_are_refused_naming_both(tmp_path):
    for root, (first, second) in {"unicode": (NFC, NFD), "spaces": ("Cat", "Cat ")}.items():
        for name in (first, second):
            (tmp_path / root / name).mkdir(parents=True)
            Image.new("RGB", (40, 40)).save(tmp_path / root / name / "x.png")
        with pytest.raises(UserInputError, match="are one class name") as info:
            read_support_folder(tmp_path / root)
        assert "\\u0301" in str(info.value) or "'Cat '" in str(info.value)


# -- names shown verbatim: plots, tables, Markdown ----------------------------------------------
def test_dollar_and_markup_class_names_classify_and_show_verbatim():
    from demos import fewshot as fs
    support, *_ = fs.add_class(None, "Ba$$in", _photos("cat"))
    support, _, summary, *_ = fs.add_class(support, "coffee", _photos("coffee"))
    label, table, fig, _ = fs.classify(support, _queries(), None, "protonet",
                                       "efficientnet_lite0")
    assert label["Ba$$in"] > 0.9 and list(table["prediction"]) == ["Ba$$in", "coffee"]
    assert "p(Ba$$in)" in table.columns and "Ba&#36;&#36;in" in summary
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "support: Ba$$in" in legend
    fig.savefig(io.BytesIO(), format="png")  # math text would raise here (the error)
    # one more instance: every special at once, as a drawing's name
    from engine.viz import embedding_figure
    names = ["a_b^c\\d", "<b>bold</b> *x* $1"]
    fig = embedding_figure(np.zeros((2, 2)), [0, 1], np.ones((2, 2)), np.zeros((1, 2)), [1],
                           names, title="$x^2$")
    fig.savefig(io.BytesIO(), format="png")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][:2] == \
        [f"support: {n}" for n in names]


def test_escape_markdown_leaves_no_markup_character():
    from demos.common import escape_markdown
    out = escape_markdown("<b>x</b> _a_ *b* $$ \\ | `c` ^")
    assert not set(out) & set("<>_*$\\|`^") and "x" in out


@pytest.mark.parametrize("names", [("prediction", "query"), ("file", "p(query)")])
def test_class_names_equal_to_table_columns_keep_every_column(names):
    from demos import fewshot as fs
    support, *_ = fs.add_class(None, names[0], _photos("cat"))
    support, *_ = fs.add_class(support, names[1], _photos("coffee"))
    _, table, _, _ = fs.classify(support, _queries(), None, "protonet", "efficientnet_lite0")
    assert list(table.columns) == ["query", "file", "prediction",
                                   f"p({names[0]})", f"p({names[1]})"]
    assert list(table["query"]) == [1, 2]
    assert list(table["file"]) == ["cat_query.jpg", "coffee_query.jpg"]
    assert list(table["prediction"]) == list(names)


def test_photos_tab_merges_nfc_and_nfd_and_says_so_for_another_spelling():
    from demos import fewshot as fs
    support, *_ = fs.add_class(None, NFC, _photos("cat")[:1])
    support, _, summary, *_ = fs.add_class(support, NFD, _photos("cat")[1:2])
    assert support.names == (NFC,) and support.counts() == [2] and "existing" not in summary
    support, _, summary, *_ = fs.add_class(support, " CAFÉ ", _photos("cat")[2:3])
    assert support.counts() == [3] and "added to the existing class" in summary


def test_photos_tab_names_the_broken_file_and_its_input(cases_dir):
    from demos import fewshot as fs
    support = fs.load_example()[0]
    with pytest.raises(gr.Error) as info:
        fs.classify(support, _queries(), str(cases_dir / "junk_bytes.png"), "protonet",
                    "efficientnet_lite0")
    message = info.value.message
    assert "junk_bytes.png" in message and fs.QUERY_PHOTO_LABEL in message
    assert "Remove it" in message


def test_photos_tab_notes_a_tiny_query(cases_dir):
    from demos import fewshot as fs
    support = fs.load_example()[0]
    *_, details = fs.classify(support, None, str(cases_dir / "tiny_1x1.png"), "protonet",
                              "efficientnet_lite0")
    assert ("The query image 1 ('tiny_1x1.png') is very small (1×1 px); the answer may not "
            "mean anything.") in details
    # one more instance: a 20x20 support drawing, in the pipeline's notes (CLI and app alike)
    symbol = load_image(HW / "query" / "symbol_1_query.png").image
    support = SupportSet.from_classes([("a", [Image.new("RGB", (20, 20), "white")]),
                                       ("b", [symbol])])
    ImageDraw.Draw(support.images[0]).line([2, 2, 17, 17], fill="black", width=2)
    result = get_pipeline("handwriting", "omniglot-protonet")(
        support, [load_image(HW / "query" / "symbol_2_query.png").image])
    assert result.notes == ["The support image 1 ('a') is very small (20×20 px); the answer may "
                            "not mean anything."]
    assert small_image_note(Image.new("RGB", (32, 500))) is None


# -- inverted handwriting -----------------------------------------------------------------------
def test_inverted_drawing_becomes_the_same_model_input():
    path = HW / "query" / "symbol_3_query.png"
    plain, inverted = load_image(path).image, _inverted(path)
    assert drawing_gray(inverted)[1] and not drawing_gray(plain)[1]
    assert np.array_equal(preprocess_drawing(inverted).numpy(),
                          preprocess_drawing(plain).numpy())
    with pytest.raises(UserInputError, match="blank: no light stroke"):
        preprocess_drawing(Image.new("RGB", (50, 50), "black"))


@pytest.mark.parametrize("model", ["omniglot-protonet", "omniglot-matching"])
def test_inverted_bundled_queries_are_classified_like_the_originals(model):
    pipe = get_pipeline("handwriting", model)
    support = read_support_folder(HW / "support")
    paths = sorted((HW / "query").glob("*.png"))
    plain = pipe(support, [load_image(p).image for p in paths])
    inverted = pipe(support, [_inverted(p) for p in paths])
    assert [p.label for p in inverted.predictions] == [p.label for p in plain.predictions] \
        == ["symbol_1", "symbol_2", "symbol_3"]
    for a, b in zip(inverted.predictions, plain.predictions):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-6)
        assert f"Query image {inverted.predictions.index(a) + 1}: {INVERTED_NOTE}." in a.notes
    assert np.array_equal(inverted.query_inputs, plain.query_inputs)  # what the model saw


def test_inverted_support_drawings_are_inverted_too():
    pipe = get_pipeline("handwriting", "omniglot-protonet")
    support = read_support_folder(HW / "support")
    dark = SupportSet(support.names, tuple(ImageOps.invert(i.convert("RGB"))
                                           for i in support.images), support.labels)
    queries = [load_image(p).image for p in sorted((HW / "query").glob("*.png"))]
    result = pipe(dark, queries)
    assert [p.label for p in result.predictions] == ["symbol_1", "symbol_2", "symbol_3"]
    assert result.notes == [(f"Support images 1 ('symbol_1'), 2 ('symbol_1'), 3 ('symbol_2'), "
                             f"4 ('symbol_2'), 5 ('symbol_3'), 6 ('symbol_3'): {INVERTED_NOTE}.")]


def test_handwriting_tab_inverts_and_says_so():
    from demos import handwriting as hw
    support = hw.load_example()[0]
    path = HW / "query" / "symbol_2_query.png"
    dark = ImageOps.invert(load_image(path).image)
    buf = io.BytesIO()
    dark.save(buf, format="PNG")
    sketch = {"background": buf.getvalue(), "layers": [], "composite": buf.getvalue()}
    label, _, _, seen, details = hw.classify(support, sketch, "omniglot-protonet", 2, 0.4)
    assert label["symbol_2"] == max(label.values())
    assert "the drawing was inverted (light strokes on a dark background)" in details
    assert np.asarray(seen.convert("L"))[0, 0] == 255  # shown as the model saw it: dark on white
    # an inverted support drawing is noted when it is added
    _, _, summary, canvas = hw.add_drawing(SupportSet(), "s", sketch)
    assert "inverted" in summary and canvas.size == (hw.CANVAS_SIDE, hw.CANVAS_SIDE)


# -- handwriting names checked when added -------------------------------------------------------
def _drawing_value(draw) -> dict:
    img = Image.new("RGB", (100, 100), "white")
    draw(ImageDraw.Draw(img))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return {"background": None, "layers": [], "composite": buf.getvalue()}


def test_handwriting_add_refuses_a_case_duplicate_and_a_21st_symbol_at_once():
    from demos import handwriting as hw
    line = _drawing_value(lambda d: d.line([20, 20, 80, 80], fill="black", width=6))
    support, *_ = hw.add_drawing(None, "A", line)
    with pytest.raises(gr.Error, match="'A' and 'a' differ only in case"):
        hw.add_drawing(support, "a", line)
    support, *_ = hw.add_drawing(support, NFD, line)
    support, *_ = hw.add_drawing(support, NFC + " ", line)  # the same symbol
    assert support.names == ("A", NFC) and support.counts() == [1, 2]
    for i in range(18):
        support, *_ = hw.add_drawing(support, f"s{i}", line)
    with pytest.raises(gr.Error, match="already has 20 classes"):
        hw.add_drawing(support, "one more", line)


# -- ties ----------------------------------------------------------------------------------------
def test_maml_with_zero_steps_is_a_tie_never_a_confident_label():
    from demos import handwriting as hw
    from demos.common import TIE_HEADING
    pipe = get_pipeline("handwriting", "omniglot-maml")
    support = read_support_folder(HW / "support")
    query = load_image(HW / "query" / "symbol_2_query.png").image
    pred = pipe(support, [query], maml_steps=0).predictions[0]
    assert pred.tied == ["symbol_1", "symbol_2", "symbol_3"] and pred.answer is None
    assert pred.notes[0].startswith("No class is preferred")
    label, *_ = hw.classify(support, None, "omniglot-maml", 0, 0.4, example=1)
    assert label.label == TIE_HEADING
    assert {c.label: round(c.confidence, 3) for c in label.confidences} == {
        "symbol_1": 0.333, "symbol_2": 0.333, "symbol_3": 0.333}


def test_identical_prototypes_are_a_tie_in_the_photos_tab():
    from demos import fewshot as fs
    one = _photos("cat")[:1]
    support, *_ = fs.add_class(None, "left", one)
    support, *_ = fs.add_class(support, "right", one)
    label, table, _, details = fs.classify(support, _queries()[:1], None, "protonet",
                                           "efficientnet_lite0")
    assert label.label == "no class is preferred (tie)"
    assert table["prediction"][0] == "no class preferred (left, right)"
    assert "No class is preferred" in details
