"""Few-shot methods over features: behaviour on small, known geometries."""
from __future__ import annotations

import pytest
import torch

from engine.fewshot.methods import create_method, list_methods
from engine.fewshot.methods.base import class_means

FEATURE_METHODS = {"protonet": {}, "cosine": {}, "linear": {"steps": 50}}


def two_blobs(shots=3, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.zeros(2, dim)
    centers[0, 0], centers[1, 1] = 5.0, 5.0
    support = torch.cat([centers[c] + 0.3 * torch.randn(shots, dim, generator=g)
                         for c in range(2)])
    labels = torch.arange(2).repeat_interleave(shots)
    query = centers + 0.3 * torch.randn(2, dim, generator=g)
    return support, labels, query


def test_registry_lists_feature_methods_and_rejects_unknown():
    assert set(FEATURE_METHODS) <= set(list_methods())
    with pytest.raises(ValueError, match="valid methods"):
        create_method("knn-9000")


@pytest.mark.parametrize("name", sorted(FEATURE_METHODS))
def test_method_classifies_separated_blobs_with_probabilities_summing_to_one(name):
    support, labels, query = two_blobs()
    clf = create_method(name, **FEATURE_METHODS[name])
    clf.process_support_set(support, labels)
    probs = clf(query).softmax(-1)
    assert probs.shape == (2, 2)
    assert torch.allclose(probs.sum(-1), torch.ones(2))
    assert probs.argmax(-1).tolist() == [0, 1]


@pytest.mark.parametrize("name", sorted(FEATURE_METHODS))
def test_uniform_features_give_finite_uniform_probabilities(name):
    support = torch.zeros(4, 8)  # e.g. all-black images through a ReLU network
    labels = torch.tensor([0, 0, 1, 1])
    clf = create_method(name, **FEATURE_METHODS[name])
    clf.process_support_set(support, labels)
    probs = clf(torch.zeros(1, 8)).softmax(-1)
    assert torch.isfinite(probs).all()
    assert torch.allclose(probs, torch.full((1, 2), 0.5), atol=1e-3)


def test_protonet_logits_are_negative_squared_distances():
    clf = create_method("protonet")
    support = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    clf.process_support_set(support, torch.tensor([0, 0, 1]))
    assert torch.allclose(clf.prototypes, torch.tensor([[1.0, 0.0], [0.0, 4.0]]))
    logits = clf(torch.tensor([[1.0, 1.0]]))
    assert torch.allclose(logits, torch.tensor([[-1.0, -10.0]]))


def test_class_means_ignore_other_classes():
    feats = torch.tensor([[1.0], [3.0], [10.0]])
    assert class_means(feats, torch.tensor([0, 0, 1]), 2).flatten().tolist() == [2.0, 10.0]


@pytest.mark.parametrize("labels,message", [
    (torch.tensor([0, 0, 2, 2]), "no support example"),
    (torch.tensor([0, 0, 0, 0]), "at least 2 classes"),
    (torch.tensor([0, 1, 1]), "items"),
])
def test_bad_support_sets_are_refused(labels, message):
    with pytest.raises(ValueError, match=message):
        create_method("protonet").process_support_set(torch.randn(4, 3), labels)


def test_forward_before_support_is_an_error():
    with pytest.raises(RuntimeError, match="process_support_set"):
        create_method("cosine")(torch.randn(1, 3))


def test_linear_probe_is_deterministic_and_its_loss_decreases():
    support, labels, query = two_blobs()
    a, b = create_method("linear", steps=30), create_method("linear", steps=30)
    a.process_support_set(support, labels)
    b.process_support_set(support, labels)
    assert torch.equal(a(query), b(query))
    assert a.losses[-1] < a.losses[0]
