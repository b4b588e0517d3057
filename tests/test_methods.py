"""Few-shot methods: the registry (every method tested automatically) and the behaviour of the
methods over frozen features on small, known geometries."""
from __future__ import annotations

import inspect
import pkgutil

import pytest
import torch

import engine.fewshot.methods as methods_package
from engine.fewshot.methods import TrainSetup, create_method, list_methods, method_class
from engine.fewshot.methods.base import class_means
from engine.fewshot.photos import photo_methods
from engine.models.conv4 import Conv4

HIDDEN = 8  # tiny Conv-4: 8 channels


def two_blobs(shots=3, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.zeros(2, dim)
    centers[0, 0], centers[1, 1] = 5.0, 5.0
    support = torch.cat([centers[c] + 0.3 * torch.randn(shots, dim, generator=g)
                         for c in range(2)])
    labels = torch.arange(2).repeat_interleave(shots)
    query = centers + 0.3 * torch.randn(2, dim, generator=g)
    return support, labels, query


def tiny_episode(way=3, shot=2, query=2, seed=0):
    """Random 28x28 'drawings' whose class is a shifted mean."""
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(way, 1, 28, 28, generator=g)
    s = means.repeat_interleave(shot, 0) + 0.3 * torch.rand(way * shot, 1, 28, 28, generator=g)
    q = means.repeat_interleave(query, 0) + 0.3 * torch.rand(way * query, 1, 28, 28, generator=g)
    return s, torch.arange(way).repeat_interleave(shot), q


# ---- the registry: every registered method -------------------------------------------------

def test_every_module_of_the_methods_package_is_discovered():
    modules = {m.name for m in pkgutil.iter_modules(methods_package.__path__)} - {"base"}
    found = {method_class(m).__module__.rsplit(".", 1)[1] for m in list_methods()}
    assert found == modules
    assert {"protonet", "cosine", "linear", "matching", "matching-fce", "relation", "siamese",
            "maml", "maml-fo", "baseline", "baseline++", "hallucination"} <= set(list_methods())


def test_registry_rejects_unknown_names():
    with pytest.raises(ValueError, match="valid methods"):
        create_method("knn-9000")


@pytest.mark.parametrize("name", list_methods())
def test_method_describes_itself_and_is_offered_somewhere(name):
    cls = method_class(name)
    assert cls.method_name == name and cls.title and cls.short_title
    assert len(cls.short_title) <= 30 and len(cls.title) <= 90
    assert cls.frozen_defaults is not None or cls.train_setup is not None, name
    if cls.train_setup is not None:
        assert isinstance(cls.train_setup, TrainSetup)
    if cls.adapts_weights:  # per-call options, changed on a copy by the pipeline
        params = inspect.signature(cls).parameters
        assert {"inner_steps", "inner_lr"} <= set(params)


@pytest.mark.parametrize("name", list_methods())
def test_method_builds_and_classifies_a_tiny_episode_with_normalised_probabilities(name):
    cls = method_class(name)
    torch.manual_seed(0)
    if cls.train_setup is not None:  # as meta-trained: a tiny Conv-4 on 28x28 inputs
        setup = cls.train_setup
        model = create_method(name, Conv4(hidden=HIDDEN, **setup.backbone), **setup.kwargs)
        s, sl, q = tiny_episode()
        with torch.no_grad():
            model.eval().process_support_set(s, sl)
            probs = model(q).softmax(-1)
        assert probs.shape == (6, 3)
        assert torch.isfinite(probs).all()
        assert torch.allclose(probs.sum(-1), torch.ones(6), atol=1e-5)
    if cls.frozen_defaults is not None:  # over frozen features
        support, labels, query = two_blobs()
        model = create_method(name, **cls.frozen_defaults)
        model.process_support_set(support, labels)
        probs = model(query).softmax(-1)
        assert torch.allclose(probs.sum(-1), torch.ones(2))
        assert probs.argmax(-1).tolist() == [0, 1]


@pytest.mark.parametrize("name,argument", [("maml-fo", "first_order"), ("maml", "first_order"),
                                           ("matching-fce", "fce"), ("matching", "fce")])
def test_variants_are_classes_not_arguments_accepted_and_ignored(name, argument):
    with pytest.raises(TypeError, match=argument):
        create_method(name, Conv4(hidden=HIDDEN), **{argument: False})
    assert method_class("maml-fo").first_order and not method_class("maml").first_order


def test_feature_sizes_come_from_the_backbone_or_must_be_given():
    model = create_method("relation", Conv4(hidden=HIDDEN, pools=2))
    assert model.feature_shape == (HIDDEN, 7, 7)
    assert create_method("siamese", Conv4(hidden=HIDDEN)).head.in_features == HIDDEN
    with pytest.raises(ValueError, match="feature size is needed"):
        create_method("maml")


# ---- methods over frozen features ----------------------------------------------------------

@pytest.mark.parametrize("name", photo_methods())
def test_uniform_features_give_finite_uniform_probabilities(name):
    support = torch.zeros(4, 8)  # e.g. all-black images through a ReLU network
    labels = torch.tensor([0, 0, 1, 1])
    clf = create_method(name, **method_class(name).frozen_defaults)
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
