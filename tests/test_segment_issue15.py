"""Issue 15, item 14 (segmentation part): few-shot segmentation says when the query probably
does not contain the painted object, instead of only answering with a confident mask. The
issue's instances (the horse support against a cameraman and a person), one of our own (a cat
photo), the present case, the no-background support, and the benchmark's rate helper."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT

from engine.inputs.images import load_image, load_mask
from engine.segmentation.panet import PRESENCE_RATIO
from engine.segmentation.pipeline import SegmentPipeline

EXAMPLE = EXAMPLES / "segment"
PHOTOS = ROOT / "assets" / "galleries" / "default"


@pytest.fixture(scope="module")
def lite0_pipeline():
    from engine.models.efficientnet import LITE0_PREPROCESS, EfficientNetLite0
    from engine.models.smp_encoders import Lite0Encoder
    encoder = Lite0Encoder(EfficientNetLite0(pretrained=True).eval().net)
    return SegmentPipeline(encoder, LITE0_PREPROCESS, name="efficientnet_lite0")


@pytest.fixture(scope="module")
def horse():
    support = load_image(EXAMPLE / "support.jpg").image
    return [(support, load_mask(EXAMPLE / "support_mask.png", size=support.size))]


def test_the_horse_is_found_in_its_query_without_an_absent_note(lite0_pipeline, horse):
    r = lite0_pipeline(horse, load_image(EXAMPLE / "query.jpg").image)
    assert r.object_present is True and r.presence >= 1.0
    assert not any("probably does not contain" in n for n in r.notes)
    assert r.to_json()["object_present"] is True


@pytest.mark.parametrize("photo", [PHOTOS / "photo_camera.jpg",  # the cameraman
                                   PHOTOS / "photo_astronaut.jpg",  # the person
                                   EXAMPLES / "cat.jpg"])  # ours: a cat photo
def test_a_query_without_the_object_gets_a_note_with_both_similarities(lite0_pipeline, horse,
                                                                       photo):
    r = lite0_pipeline(horse, load_image(photo).image)
    assert r.object_present is False and r.presence < PRESENCE_RATIO
    (note,) = [n for n in r.notes if "probably does not contain the painted object" in n]
    assert f"{r.presence:.2f}" in note and "on the support" in note
    assert r.mask.any()  # the closest match is still shown, marked by the note
    assert r.to_json()["presence"] == round(r.presence, 3)


def test_a_support_without_background_cannot_be_compared_and_says_nothing(lite0_pipeline):
    support = load_image(EXAMPLES / "cat.jpg").image
    r = lite0_pipeline([(support, np.ones((support.height, support.width), bool))],
                       load_image(PHOTOS / "photo_camera.jpg").image)
    assert r.presence is None and r.object_present is None
    assert not any("probably does not contain" in n for n in r.notes)


def test_benchmark_rates_count_right_decisions_per_kind():
    from benchmarks.segment_presence import rates
    rows = [("present", 0.9), ("present", 0.2), ("photo", 0.1), ("photo", 0.5),
            ("other class", 0.3)]
    assert rates(rows, 0.4) == {"present": (1, 2), "photo": (1, 2), "other class": (1, 1)}
