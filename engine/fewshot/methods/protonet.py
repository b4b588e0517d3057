"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017).

Each class is represented by the mean of its support embeddings (its prototype); a query's
logits are negative squared Euclidean distances to the prototypes, divided by a temperature.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.fewshot.methods.base import (FewShotClassifier, TrainSetup, class_means,
                                         register_method)


@register_method("protonet")
class PrototypicalNetworks(FewShotClassifier):
    """Prototypical Networks.

    Args:
        backbone: feature extractor, (B, ...) -> (B, D); None if inputs are features.
        normalize: L2-normalise embeddings first (for a frozen pretrained backbone, whose
            feature norms vary with image content; meta-trained embeddings leave it off).
        temperature: logits = -d^2 / temperature.
    """

    title = "Prototypical Networks (squared Euclidean to class means)"
    short_title = "Prototypical Networks"
    frozen_defaults = {"normalize": True, "temperature": 0.2}
    train_setup = TrainSetup()

    def __init__(self, backbone: nn.Module | None = None, normalize: bool = False,
                 temperature: float = 1.0) -> None:
        super().__init__(backbone)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.normalize, self.temperature = normalize, temperature
        self.prototypes: torch.Tensor | None = None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        feats = super().embed(x)
        return nn.functional.normalize(feats, dim=-1) if self.normalize else feats

    def process_support_set(self, support: torch.Tensor, labels: torch.Tensor) -> None:
        super().process_support_set(support, labels)
        self.prototypes = class_means(self.support_features, labels, self.n_way)  # (N, D)

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """(Q, ...) -> (Q, N) logits = -||f(q) - c_n||^2 / temperature."""
        self._require_support()
        q = self.embed(query)  # (Q, D)
        return -torch.cdist(q, self.prototypes).pow(2) / self.temperature
