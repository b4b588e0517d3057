"""Change captioning built from its components: the bundled pairs (type of every change, the
no-change pairs), places and sentences of both namers, alignment, sizes, odd inputs, the hub path
with a tiny BLIP, the factory's builders, the CLI."""
from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest
from cases import ACCEPTED
from conftest import EXAMPLES, ROOT
from tiny_models import tiny_blip

from engine.captioning.captioners import HubCaptioner
from engine.change.alignment import align_pair
from engine.change.describe import place, where
from engine.change.features import ChangeFeatures
from engine.change.motion import MOVED_MATCH
from engine.change.namers import CaptionNamer, ImageNetNamer
from engine.change.pipeline import ChangePipeline
from engine.colours import colour_name
from engine.errors import UserInputError
from engine.inputs.images import load_image
from engine.models import get_spec
from engine.models.efficientnet import LITE0_PREPROCESS, EfficientNetLite0

sys.path.insert(0, str(ROOT / "assets"))
from make_change_examples import PAIRS  # noqa: E402

CHANGES = EXAMPLES / "changes"
#: The tiny BLIP's beam caption (tests/tiny_models.py, seed 0), whatever the crop.
TINY_BEAM = "and and and with coffee and and and a and a the cup cat table man"


@pytest.fixture(scope="module")
def features():
    """The embedded feature extractor: real EfficientNet-Lite0 weights (small, offline)."""
    return ChangeFeatures(EfficientNetLite0(), LITE0_PREPROCESS)


@pytest.fixture(scope="module")
def offline(features):
    return ChangePipeline(features, ImageNetNamer(features.class_names), name="efficientnet_lite0")


@pytest.fixture(scope="module")
def hub(features, tmp_path_factory):
    captioner = HubCaptioner(tiny_blip(tmp_path_factory.mktemp("blip")),
                             replace(get_spec("blip-base").preprocess, size=32))
    return ChangePipeline(features, CaptionNamer(captioner), name="blip-base")


def _pair(name):
    return (load_image(CHANGES / f"{name}_before.jpg").image,
            load_image(CHANGES / f"{name}_after.jpg").image)


@pytest.fixture(scope="module")
def results(offline):
    return {name: offline(*_pair(name)) for name in PAIRS}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_bundled_pair_gets_the_change_type_right(results, name):
    result, expected = results[name], PAIRS[name]
    if expected == "none":
        assert result.changes == [] and result.caption == "no change"
    else:
        assert [c.type for c in result.changes] == [expected], result.caption
        assert result.caption == result.changes[0].sentence


def test_boxes_lie_on_the_change(results):
    # the cup moved to (560, 48), radius 42: the reported box (after pixels) must cover it
    x0, y0, x1, y1 = results["moved_cup"].changes[0].box
    assert x0 <= 560 <= x1 and y0 <= 48 <= y1 and (x1 - x0) < 200
    x0, y0, x1, y1 = results["added_flower"].changes[0].box
    assert x0 <= 150 <= x1 and y0 <= 120 <= y1


def test_recolour_sentence_names_both_colours(results):
    sentence = results["recoloured_dahlia"].changes[0].sentence
    assert "orange" in sentence and ("blue" in sentence or "cyan" in sentence)


def test_moved_sentence_names_both_places_and_boxes_both_sides(results):
    r = results["moved_cup"]
    (change,) = r.changes
    assert change.sentence == (f"The {change.before} moved from the top left to the top "
                               f"right.")
    assert change.evidence["work_box_before"] != change.evidence["work_box"]
    assert change.evidence["match"] >= MOVED_MATCH  # found by block matching, not by names


def test_offline_sentences_use_imagenet_names_in_templates(results):
    assert results["removed_shuttle"].caption == \
        "The space shuttle at the top right disappeared."
    added = results["added_flower"].changes[0]
    assert added.sentence in (f"A {added.after} appeared at the top left.",
                              f"An {added.after} appeared at the top left.")
    replaced = results["replaced_cup"].changes[0]
    assert replaced.sentence.startswith(f"The {replaced.before} at the top right was "
                                        f"replaced by ")
    assert replaced.sentence.endswith(f" {replaced.after}.")


def test_overlays_keep_each_image_size_and_are_numbered(results):
    before, after = _pair("replaced_cup")
    r = results["replaced_cup"]
    assert r.before_overlay.size == before.size and r.after_overlay.size == after.size
    assert r.to_json()["changes"][0]["type"] == "replaced" and r.ms > 0


def test_alignment_recovers_a_known_shift_and_gain():
    rng = np.random.default_rng(0)
    from scipy import ndimage
    base = ndimage.gaussian_filter(rng.random((96, 128, 3)).astype(np.float32), (2, 2, 0))
    after = np.roll(base, (3, -5), axis=(0, 1)) * 0.8 + 0.05
    al = align_pair(base, after.astype(np.float32))
    assert al.shift == pytest.approx((-3.0, 5.0), abs=0.3)
    inner = (slice(10, -10), slice(10, -10))
    assert np.abs(al.after[inner] - base[inner]).mean() < 0.01


def test_different_sizes_are_resized_and_boxes_are_in_after_pixels(offline):
    before, after = _pair("added_flower")
    small = after.resize((320, 214))
    r = offline(before, small)
    assert [c.type for c in r.changes] == ["added"]
    x0, y0, x1, y1 = r.changes[0].box
    assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 214 and x0 <= 75 <= x1
    assert any("resized" in n for n in r.notes)


def test_identical_images_are_no_change(offline, cat_image):
    r = offline(cat_image, cat_image.copy())
    assert r.caption == "no change" and r.changes == [] and r.notes == []


@pytest.mark.parametrize("name", ["tiny_1x1.png", "wide_800x45.png", "noise_32.png",
                                  "rgba_half_transparent_64.png", "all_white_8.png"])
def test_odd_images_give_a_finite_result(offline, cases_dir, cat_image, name):
    assert name in ACCEPTED
    odd = load_image(cases_dir / name).image
    pairs = ((odd, cat_image), (cat_image, odd)) if name != "noise_32.png" else ((odd, odd),)
    for before, after in pairs:
        r = offline(before, after)
        assert np.isfinite(r.heat).all() and r.caption
        assert r.after_overlay.size == after.size


def test_bad_threshold_is_a_user_error_and_a_non_rgb_image_is_a_bug(offline, cat_image):
    with pytest.raises(UserInputError, match=r"threshold must be in \(0, 1\), got 1.5"):
        offline(cat_image, cat_image, threshold=1.5)
    with pytest.raises(ValueError, match="the before image must be an RGB") as info:
        offline(cat_image.convert("L"), cat_image)
    assert not isinstance(info.value, UserInputError)


def test_places_are_thirds_of_the_image_with_their_preposition():
    W, H = 90, 90
    assert place((0, 0, 20, 20), W, H) == "the top left"
    assert where((0, 0, 20, 20), W, H) == "at the top left"
    assert place((35, 70, 55, 90), W, H) == "the bottom"
    assert where((70, 35, 90, 55), W, H) == "at the right"
    assert place((35, 35, 55, 55), W, H) == "the centre"
    assert where((35, 35, 55, 55), W, H) == "in the centre"


def test_namers_phrase_every_change_type_in_their_own_style():
    imagenet = ImageNetNamer(["tabby cat"])
    assert imagenet.added("espresso", "at the top") == "An espresso appeared at the top."
    assert imagenet.removed("cup", "in the centre") == "The cup in the centre disappeared."
    assert imagenet.replaced("cup", "orange", "at the left") == \
        "The cup at the left was replaced by an orange."
    assert imagenet.moved("cup", "the left", "the centre") == \
        "The cup moved from the left to the centre."
    assert imagenet.recoloured("cup", "at the left", "from red to blue") == \
        "The cup at the left changed colour from red to blue."
    caption = CaptionNamer(captioner=None)  # phrasing needs no model
    assert caption.added("a red cup", "at the top") == 'Something appeared at the top: "a red cup".'
    assert caption.removed("a cup", "in the centre") == \
        'Something disappeared in the centre: "a cup".'
    assert caption.replaced("a cup", "a bowl", "at the left") == \
        'At the left, "a cup" was replaced by "a bowl".'
    assert caption.moved("a cup", "the left", "the centre") == \
        'Moved from the left to the centre: "a cup".'
    assert caption.recoloured("a cup", "at the left", "(now blue)") == \
        '"a cup" at the left changed colour (now blue).'



def test_colour_names():
    assert colour_name((0.9, 0.1, 0.1)) == "red"
    assert colour_name((0.1, 0.2, 0.9)) == "blue"
    assert colour_name((0.5, 0.5, 0.5)) == "gray"


def test_hub_namer_quotes_tiny_blip_captions_and_keeps_types_and_boxes(hub, results):
    r = hub(*_pair("added_flower"))
    assert r.model == "blip-base" and [c.type for c in r.changes] == ["added"]
    assert r.changes[0].after == TINY_BEAM
    assert r.caption == f'Something appeared at the top left: "{TINY_BEAM}".'
    assert r.changes[0].box == results["added_flower"].changes[0].box  # the namer only names
    moved = hub(*_pair("moved_cup"))
    assert moved.caption == f'Moved from the top left to the top right: "{TINY_BEAM}".'


def test_factory_builds_the_offline_pipeline_and_falls_back_when_the_hub_is_offline(cat_image):
    from engine.factory import choose_pipeline, get_pipeline
    from engine.models import OFFLINE_MESSAGE, HubUnavailableError
    pipe = get_pipeline("change")
    assert pipe.name == "efficientnet_lite0" and isinstance(pipe.namer, ImageNetNamer)
    with pytest.raises(UserInputError, match="unknown change model 'nope'; valid: "):
        get_pipeline("change", "nope")
    with pytest.raises(HubUnavailableError):  # tests run with HF_HUB_OFFLINE=1
        get_pipeline("change", "blip-base")
    choice = choose_pipeline("change", "blip-base")
    assert choice.model == "efficientnet_lite0" and choice.note == OFFLINE_MESSAGE
    assert choice.pipeline(cat_image, cat_image).caption == "no change"


def test_cli_prints_changes_json(capsys):
    from engine.cli import main
    status = main(["change", str(CHANGES / "removed_shuttle_before.jpg"),
                   str(CHANGES / "removed_shuttle_after.jpg")])
    assert status == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["type"] for c in data["changes"]] == ["removed"]
    assert len(data["changes"][0]["box"]) == 4 and data["model"] == "efficientnet_lite0"
    assert data["caption"] == data["changes"][0]["sentence"] and data["ms"] > 0


def test_cli_missing_file_is_one_error_line(capsys):
    from engine.cli import main
    status = main(["change", str(CHANGES / "x.jpg"), str(CHANGES / "removed_shuttle_after.jpg")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error:") and "not found" in err


def test_a_change_is_still_found_through_a_small_camera_rotation(offline):
    from make_change_examples import _cutout, _open, _paste, _rotated
    rocket = _open("rocket.jpg")
    pasted = _paste(rocket, _cutout(_open("flower.jpg"), (304, 224), 140, 50), (200, 300))
    before, _ = _rotated(rocket, 1.5, 1.0, 0.0)
    _, after = _rotated(pasted, 1.5, 0.9, 0.0)
    r = offline(before, after)
    assert [c.type for c in r.changes] == ["added"], r.caption
    x0, y0, x1, y1 = r.changes[0].box  # the flower is near (200 - 24, 300 - 18) in after pixels
    assert x0 - 15 <= 176 <= x1 + 15 and y0 - 15 <= 282 <= y1 + 15
    assert any("camera motion" in n for n in r.notes)
