"""Linear head fine-tuned on the support set over frozen features: the "naive transfer"
baseline (the Baseline of Chen et al., ICLR 2019; Tian et al., ECCV 2020 use a logistic
regression the same way).
"""
from __future__ import annotations

import torch
from torch import nn

from engine.fewshot.methods.base import FewShotClassifier, fit_head, register_method


@register_method("linear")
class LinearProbe(FewShotClassifier):
    """Logistic regression on L2-normalised frozen features, trained with full-batch Adam.

    Args:
        backbone: frozen feature extractor, (B, ...) -> (B, D); None if inputs are features.
        steps: optimisation steps on the support set.
        lr: Adam learning rate.
        weight_decay: L2 penalty on the weights.
        seed: seeds the head's initialisation (same inputs, same answer).
    """

    title = "Linear head fine-tuned on the support set (naive transfer)"
    short_title = "Linear head"
    frozen_defaults = {"steps": 100, "lr": 0.1, "seed": 0}

    def __init__(self, backbone: nn.Module | None = None, steps: int = 100, lr: float = 0.1,
                 weight_decay: float = 1e-3, seed: int = 0) -> None:
        super().__init__(backbone)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps, self.lr, self.weight_decay, self.seed = steps, lr, weight_decay, seed
        self.head: nn.Linear | None = None
        self.losses: list[float] = []

    def process_support_set(self, support: torch.Tensor, labels: torch.Tensor) -> None:
        super().process_support_set(support, labels)
        feats = nn.functional.normalize(self.support_features.detach(), dim=-1, eps=1e-8)
        head = nn.Linear(feats.shape[1], self.n_way)
        self.losses = fit_head(head, feats, labels, self.steps, self.lr, self.seed,
                               self.weight_decay)
        self.head = head

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """(Q, ...) -> (Q, N) logits of the fitted linear head."""
        self._require_support()
        q = nn.functional.normalize(self.embed(query), dim=-1, eps=1e-8)
        return self.head(q)
