"""Caption pipeline built from its components: the embedded tagger on real photos, sentence
writing, the hub path with a tiny BLIP (seeded expected captions), the factory's builders."""
from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
from cases import ACCEPTED
from tiny_models import WORDS, tiny_blip

from engine.captioning.captioners import HubCaptioner
from engine.captioning.pipeline import CaptionPipeline
from engine.captioning.sentence import Tag, sentence_from_tags
from engine.captioning.tagger import ImageNetTagger
from engine.errors import UserInputError
from engine.inputs.images import load_image
from engine.models import get_spec
from engine.models.efficientnet import LITE0_PREPROCESS, EfficientNetLite0
from engine.models.minilm import MiniLMEncoder

#: What the tiny BLIP of tests/tiny_models.py (seed 0, random weights) writes for any 32x32
#: input: its weights, not the image, decide the words.
TINY_BEAM = "and and and with coffee and and and a and a the cup cat table man"
TINY_NUCLEUS_SEED_7 = "blue small a with with sitting cup cat with large small cup"
TINY_NUCLEUS_SEED_8 = "photo the blue sitting sitting red a man large"


@pytest.fixture(scope="module")
def tagger():
    """The embedded tagger: real EfficientNet-Lite0 and MiniLM weights (small, offline)."""
    return ImageNetTagger(EfficientNetLite0(), MiniLMEncoder(), LITE0_PREPROCESS)


@pytest.fixture(scope="module")
def offline(tagger):
    return CaptionPipeline(tagger, name="efficientnet_lite0")


@pytest.fixture(scope="module")
def tiny_captioner(tmp_path_factory):
    """A hub captioner on the tiny BLIP, with BLIP's preprocessing at its 32-pixel input."""
    return HubCaptioner(tiny_blip(tmp_path_factory.mktemp("blip")),
                        replace(get_spec("blip-base").preprocess, size=32))


@pytest.fixture(scope="module")
def hub(tagger, tiny_captioner):
    return CaptionPipeline(tagger, tiny_captioner, name="blip-base")


def test_cat_photo_caption_and_top_tag_name_a_cat(offline, cat_image):
    result = offline(cat_image)
    assert "cat" in result.caption and result.caption == result.tag_caption
    assert "cat" in result.tags[0].name
    assert result.tags[0].probability > 0.5  # the cat classes, grouped
    assert result.heatmap.size == cat_image.size and result.heatmap.mode == "RGB"
    probs = [t.probability for t in result.tags]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    assert result.model == "efficientnet_lite0" and result.ms > 0


def test_cat_synonyms_are_grouped_into_one_tag(offline, cat_image):
    top = offline(cat_image).tags[0]
    assert len(top.members) > 1 and all("cat" in m for m in top.members)
    assert top.name == top.members[0]


def test_coffee_photo_is_tagged_as_coffee(offline, coffee_image):
    tags = offline(coffee_image).tags
    assert tags[0].name in ("espresso", "cup", "coffee mug")


def test_cam_peaks_on_the_object(tagger, cat_image):
    tags, cam = tagger.tags_and_cam(cat_image)
    h, w = cam.shape
    y, x = np.unravel_index(cam.argmax(), cam.shape)
    assert 0.15 < (x + 0.5) / w < 0.85  # the cat's face is central, not at the border
    assert np.isfinite(cam).all() and cam.min() >= 0 and cam.dtype == np.float32
    assert len(tags) == 5


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_every_accepted_case_gets_a_finite_caption(offline, cases_dir, name):
    image = load_image(cases_dir / name).image
    result = offline(image, top_k=3)
    assert result.caption.startswith("a photo") and len(result.tags) == 3
    assert all(np.isfinite(t.probability) for t in result.tags)
    assert result.heatmap.size == image.size


def test_sentence_hedges_uncertain_tags_and_places_a_second_object():
    sure = [Tag("laptop", 0.8, ["laptop"], (0.2, 0.5)),
            Tag("coffee mug", 0.15, ["cup"], (0.8, 0.5))]
    assert sentence_from_tags(sure) == "a photo of a laptop to the left of a coffee mug."
    unsure = [Tag("espresso", 0.3, ["espresso"], (0.5, 0.5))]
    assert sentence_from_tags(unsure) == "a photo of what looks like an espresso."
    assert sentence_from_tags([Tag("tench", 0.05, ["tench"], (0.5, 0.5))]) == \
        "a photo that might show a tench."
    with pytest.raises(ValueError):
        sentence_from_tags([])


def test_second_object_close_to_the_first_or_unlikely_is_not_mentioned():
    close = [Tag("laptop", 0.8, ["laptop"], (0.5, 0.5)), Tag("mouse", 0.3, ["mouse"], (0.6, 0.5))]
    assert sentence_from_tags(close) == "a photo of a laptop."
    unlikely = [Tag("laptop", 0.8, ["laptop"], (0.1, 0.1)), Tag("mouse", 0.05, ["m"], (0.9, 0.9))]
    assert sentence_from_tags(unlikely) == "a photo of a laptop."


def test_bad_options_are_user_errors_and_a_non_rgb_image_is_a_bug(offline, cat_image):
    with pytest.raises(UserInputError, match="top_k must be in 1..20, got 0"):
        offline(cat_image, top_k=0)
    with pytest.raises(UserInputError, match="decoding must be 'beam' or 'nucleus'"):
        offline(cat_image, decoding="greedy")
    with pytest.raises(ValueError, match="RGB") as info:
        offline(cat_image.convert("L"))
    assert not isinstance(info.value, UserInputError)


def test_tiny_blip_writes_its_seeded_expected_captions(tiny_captioner, cat_image):
    assert tiny_captioner.caption([cat_image]) == [TINY_BEAM]
    assert tiny_captioner.caption([cat_image], "nucleus", seed=7) == [TINY_NUCLEUS_SEED_7]
    assert tiny_captioner.caption([cat_image], "nucleus", seed=8) == [TINY_NUCLEUS_SEED_8]
    assert set(TINY_NUCLEUS_SEED_7.split()) <= set(WORDS)


def test_hub_pipeline_captions_with_the_captioner_and_keeps_the_tags(hub, cat_image):
    a = hub(cat_image, decoding="nucleus", seed=7)
    b = hub(cat_image, decoding="nucleus", seed=7)
    c = hub(cat_image, decoding="nucleus", seed=8)
    assert a.caption == b.caption == TINY_NUCLEUS_SEED_7  # same seed, same caption
    assert c.caption == TINY_NUCLEUS_SEED_8 != a.caption  # another seed, another sample
    assert hub(cat_image).caption == TINY_BEAM  # beam search by default
    assert a.model == "blip-base" and a.to_json()["model"] == "blip-base"
    assert "cat" in a.tag_caption and "cat" in a.tags[0].name  # tags still from the tagger


def test_concurrent_sampling_gives_each_seed_its_own_caption(tiny_captioner, cat_image):
    """One lock for every captioner: two captioners on one model (as the caption and change
    pipelines are) sampling from several threads give the sequential answers."""
    other = HubCaptioner(tiny_captioner.model, tiny_captioner.preprocess)
    seeds = list(range(8))
    expected = {s: tiny_captioner.caption([cat_image], "nucleus", seed=s)[0] for s in seeds}
    got: dict[int, str] = {}

    def work(s: int) -> None:
        captioner = tiny_captioner if s % 2 else other
        got[s] = captioner.caption([cat_image], "nucleus", seed=s)[0]

    threads = [threading.Thread(target=work, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_factory_builds_the_offline_pipeline_and_refuses_unknown_models():
    from engine.factory import get_pipeline
    pipe = get_pipeline("caption")
    assert pipe.name == "efficientnet_lite0" and pipe.captioner is None
    assert isinstance(pipe.tagger, ImageNetTagger)
    with pytest.raises(UserInputError, match="unknown caption model 'gpt-vision'; valid: "
                                             "efficientnet_lite0, blip-base"):
        get_pipeline("caption", "gpt-vision")


def test_factory_falls_back_to_the_tagger_when_the_hub_is_offline():
    from engine.factory import choose_pipeline, get_pipeline
    from engine.models import OFFLINE_MESSAGE, HubUnavailableError
    with pytest.raises(HubUnavailableError):  # tests run with HF_HUB_OFFLINE=1
        get_pipeline("caption", "blip-base")
    choice = choose_pipeline("caption", "blip-base")
    assert choice.model == "efficientnet_lite0" and choice.note == OFFLINE_MESSAGE
    assert choice.pipeline.captioner is None
