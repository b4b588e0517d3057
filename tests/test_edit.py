"""Edit by text (offline editor): instructions, caption + mask, untouched pixels outside the
region, determinism, refusals, odd images, localisation, CLI. The pipeline is built from its
components here (the embedded EfficientNet-Lite0 and MiniLM); hub paths: tests/test_edit_hub.py."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from cases import ACCEPTED
from conftest import EXAMPLES, ROOT
from PIL import Image

from engine.colours import NAMED_COLOURS, rgb_to_lab
from engine.editing.instruction import BACKGROUND, WHOLE_IMAGE, parse_instruction
from engine.editing.localize import Localiser
from engine.editing.offline import OfflineEditor
from engine.editing.pipeline import EditPipeline
from engine.errors import UserInputError
from engine.inputs.images import load_image, load_mask

MASKS = EXAMPLES / "edit"


@pytest.fixture(scope="module")
def localiser() -> Localiser:
    from engine.models.class_text import ClassNameEmbeddings
    from engine.models.efficientnet import LITE0_PREPROCESS, EfficientNetLite0
    from engine.models.minilm import MiniLMEncoder
    backbone, text_encoder = EfficientNetLite0(pretrained=True).eval(), MiniLMEncoder()
    return Localiser(backbone, LITE0_PREPROCESS, text_encoder,
                     ClassNameEmbeddings(text_encoder, backbone.class_names))


@pytest.fixture(scope="module")
def edit(localiser) -> EditPipeline:
    """The offline edit pipeline (what engine.factory.get_pipeline("edit") builds)."""
    return EditPipeline(OfflineEditor(localiser))


def _arr(img):
    return np.asarray(img, np.int16)


@pytest.mark.parametrize("text,op,target,colour", [
    ("make the cat red", "recolour", "cat", "red"),
    ("Remove the coffee cup, please", "remove", "coffee cup", None),
    ("turn it black and white", "grayscale", WHOLE_IMAGE, None),
    ("blur the background", "blur", BACKGROUND, None),
    ("make the flower brighter", "brighten", "flower", None),
    ("darken the sky", "darken", "sky", None),
    ("make it look vintage", "sepia", WHOLE_IMAGE, None),
    ("paint the car GREEN", "recolour", "car", "green"),
])
def test_instructions_parse_into_operation_target_and_colour(text, op, target, colour):
    cmd = parse_instruction(text)
    assert (cmd.operation, cmd.target, cmd.colour) == (op, target, colour)


@pytest.mark.parametrize("text", ["make the cat bigger", "add a hat", "🙂 مرحبا", "12345"])
def test_text_the_editor_cannot_do_is_refused_with_what_it_can_do(edit, cat_image, text):
    with pytest.raises(UserInputError, match="It can: recolour"):
        edit(cat_image, text)


def test_recolour_cat_red_changes_only_the_cat_and_keeps_its_shading(edit, cat_image):
    r = edit(cat_image, "make the cat red")
    before, after = _arr(cat_image), _arr(r.image)
    assert r.image.size == cat_image.size and r.operation == "recolour" and r.target == "cat"
    assert r.changed_fraction_outside == 0.0
    assert (before[~r.mask] == after[~r.mask]).all()  # byte-identical outside
    assert 0.25 < r.mask.mean() < 0.9  # the cat fills much of the photo, not all of it
    lab_b = rgb_to_lab(before[r.mask] / 255.0)
    lab_a = rgb_to_lab(after[r.mask] / 255.0)
    red = rgb_to_lab(np.array(NAMED_COLOURS["red"]) / 255.0)
    hue = np.degrees(np.arctan2(lab_a[:, 2], lab_a[:, 1]))
    assert abs(np.median(hue) - np.degrees(np.arctan2(red[2], red[1]))) < 10
    assert np.corrcoef(lab_b[:, 0], lab_a[:, 0])[0, 1] > 0.9  # shading kept


def test_blur_the_background_leaves_the_cat_untouched(edit, cat_image):
    r = edit(cat_image, "blur the background")
    assert r.target == BACKGROUND and 0.05 < r.mask.mean() < 0.75
    before, after = _arr(cat_image), _arr(r.image)
    assert (before[~r.mask] == after[~r.mask]).all()
    gy = lambda a: np.abs(np.diff(a.mean(-1), axis=0))  # noqa: E731
    inside = r.mask[1:]
    assert gy(after)[inside].mean() < 0.8 * gy(before)[inside].mean()  # sharpness dropped


def test_grayscale_whole_image_and_same_inputs_same_bytes(edit, coffee_image):
    a = edit(coffee_image, "turn it black and white")
    b = edit(coffee_image, "turn it black and white")
    arr = np.asarray(a.image)
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
    assert a.image.tobytes() == b.image.tobytes() and a.changed_fraction > 0.9


def test_caption_and_mask_recolours_exactly_the_painted_region(edit):
    image = load_image(EXAMPLES / "astronaut.jpg").image
    mask = load_mask(MASKS / "astronaut_helmet_mask.png", size=image.size)
    r = edit(image, "gold", mask)
    assert r.target == "the painted region" and (r.mask == mask).all()
    assert r.changed_fraction_outside == 0.0
    assert (_arr(image)[~mask] == _arr(r.image)[~mask]).all()
    assert r.changed_fraction <= mask.mean() + 1e-9


def test_caption_nothing_fills_the_painted_region_from_its_surroundings(edit):
    image = load_image(EXAMPLES / "astronaut.jpg").image
    mask = load_mask(MASKS / "astronaut_shuttle_mask.png", size=image.size)
    r = edit(image, "nothing", mask)
    assert r.operation == "remove" and r.changed_fraction_outside == 0.0
    inside = _arr(r.image)[mask].astype(float)
    assert inside.std(0).mean() < 0.6 * _arr(image)[mask].astype(float).std(0).mean()


def test_a_caption_that_needs_new_content_is_refused_in_mask_mode(edit, cat_image):
    mask = np.zeros(cat_image.size[::-1], bool)
    mask[50:100, 50:100] = True
    with pytest.raises(UserInputError, match="cannot draw new objects"):
        edit(cat_image, "a dog wearing a hat", mask)


def test_an_edit_that_changes_nothing_is_refused_not_returned_as_edited(edit):
    gray = Image.new("RGB", (32, 24), (90, 90, 90))
    with pytest.raises(UserInputError, match="would not change any pixel"):
        edit(gray, "turn it black and white")


def test_bad_images_texts_and_masks_are_refused_as_user_input(edit, cat_image):
    with pytest.raises(UserInputError, match="mask is"):
        edit(cat_image, "red", np.ones((5, 5), bool))
    with pytest.raises(UserInputError, match="empty"):
        edit(cat_image, "red", np.zeros(cat_image.size[::-1], bool))
    with pytest.raises(UserInputError, match="instruction is empty"):
        edit(cat_image, "   ")
    with pytest.raises(ValueError, match="RGB") as info:  # a caller's bug, not a user's
        edit(cat_image.convert("L"), "make it red")
    assert not isinstance(info.value, UserInputError)


def test_an_unknown_edit_model_is_refused_by_the_factory_with_the_valid_names():
    from engine.factory import get_pipeline
    with pytest.raises(UserInputError, match="unknown edit model 'dall-e'; valid: "
                                             "efficientnet_lite0, instruct-pix2pix"):
        get_pipeline("edit", "dall-e")


def test_the_factory_builds_the_offline_editor_by_default():
    from engine.factory import get_pipeline
    pipe = get_pipeline("edit")
    assert isinstance(pipe, EditPipeline) and isinstance(pipe.editor, OfflineEditor)
    assert pipe.name == "efficientnet_lite0" and pipe is get_pipeline("edit")


def test_removing_a_painted_region_that_covers_the_whole_image_is_refused(edit):
    image = Image.new("RGB", (16, 12), (200, 30, 30))
    with pytest.raises(UserInputError, match="no background left"):
        edit(image, "nothing", np.ones((12, 16), bool))


def test_a_phrase_no_imagenet_class_matches_is_refused_with_the_closest_names(edit, cat_image):
    with pytest.raises(UserInputError, match="does not match any of the 1,000 ImageNet .*closest"):
        edit(cat_image, "make the quasar blue")


def test_results_report_the_model_and_the_matched_classes(edit, cat_image):
    r = edit(cat_image, "make the cat purple")
    assert r.model == edit.name == "efficientnet_lite0"
    assert r.to_json()["model"] == "efficientnet_lite0" and r.ms > 0
    assert r.notes and r.notes[0].startswith("\"cat\" matched ImageNet classes Egyptian cat")


class _CountingBackbone:
    """A backbone that counts its forward passes."""

    def __init__(self, backbone) -> None:
        self.backbone, self.calls = backbone, 0
        self.classifier_weight = backbone.classifier_weight

    def __call__(self, x):
        self.calls += 1
        return self.backbone(x)


def test_localisation_runs_the_backbone_once_per_image(localiser, cat_image):
    counting = _CountingBackbone(localiser.backbone)
    loc = Localiser(counting, localiser.preprocess, localiser.text_encoder,
                    localiser.class_text)(cat_image, "cat")
    assert counting.calls == 1
    assert loc.classes[:3] == ["Egyptian cat", "tiger cat", "tabby cat"]
    assert loc.similarity > 0.7 and 0.5 < loc.probability <= 1.0
    assert (loc.mask == localiser(cat_image, "cat").mask).all()
    main = Localiser(counting, localiser.preprocess, localiser.text_encoder,
                     localiser.class_text)(cat_image, None)
    assert counting.calls == 2 and main.classes == ["Egyptian cat"] and main.similarity == 1.0


def test_a_class_table_that_does_not_fit_the_classifier_is_a_programming_error(localiser):
    from engine.models.class_text import ClassNameEmbeddings
    with pytest.raises(ValueError, match="3 class names for a classifier of 1000 classes") as e:
        Localiser(localiser.backbone, localiser.preprocess, localiser.text_encoder,
                  ClassNameEmbeddings(localiser.text_encoder, ["a", "b", "c"]))
    assert not isinstance(e.value, UserInputError)


@pytest.mark.parametrize("name", ["tiny_1x1.png", "odd_9x13.png", "wide_800x45.png",
                                  "noise_32.png", "exif_orientation6_20x30.jpg"])
def test_odd_images_keep_their_size(edit, cases_dir, name):
    assert name in ACCEPTED
    image = load_image(cases_dir / name).image
    r = edit(image, "make it purple")
    assert r.image.size == image.size and r.heatmap.size == image.size
    mask = load_mask(cases_dir / "mask_5x3.png", size=image.size, allow_empty=True)
    if mask.any():
        r = edit(image, "green", mask)
        assert r.image.size == image.size and r.changed_fraction_outside == 0.0


def test_full_mask_works_and_mismatched_mask_is_resized(edit, cases_dir):
    image = load_image(cases_dir / "image_10x6.png").image
    full = load_mask(cases_dir / "mask_full_10x6.png", size=image.size)
    assert edit(image, "make it blue", full).changed_fraction > 0
    small = load_mask(cases_dir / "mask_5x3.png", size=image.size)
    assert small.shape == (6, 10)


def test_cli_writes_the_edit_and_prints_json(tmp_path, capsys):
    from engine.cli import main
    out = tmp_path / "edited.png"
    status = main(["edit", str(EXAMPLES / "astronaut.jpg"), "--text", "nothing", "--mask",
                   str(MASKS / "astronaut_shuttle_mask.png"), "--out", str(out)])
    assert status == 0
    data = json.loads(capsys.readouterr().out)
    assert data["operation"] == "remove" and data["target"] == "the painted region"
    assert 0.1 < data["changed_fraction"] < 0.2 and data["changed_fraction_outside"] == 0
    assert Image.open(out).size == Image.open(EXAMPLES / "astronaut.jpg").size


def test_python_m_engine_edit_runs_as_a_program(tmp_path):
    out = tmp_path / "gray.png"
    run = subprocess.run([sys.executable, "-m", "engine", "edit", str(EXAMPLES / "coffee.jpg"),
                          "--text", "turn it black and white", "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["operation"] == "grayscale" and 0.9 < data["changed_fraction"] <= 1.0
    assert Image.open(out).size == Image.open(EXAMPLES / "coffee.jpg").size


def test_cli_refuses_text_it_cannot_do_with_one_error_line(tmp_path, capsys):
    from engine.cli import main
    status = main(["edit", str(EXAMPLES / "coffee.jpg"), "--text", "make it fly", "--out",
                   str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error:") and "It can:" in err
    assert not (tmp_path / "x.png").exists()


def test_removal_grain_is_seeded(edit):
    image = load_image(EXAMPLES / "astronaut.jpg").image
    mask = load_mask(MASKS / "astronaut_shuttle_mask.png", size=image.size)
    a = edit(image, "nothing", mask, seed=1).image.tobytes()
    assert a == edit(image, "nothing", mask, seed=1).image.tobytes()
    assert a != edit(image, "nothing", mask, seed=2).image.tobytes()
