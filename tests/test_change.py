"""Change captioning: the bundled pairs (type of every change, no-change pair), alignment,
sizes, odd inputs, hub path with a tiny BLIP, CLI."""
from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest
from cases import ACCEPTED
from conftest import EXAMPLES, ROOT
from tiny_models import tiny_blip

from engine.inputs.images import load_image
from engine.change.alignment import align_pair
from engine.colours import colour_name
from engine.change.pipeline import ChangePipeline, change_models
from engine.models import get_spec
from engine.models._factory import use_model

sys.path.insert(0, str(ROOT / "assets"))
from make_change_examples import PAIRS  # noqa: E402

CHANGES = EXAMPLES / "changes"


def _pair(name):
    return (load_image(CHANGES / f"{name}_before.jpg").image,
            load_image(CHANGES / f"{name}_after.jpg").image)


@pytest.fixture(scope="module")
def results():
    pipe = ChangePipeline()
    return {name: pipe(*_pair(name)) for name in PAIRS}


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


def test_overlays_keep_each_image_size_and_are_numbered(results):
    before, after = _pair("replaced_helmet")
    r = results["replaced_helmet"]
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


def test_different_sizes_are_resized_and_boxes_are_in_after_pixels():
    before, after = _pair("added_flower")
    small = after.resize((320, 214))
    r = ChangePipeline()(before, small)
    assert [c.type for c in r.changes] == ["added"]
    x0, y0, x1, y1 = r.changes[0].box
    assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 214 and x0 <= 75 <= x1
    assert any("resized" in n for n in r.notes)


def test_identical_images_are_no_change(cat_image):
    assert ChangePipeline()(cat_image, cat_image.copy()).caption == "no change"


@pytest.mark.parametrize("name", ["tiny_1x1.png", "wide_800x45.png", "noise_32.png",
                                  "rgba_half_transparent_64.png", "all_white_8.png"])
def test_odd_images_give_a_finite_result(cases_dir, cat_image, name):
    assert name in ACCEPTED
    odd = load_image(cases_dir / name).image
    pairs = ((odd, cat_image), (cat_image, odd)) if name != "noise_32.png" else ((odd, odd),)
    for before, after in pairs:
        r = ChangePipeline()(before, after)
        assert np.isfinite(r.heat).all() and r.caption
        assert r.after_overlay.size == after.size


def test_bad_options_are_refused(cat_image):
    with pytest.raises(ValueError, match="unknown model"):
        ChangePipeline()(cat_image, cat_image, model="nope")
    with pytest.raises(ValueError, match="RGB"):
        ChangePipeline()(cat_image.convert("L"), cat_image)
    with pytest.raises(ValueError, match="threshold"):
        ChangePipeline()(cat_image, cat_image, threshold=1.5)


def test_colour_names():
    assert colour_name((0.9, 0.1, 0.1)) == "red"
    assert colour_name((0.1, 0.2, 0.9)) == "blue"
    assert colour_name((0.5, 0.5, 0.5)) == "gray"


def test_hub_mode_describes_regions_with_tiny_blip(tmp_path):
    assert "blip-base" in change_models()
    pre = replace(get_spec("blip-base").preprocess, size=32)
    with use_model("blip-base", tiny_blip(tmp_path), preprocess=pre):
        r = ChangePipeline()(*_pair("added_flower"), model="blip-base")
    assert r.model == "blip-base" and [c.type for c in r.changes] == ["added"]
    assert r.changes[0].after in r.caption and '"' in r.caption  # BLIP's words, quoted


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


def test_a_change_is_still_found_through_a_small_camera_rotation():
    from make_change_examples import _cutout, _open, _paste, _rotated
    rocket = _open("rocket.jpg")
    pasted = _paste(rocket, _cutout(_open("flower.jpg"), (304, 224), 140, 50), (200, 300))
    before, _ = _rotated(rocket, 1.5, 1.0, 0.0)
    _, after = _rotated(pasted, 1.5, 0.9, 0.0)
    r = ChangePipeline()(before, after)
    assert [c.type for c in r.changes] == ["added"], r.caption
    x0, y0, x1, y1 = r.changes[0].box  # the flower is near (200 - 24, 300 - 18) in after pixels
    assert x0 - 15 <= 176 <= x1 + 15 and y0 - 15 <= 282 <= y1 + 15
    assert any("camera motion" in n for n in r.notes)
