"""Few-shot classification of photos: real support sets, validation, hub backbone (tiny)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import EXAMPLES
from tiny_models import tiny_openclip

from engine.inputs.images import load_image
from engine.fewshot.pipeline import FewShotPipeline, validate_support
from engine.models import get_spec
from engine.models._factory import use_model


def _load(folder):
    return [load_image(p).image for p in sorted(folder.glob("*.jpg"))]


@pytest.fixture(scope="module")
def support():
    return [(c, _load(EXAMPLES / "fewshot" / "support" / c)) for c in ("cat", "coffee")]


@pytest.fixture(scope="module")
def queries():
    return [load_image(EXAMPLES / "fewshot" / "query" / n).image
            for n in ("cat_query.jpg", "coffee_query.jpg")]


@pytest.mark.parametrize("method", ["protonet", "cosine", "linear"])
def test_held_out_views_are_classified_correctly(support, queries, method):
    result = FewShotPipeline()(support, queries, method=method)
    assert [p.label for p in result.predictions] == ["cat", "coffee"]
    for p in result.predictions:
        assert abs(sum(p.probabilities.values()) - 1) < 1e-5
    assert result.support_xy.shape == (6, 2) and result.prototype_xy.shape == (2, 2)
    assert result.query_xy.shape == (2, 2) and np.isfinite(result.support_xy).all()


def test_one_shot_support_and_uniform_images_stay_finite(cases_dir):
    black = load_image(cases_dir / "all_black_8.png").image
    white = load_image(cases_dir / "all_white_8.png").image
    noise = load_image(cases_dir / "noise_32.png").image
    result = FewShotPipeline()([("black", [black]), ("white", [white])], [noise, black])
    for p in result.predictions:
        assert all(np.isfinite(v) for v in p.probabilities.values())
    assert result.predictions[1].label == "black"


def test_precomputed_support_features_give_the_same_answer(support, queries):
    pipe = FewShotPipeline()
    feats = [pipe.embed(images) for _, images in support]
    a = pipe(support, queries, method="cosine")
    b = pipe(support, queries, method="cosine", support_features=feats)
    for pa, pb in zip(a.predictions, b.predictions):
        assert pa.probabilities == pytest.approx(pb.probabilities, abs=1e-6)


@pytest.mark.parametrize("support_set,message", [
    ([("cat", [1])], "1 class"),
    ([("cat", [1]), ("", [1])], "Class 2 has a blank name"),
    ([("cat", [1]), ("Cat ", [1])], "both named"),
    ([("cat", [1]), ("dog", [])], "'dog' has 0 images"),
    ([(f"c{i}", [1]) for i in range(11)], "11 classes"),
    ([("cat", [1] * 11), ("dog", [1])], "'cat' has 11 images"),
])
def test_support_set_errors_name_the_class_and_counts(support_set, message):
    with pytest.raises(ValueError, match=message):
        validate_support(support_set)


def test_fewer_images_than_k_is_named():
    with pytest.raises(ValueError, match="'dog' has 1 image.*5-shot"):
        validate_support([("cat", [1] * 5), ("dog", [1])], shots=5)


def test_no_query_and_unknown_method_are_refused(support, queries):
    with pytest.raises(ValueError, match="query"):
        FewShotPipeline()(support, [])
    with pytest.raises(ValueError, match="valid"):
        FewShotPipeline()(support, queries, method="maml-9000")


def test_hub_backbone_path_with_tiny_openclip(support, queries):
    pre = replace(get_spec("openclip-vit-b-32").preprocess, size=32)  # the tiny model's input
    with use_model("openclip-vit-b-32", tiny_openclip(), preprocess=pre):
        result = FewShotPipeline()(support, queries, model="openclip-vit-b-32")
    assert result.model == "openclip-vit-b-32"
    assert len(result.predictions) == 2
    assert all(torch.isfinite(torch.tensor(list(p.probabilities.values()))).all()
               for p in result.predictions)
