"""Caption pipeline: real photos offline, sentence writing, hub path with a tiny BLIP."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from cases import ACCEPTED
from tiny_models import tiny_blip

from engine.inputs.images import load_image
from engine.captioning.pipeline import CaptionPipeline, Tag, caption_models, sentence_from_tags
from engine.models import get_spec
from engine.models._factory import use_model


def test_cat_photo_caption_and_top_tag_name_a_cat(cat_image):
    result = CaptionPipeline()(cat_image)
    assert "cat" in result.caption
    assert "cat" in result.tags[0].name
    assert result.tags[0].probability > 0.5  # the cat classes, grouped
    assert result.heatmap.size == cat_image.size
    probs = [t.probability for t in result.tags]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)


def test_coffee_photo_is_tagged_as_coffee(coffee_image):
    tags = CaptionPipeline()(coffee_image).tags
    assert tags[0].name in ("espresso", "cup", "coffee mug")


def test_cam_peaks_on_the_object(cat_image):
    tags, cam = CaptionPipeline().tags_and_cam(cat_image)
    h, w = cam.shape
    y, x = np.unravel_index(cam.argmax(), cam.shape)
    assert 0.15 < (x + 0.5) / w < 0.85  # the cat's face is central, not at the border
    assert np.isfinite(cam).all() and cam.min() >= 0


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_every_accepted_case_gets_a_finite_caption(cases_dir, name):
    image = load_image(cases_dir / name).image
    result = CaptionPipeline()(image, top_k=3)
    assert result.caption and len(result.tags) == 3
    assert all(np.isfinite(t.probability) for t in result.tags)
    assert result.heatmap.size == image.size


def test_sentence_hedges_uncertain_tags_and_places_a_second_object():
    sure = [Tag("laptop", 0.8, ["laptop"], (0.2, 0.5)), Tag("coffee mug", 0.15, ["cup"], (0.8, 0.5))]
    assert sentence_from_tags(sure) == "a photo of a laptop to the left of a coffee mug."
    unsure = [Tag("espresso", 0.3, ["espresso"], (0.5, 0.5))]
    assert sentence_from_tags(unsure) == "a photo of what looks like an espresso."
    assert "might show" in sentence_from_tags([Tag("tench", 0.05, ["tench"], (0.5, 0.5))])
    with pytest.raises(ValueError):
        sentence_from_tags([])


def test_bad_options_are_refused(cat_image):
    with pytest.raises(ValueError, match="valid"):
        CaptionPipeline()(cat_image, model="gpt-vision")
    with pytest.raises(ValueError, match="top_k"):
        CaptionPipeline()(cat_image, top_k=0)
    with pytest.raises(ValueError, match="RGB"):
        CaptionPipeline()(cat_image.convert("L"))


def test_hub_captioner_path_with_tiny_blip(tmp_path, cat_image):
    assert "blip-base" in caption_models()
    pre = replace(get_spec("blip-base").preprocess, size=32)  # the tiny model's input size
    with use_model("blip-base", tiny_blip(tmp_path), preprocess=pre):
        a = CaptionPipeline()(cat_image, model="blip-base", decoding="nucleus", seed=7)
        b = CaptionPipeline()(cat_image, model="blip-base", decoding="nucleus", seed=7)
    assert a.model == "blip-base" and a.caption == b.caption
    assert a.caption != a.tag_caption  # BLIP's words, not the tag sentence
    assert "cat" in a.tag_caption  # tags still come from the embedded network
