"""Siamese networks for one-shot recognition (Koch, Zemel & Salakhutdinov, ICML DL workshop 2015).

Twin backbones embed two images; a learned weighted L1 distance, ``sigmoid(w . |f(a) - f(b)| +
b)``, is the probability that they show the same character. Verification becomes N-way
classification by scoring the query against every support image and taking the best class.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.fewshot.methods.base import (FewShotClassifier, TrainSetup, register_method,
                                         resolve_feature_dim)


@register_method("siamese")
class SiameseNetwork(FewShotClassifier):
    """Koch et al.'s siamese network over any backbone.

    Args:
        backbone: feature extractor, (B, ...) -> (B, D).
        feature_dim: D; None = ask the backbone (64 for Conv-4 on 28x28).
        reduce: how the K shots of a class are combined: "max" or "mean" of pair scores.
    """

    title = "Siamese network (learned weighted L1 distance between pairs)"
    short_title = "Siamese network"
    train_setup = TrainSetup()

    def __init__(self, backbone: nn.Module | None = None, feature_dim: int | None = None,
                 reduce: str = "max") -> None:
        super().__init__(backbone)
        if reduce not in ("max", "mean"):
            raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
        self.reduce = reduce
        self.head = nn.Linear(resolve_feature_dim(backbone, feature_dim), 1)
        self._last_pair_scores: torch.Tensor | None = None

    def pair_logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(A, D), (B, D) features -> (A, B) pre-sigmoid same-class scores."""
        return self.head((a.unsqueeze(1) - b.unsqueeze(0)).abs()).squeeze(-1)

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """(Q, ...) -> (Q, N) logits: per class, the max (or mean) pair score over its shots."""
        self._require_support()
        scores = self.pair_logits(self.embed(query), self.support_features)  # (Q, S)
        self._last_pair_scores = scores  # for episode_loss
        one_hot = nn.functional.one_hot(self.support_labels, self.n_way).bool()  # (S, N)
        masked = scores.unsqueeze(2).masked_fill(~one_hot.unsqueeze(0), float("-inf"))
        if self.reduce == "max":
            return masked.amax(1)  # (Q, N)
        return (scores @ one_hot.to(scores.dtype)) / one_hot.sum(0).to(scores.dtype)

    def episode_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Balanced binary cross-entropy over every (query, support) pair of the episode."""
        if self._last_pair_scores is None:
            raise RuntimeError("call forward() before episode_loss()")
        del logits  # the loss is on pairs, not on the per-class reduction
        scores = self._last_pair_scores
        same = (labels.unsqueeze(1) == self.support_labels.unsqueeze(0)).to(scores.dtype)
        pos_weight = (1 - same).sum() / same.sum().clamp(min=1)
        return nn.functional.binary_cross_entropy_with_logits(scores, same,
                                                              pos_weight=pos_weight)
