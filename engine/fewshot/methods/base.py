"""The interface every few-shot classifier shares, after easyfsl (Bennequin, 2021), and the
registry of methods.

A method is built around a backbone (any module mapping inputs to (B, D) features), is given a
support set with :meth:`FewShotClassifier.process_support_set`, then scores queries with
``forward``. It keeps the support set on ``self``, so **one instance serves one request or one
session, never every visitor**: pipelines create (or deep-copy) an instance per call.

A method describes itself with class attributes (its titles, how it is used over a frozen
pretrained backbone, how it is meta-trained, whether it adapts its weights per task), so adding
a method is adding one module to this package: every module here is imported by
:func:`list_methods` and registers its classes with :func:`register_method`.
"""
from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

_METHODS: dict[str, type["FewShotClassifier"]] = {}


@dataclass(frozen=True)
class TrainSetup:
    """How a method is meta-trained on 28x28 Omniglot (:mod:`engine.fewshot.episodic`).

    Attributes:
        backbone: Conv-4 constructor arguments (``{"pools": 2}`` keeps 64x7x7 feature maps).
        kwargs: the method's constructor arguments (saved in the checkpoint's metadata).
        trainer: "episodic" (episodes with the method's loss) or "classification" (standard
            mini-batch pre-training of all base classes, as Baseline / Baseline++ do).
    """

    backbone: dict = field(default_factory=dict)
    kwargs: dict = field(default_factory=dict)
    trainer: str = "episodic"

    def __post_init__(self) -> None:
        if self.trainer not in ("episodic", "classification"):
            raise ValueError(f"trainer must be 'episodic' or 'classification', "
                             f"got {self.trainer!r}")


def register_method(name: str):
    """Class decorator adding a method to the registry under ``name``.

    Raises:
        ValueError: the name is taken, or the class has no ``title`` / ``short_title``.
    """
    def wrap(cls):
        if name in _METHODS:
            raise ValueError(f"method {name!r} is already registered")
        if not cls.__dict__.get("title") or not cls.__dict__.get("short_title"):
            raise ValueError(f"method {name!r} must define its own title and short_title")
        _METHODS[name] = cls
        cls.method_name = name
        return cls
    return wrap


def _discover() -> None:
    """Import every module of this package once (each registers its methods)."""
    package = importlib.import_module("engine.fewshot.methods")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def list_methods() -> list[str]:
    """Names of the registered few-shot methods, sorted."""
    _discover()
    return sorted(_METHODS)


def method_class(name: str) -> type["FewShotClassifier"]:
    """The class registered as ``name`` (its titles, defaults and training setup).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    _discover()
    if name not in _METHODS:
        raise ValueError(f"unknown few-shot method {name!r}; valid methods: "
                         f"{', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def create_method(name: str, backbone: nn.Module | None = None, **kwargs) -> "FewShotClassifier":
    """A new instance of method ``name`` around ``backbone``.

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    return method_class(name)(backbone=backbone, **kwargs)


def resolve_feature_shape(backbone: nn.Module | None, given: int | tuple | None) -> tuple[int, ...]:
    """The feature shape a method's layers are sized for: ``given``, else the backbone's.

    Args:
        backbone: the method's backbone; Conv-4 reports its (C, H, W) for 28x28 inputs with
            ``feature_shape()``.
        given: an int D, a (C, H, W) shape, or None to ask the backbone.

    Returns:
        The shape as a tuple ((D,) for an int).

    Raises:
        ValueError: ``given`` is None and the backbone cannot tell its feature shape.
    """
    if given is not None:
        return (int(given),) if isinstance(given, int) else tuple(int(s) for s in given)
    if backbone is None or not hasattr(backbone, "feature_shape"):
        raise ValueError("the feature size is needed (feature_dim / feature_shape) for a "
                         "backbone without feature_shape()")
    return tuple(backbone.feature_shape())


def resolve_feature_dim(backbone: nn.Module | None, given: int | None) -> int:
    """D of the backbone's flattened features: ``given``, else the product of its shape."""
    return math.prod(resolve_feature_shape(backbone, given))


def check_support(support: torch.Tensor, labels: torch.Tensor) -> int:
    """Validate a support set and return the number of classes N.

    Args:
        support: (S, ...) support inputs or features.
        labels: (S,) int64 class indices, each of 0..N-1 present at least once.

    Raises:
        ValueError: shapes disagree, a label is missing or negative, or fewer than 2 classes.
    """
    if labels.ndim != 1 or support.shape[0] != labels.shape[0]:
        raise ValueError(f"support has {support.shape[0]} items but labels have shape "
                         f"{tuple(labels.shape)}")
    if labels.numel() == 0:
        raise ValueError("the support set is empty")
    if labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got {labels.min().item()}")
    n_way = int(labels.max().item()) + 1
    counts = torch.bincount(labels, minlength=n_way)
    missing = (counts == 0).nonzero().flatten().tolist()
    if missing:
        raise ValueError(f"classes {missing} have no support example")
    if n_way < 2:
        raise ValueError("a few-shot task needs at least 2 classes")
    if not torch.isfinite(support).all():
        raise ValueError("the support set contains NaN or infinite values")
    return n_way


def class_means(features: torch.Tensor, labels: torch.Tensor, n_way: int) -> torch.Tensor:
    """Prototypes: the mean feature of each class.

    Args:
        features: (S, D) float32.
        labels: (S,) int64 in [0, n_way).

    Returns:
        (n_way, D) float32.
    """
    one_hot = nn.functional.one_hot(labels, n_way).to(features.dtype)  # (S, N)
    return (one_hot.T @ features) / one_hot.sum(0).unsqueeze(1)


def fit_head(head: nn.Module, features: torch.Tensor, labels: torch.Tensor, steps: int,
             lr: float, seed: int = 0, weight_decay: float = 0.0) -> list[float]:
    """Fit a classifier head on support features with full-batch Adam and cross-entropy.

    The head's weight is re-initialised from N(0, 0.01^2) with a generator seeded by ``seed``
    (bias, if any, zeroed), so the same support set always gives the same head.

    Args:
        head: module with a ``weight`` (and optionally ``bias``) mapping (S, D) -> (S, N).
        features: (S, D) float32 support features (not back-propagated into).
        labels: (S,) int64 in [0, N).
        steps: optimisation steps (>= 1); lr: Adam learning rate; weight_decay: L2 penalty.

    Returns:
        The loss before each step (``steps`` floats). The head is left in eval mode.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.01)
        if getattr(head, "bias", None) is not None:
            head.bias.zero_()
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(head(features.detach()), labels)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    head.eval()
    return losses


class FewShotClassifier(nn.Module):
    """Base class: keeps the backbone, the support features and labels.

    Subclasses describe themselves with these class attributes:

    Attributes:
        method_name: the registered name (set by :func:`register_method`).
        title: plain-language name for results ("Prototypical Networks (squared Euclidean
            to class means)").
        short_title: a dropdown label short enough for a half-width column.
        frozen_defaults: constructor arguments over the features of a frozen pretrained
            backbone (the Photos panel); None = not offered there.
        train_setup: how it is meta-trained on Omniglot (:class:`TrainSetup`); None = not
            meta-trained.
        adapts_weights: MAML-style: a copy of its weights is fine-tuned on every support set,
            so features cannot be cached across tasks, and its ``inner_steps`` / ``inner_lr``
            attributes (constructor arguments of the same names) can be changed per call;
            ``inner_losses`` then holds the support loss per step.

    Args:
        backbone: module mapping (B, ...) inputs to (B, D) features; None = inputs are features.
    """

    method_name: ClassVar[str] = "base"
    title: ClassVar[str] = ""
    short_title: ClassVar[str] = ""
    frozen_defaults: ClassVar[dict | None] = None
    train_setup: ClassVar[TrainSetup | None] = None
    adapts_weights: ClassVar[bool] = False

    def __init__(self, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone if backbone is not None else nn.Identity()
        self.support_features: torch.Tensor | None = None
        self.support_labels: torch.Tensor | None = None
        self.n_way = 0

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ...) inputs -> (B, D) float32 features through the backbone."""
        feats = self.backbone(x)
        if feats.ndim != 2:
            raise ValueError(f"backbone must return (B, D) features, got {tuple(feats.shape)}")
        return feats

    def process_support_set(self, support: torch.Tensor, labels: torch.Tensor) -> None:
        """Store the support set (embedded by the backbone).

        Args:
            support: (S, ...) inputs, S = sum of the shots of all classes.
            labels: (S,) int64 in [0, N).
        """
        self.n_way = check_support(support, labels)
        self.support_labels = labels
        self.support_features = self.embed(support)

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """(Q, ...) queries -> (Q, N) float32 logits (softmax gives class probabilities)."""
        raise NotImplementedError  # each method defines it

    def _require_support(self) -> None:
        if self.support_features is None:
            raise RuntimeError("call process_support_set() before forward()")
