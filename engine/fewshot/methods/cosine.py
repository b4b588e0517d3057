"""Cosine nearest-prototype classifier: the Baseline++ head of Chen et al., "A Closer Look at
Few-shot Classification" (ICLR 2019), with class weights set to the support means.

Logits are ``scale * cos(f(q), w_n)``; the scale (Chen et al. use 2 to 10) sets how peaked the
softmax is.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.fewshot.methods.base import FewShotClassifier, class_means, register_method


@register_method("cosine")
class CosinePrototypes(FewShotClassifier):
    """Baseline++-style cosine classifier with one weight vector per class (its normalised mean).

    Args:
        backbone: feature extractor, (B, ...) -> (B, D); None if inputs are features.
        scale: multiplies the cosine similarities (in [-1, 1]) to give logits.
    """

    title = "Cosine nearest prototype (Baseline++ classifier)"
    short_title = "Cosine (Baseline++)"
    frozen_defaults = {"scale": 10.0}

    def __init__(self, backbone: nn.Module | None = None, scale: float = 10.0) -> None:
        super().__init__(backbone)
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = scale
        self.prototypes: torch.Tensor | None = None

    def process_support_set(self, support: torch.Tensor, labels: torch.Tensor) -> None:
        super().process_support_set(support, labels)
        feats = nn.functional.normalize(self.support_features, dim=-1, eps=1e-8)
        self.prototypes = nn.functional.normalize(class_means(feats, labels, self.n_way),
                                                  dim=-1, eps=1e-8)  # (N, D)

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """(Q, ...) -> (Q, N) logits = scale * cos(f(q), prototype_n)."""
        self._require_support()
        q = nn.functional.normalize(self.embed(query), dim=-1, eps=1e-8)  # (Q, D)
        return self.scale * q @ self.prototypes.T
