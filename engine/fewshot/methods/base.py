"""The interface every few-shot classifier shares, after easyfsl (Bennequin, 2021).

A method is built around a backbone (any module mapping inputs to (B, D) features), is given a
support set with :meth:`FewShotClassifier.process_support_set`, then scores queries with
``forward``. It keeps the support set on ``self``, so **one instance serves one request or one
session, never every visitor**: the engine creates a new instance per call.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

_METHODS: dict[str, Callable[..., "FewShotClassifier"]] = {}


def register_method(name: str):
    """Class decorator adding a method to the registry under ``name``."""
    def wrap(cls):
        if name in _METHODS:
            raise ValueError(f"method {name!r} is already registered")
        _METHODS[name] = cls
        cls.method_name = name
        return cls
    return wrap


def _ensure_loaded() -> None:
    import importlib
    for module in ("protonet", "cosine", "linear", "matching", "relation", "siamese", "maml",
                   "baseline", "hallucination"):
        importlib.import_module(f"engine.fewshot.methods.{module}")


def list_methods() -> list[str]:
    """Names of the registered few-shot methods."""
    _ensure_loaded()
    return sorted(_METHODS)


def create_method(name: str, backbone: nn.Module | None = None, **kwargs) -> "FewShotClassifier":
    """A new instance of method ``name`` around ``backbone``.

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    _ensure_loaded()
    if name not in _METHODS:
        raise ValueError(f"unknown few-shot method {name!r}; valid methods: "
                         f"{', '.join(sorted(_METHODS))}")
    return _METHODS[name](backbone=backbone, **kwargs)


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

    Args:
        backbone: module mapping (B, ...) inputs to (B, D) features; None = inputs are features.
    """

    method_name = "base"

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
