"""Baseline and Baseline++ (Chen, Liu, Kira, Wang & Huang, "A Closer Look at Few-shot
Classification", ICLR 2019).

Training is *standard* classification of all base classes (see
:func:`engine.fewshot.pretrain.pretrain_baseline`) with a linear (Baseline) or cosine
(Baseline++) classifier. At meta-test the backbone is frozen and a new classifier of the same
kind is fitted on the support features.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.fewshot.methods.base import FewShotClassifier, TrainSetup, fit_head, register_method


class CosineClassifier(nn.Module):
    """Baseline++'s classifier: logits = scale * cos(x, w_c).

    Args:
        in_features: D. n_classes: C. scale: multiplies the cosines (in [-1, 1]).
    """

    def __init__(self, in_features: int, n_classes: int, scale: float = 10.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, in_features) * 0.01)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, C) logits."""
        return self.scale * nn.functional.normalize(x, dim=1, eps=1e-8) @ \
            nn.functional.normalize(self.weight, dim=1, eps=1e-8).T


def make_classifier(kind: str, in_features: int, n_classes: int, scale: float = 10.0) -> nn.Module:
    """A "linear" or "cosine" classifier head."""
    if kind == "linear":
        return nn.Linear(in_features, n_classes)
    if kind == "cosine":
        return CosineClassifier(in_features, n_classes, scale)
    raise ValueError(f"classifier must be 'linear' or 'cosine', got {kind!r}")


@register_method("baseline")
class Baseline(FewShotClassifier):
    """Frozen backbone + a classifier fitted on the support set with full-batch Adam.

    Args:
        backbone: frozen feature extractor, (B, ...) -> (B, D).
        classifier: "linear" (Baseline) or "cosine" (Baseline++).
        steps, lr: Adam steps and learning rate of the head fit.
        scale: cosine scale (Baseline++).
        seed: seeds the head's initialisation (same inputs, same answer).
    """

    title = "Baseline (pre-trained backbone + linear head fitted on the support set)"
    short_title = "Baseline"
    train_setup = TrainSetup(trainer="classification")
    default_classifier = "linear"
    #: Submodules fitted per support set: never saved in, nor loaded from, a checkpoint.
    per_task_modules = ("head",)

    def __init__(self, backbone: nn.Module | None = None, classifier: str | None = None,
                 steps: int = 100, lr: float = 0.01, scale: float = 10.0, seed: int = 0) -> None:
        super().__init__(backbone)
        self.classifier = classifier or self.default_classifier
        make_classifier(self.classifier, 1, 2)  # validates the name
        self.steps, self.lr, self.scale, self.seed = steps, lr, scale, seed
        self.head: nn.Module | None = None
        self.losses: list[float] = []

    def process_support_set(self, support: torch.Tensor, labels: torch.Tensor) -> None:
        super().process_support_set(support, labels)
        feats = self.support_features.detach()  # (S, D)
        head = make_classifier(self.classifier, feats.shape[1], self.n_way, self.scale)
        self.losses = fit_head(head, feats, labels, self.steps, self.lr, self.seed)
        self.head = head

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """(Q, ...) -> (Q, N) logits of the fitted head."""
        self._require_support()
        return self.head(self.embed(query))


@register_method("baseline++")
class BaselinePlusPlus(Baseline):
    """Baseline++: the cosine classifier."""

    title = "Baseline++ (pre-trained backbone + cosine head fitted on the support set)"
    short_title = "Baseline++"
    default_classifier = "cosine"
