"""Few-shot classification of photos: real support sets, the support-set type and its
validation, the feature cache, the hub backbone path (tiny OpenCLIP)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import EXAMPLES
from PIL import Image
from tiny_models import tiny_openclip

from engine.errors import UserInputError
from engine.fewshot.photos import (PHOTO_LIMITS, BackboneFeatures, FrozenFeatureMethods,
                                   photo_methods)
from engine.fewshot.pipeline import FewShotPipeline
from engine.fewshot.support import SupportSet, read_support_folder, validate_support
from engine.inputs.images import load_image
from engine.models.efficientnet import LITE0_PREPROCESS, EfficientNetLite0
from engine.models._zoo import CLIP_PREPROCESS


def photo_pipeline(network, preprocess, name: str) -> FewShotPipeline:
    return FewShotPipeline(BackboneFeatures(network, preprocess, name), FrozenFeatureMethods(),
                           PHOTO_LIMITS, name=name)


@pytest.fixture(scope="module")
def lite0():
    return photo_pipeline(EfficientNetLite0().eval(), LITE0_PREPROCESS, "efficientnet_lite0")


@pytest.fixture(scope="module")
def support():
    return read_support_folder(EXAMPLES / "fewshot" / "support", max_side=384)


@pytest.fixture(scope="module")
def queries():
    return [load_image(EXAMPLES / "fewshot" / "query" / n).image
            for n in ("cat_query.jpg", "coffee_query.jpg")]


@pytest.mark.parametrize("method", photo_methods())
def test_held_out_views_are_classified_correctly(lite0, support, queries, method):
    result = lite0(support, queries, method=method)
    assert [p.label for p in result.predictions] == ["cat", "coffee"]
    for p in result.predictions:
        assert abs(sum(p.probabilities.values()) - 1) < 1e-5
    assert result.support_xy.shape == (6, 2) and result.prototype_xy.shape == (2, 2)
    assert result.query_xy.shape == (2, 2) and np.isfinite(result.support_xy).all()
    assert result.support_labels == [0, 0, 0, 1, 1, 1] and result.method == method
    assert result.model == "efficientnet_lite0" and result.inner_losses is None
    assert result.query_inputs is None and result.ms > 0


def test_photo_methods_are_the_three_frozen_feature_methods_default_first():
    assert photo_methods() == ["protonet", "cosine", "linear"]


def test_one_shot_support_and_uniform_images_stay_finite(lite0, cases_dir):
    black = load_image(cases_dir / "all_black_8.png").image
    white = load_image(cases_dir / "all_white_8.png").image
    noise = load_image(cases_dir / "noise_32.png").image
    support = SupportSet.from_classes([("black", [black]), ("white", [white])])
    result = lite0(support, [noise, black])
    for p in result.predictions:
        assert all(np.isfinite(v) for v in p.probabilities.values())
    assert result.predictions[1].label == "black"


class CountingNetwork(torch.nn.Module):
    """Wraps a backbone and counts the images it embeds."""

    def __init__(self, network):
        super().__init__()
        self.network, self.seen = network, 0

    def forward(self, x):
        self.seen += x.shape[0]
        return self.network(x)


def test_support_features_are_cached_in_the_pipeline_and_give_the_same_answer(support, queries):
    network = CountingNetwork(EfficientNetLite0().eval())
    pipe = photo_pipeline(network, LITE0_PREPROCESS, "efficientnet_lite0")
    first = pipe(support, queries, method="cosine")
    assert network.seen == 6 + 2 and len(pipe.cache) == 6
    again = pipe(support, queries, method="cosine")
    assert network.seen == 8 + 2  # only the queries were embedded again
    for pa, pb in zip(first.predictions, again.predictions):
        assert pa.probabilities == pytest.approx(pb.probabilities, abs=1e-6)
    pipe.clear_cache()
    pipe(support, queries[:1], method="cosine")
    assert network.seen == 10 + 6 + 1


def test_feature_cache_keeps_the_most_recent_entries():
    pipe = photo_pipeline(torch.nn.Flatten(), replace(LITE0_PREPROCESS, size=4, crop_pct=1.0),
                          "tiny")
    pipe.cache.size = 2
    images = [Image.new("RGB", (8, 8), (c, 0, 0)) for c in (0, 100, 200)]
    pipe.encode(images, cache=True)
    assert len(pipe.cache) == 2
    assert pipe.encode(images[2:], cache=True).shape == (1, 3 * 4 * 4)


@pytest.mark.parametrize("pairs,message", [
    ([("cat", [1])], "1 class"),
    ([], "0 class"),
    ([("cat", [1]), ("", [1])], "Class 2 has a blank name"),
    ([("cat", [1]), ("Cat ", [1])], "both named"),
    ([("cat", [1]), ("dog", [])], "'dog' has 0 images"),
    ([(f"c{i}", [1]) for i in range(11)], "11 classes"),
    ([("cat", [1] * 11), ("dog", [1])], "'cat' has 11 images"),
])
def test_support_set_errors_name_the_class_and_counts(pairs, message):
    with pytest.raises(UserInputError, match=message):
        validate_support(SupportSet.from_classes(pairs), PHOTO_LIMITS)


def test_fewer_images_than_k_is_named():
    with pytest.raises(UserInputError, match="'dog' has 1 image.*5-shot"):
        validate_support(SupportSet.from_classes([("cat", [1] * 5), ("dog", [1])]),
                         PHOTO_LIMITS, shots=5)


def test_validation_returns_names_with_collapsed_spaces():
    support = SupportSet.from_classes([("  big   cat ", [1]), ("cup", [1])])
    assert validate_support(support, PHOTO_LIMITS) == ["big cat", "cup"]


def test_support_set_adds_merges_and_removes_classes_without_changing_the_original():
    a, b, c = (Image.new("RGB", (2, 2), (v, v, v)) for v in (0, 1, 2))
    empty = SupportSet()
    one = empty.add("cat", [a])
    two = one.add("cup", [b]).add(one.find(" CAT ") or "CAT", [c])
    assert empty.n_images == 0 and one.n_images == 1
    assert two.names == ("cat", "cup") and two.counts() == [2, 1]
    assert [n for _, n in two.items()] == ["cat", "cup", "cat"]  # order added
    assert two.classes() == [("cat", [a, c]), ("cup", [b])]
    left = two.remove("cat")
    assert left.names == ("cup",) and left.labels == (0,) and left.images == (b,)
    assert two.remove("nope") is two


def test_no_query_and_unknown_method_are_refused(lite0, support, queries):
    with pytest.raises(UserInputError, match="Add at least one query image"):
        lite0(support, [])
    with pytest.raises(UserInputError, match="unknown method 'maml-9000'; valid: protonet"):
        lite0(support, queries, method="maml-9000")
    with pytest.raises(UserInputError, match="MAML models only, not 'efficientnet_lite0'"):
        lite0(support, queries, maml_steps=3)


def test_read_support_folder_refuses_a_missing_or_empty_folder(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        read_support_folder(tmp_path / "nope")
    with pytest.raises(UserInputError, match="no class sub-folders"):
        read_support_folder(tmp_path)


def test_result_to_json_is_serialisable_and_complete(lite0, support, queries):
    data = lite0(support, queries, method="protonet").to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["class_names"] == ["cat", "coffee"] and data["method"] == "protonet"
    assert [p["label"] for p in data["predictions"]] == ["cat", "coffee"]
    assert np.asarray(data["support_xy"]).shape == (6, 2)
    assert data["inner_losses"] is None and data["query_inputs"] is None


def test_hub_backbone_path_with_tiny_openclip(support, queries):
    pipe = photo_pipeline(tiny_openclip(), replace(CLIP_PREPROCESS, size=32),
                          "openclip-vit-b-32")
    result = pipe(support, queries)
    assert result.model == "openclip-vit-b-32" and result.method == "protonet"
    assert len(result.predictions) == 2
    for p in result.predictions:
        probs = torch.tensor(list(p.probabilities.values()))
        assert torch.isfinite(probs).all() and abs(probs.sum().item() - 1) < 1e-5


def test_factory_builds_the_photo_pipeline_and_refuses_unknown_backbones():
    from engine.factory import get_pipeline, task_models
    assert task_models("fewshot")[0] == "efficientnet_lite0"
    assert "openclip-vit-b-32" in task_models("fewshot")
    with pytest.raises(UserInputError, match="unknown fewshot model 'nope'"):
        get_pipeline("fewshot", "nope")
    pipe = get_pipeline("fewshot")
    assert pipe.name == "efficientnet_lite0" and pipe.methods == photo_methods()
    assert not pipe.adapts_weights
