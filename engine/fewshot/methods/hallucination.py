"""Prototypical Networks with a jointly trained hallucinator (Wang, Girshick, Hebert &
Hariharan, "Low-Shot Learning from Imaginary Data", CVPR 2018).

A generator G(x, z) maps a seed support feature and noise to an extra example of the seed's
class; the prototypes are the means of the real and hallucinated features. G is meta-trained
end to end with the ProtoNet loss (the classifier is :mod:`engine.fewshot.methods.protonet`).
Here G is a residual MLP (x + MLP([x, z])), a choice of ours for stable training on CPU.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.fewshot.methods.base import (FewShotClassifier, TrainSetup, class_means,
                                         resolve_feature_dim, register_method)
from engine.fewshot.methods.protonet import PrototypicalNetworks


class Hallucinator(nn.Module):
    """G(x, z) = x + MLP([x, z]).

    Args:
        feature_dim: D. noise_dim: Z. hidden: MLP width.
    """

    def __init__(self, feature_dim: int = 64, noise_dim: int = 64, hidden: int = 128) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.mlp = nn.Sequential(nn.Linear(feature_dim + noise_dim, hidden),
                                 nn.LeakyReLU(0.1), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(0.1), nn.Linear(hidden, feature_dim))

    def forward(self, seeds: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """(B, D) seed features, (B, Z) noise -> (B, D) hallucinated features."""
        return seeds + self.mlp(torch.cat([seeds, noise], 1))


@register_method("hallucination")
class HallucinationProtoNet(PrototypicalNetworks):
    """ProtoNet whose prototypes also average ``n_generated`` hallucinated features per class.

    Args:
        backbone: feature extractor, (B, ...) -> (B, D).
        feature_dim: D of the hallucinator; None = the backbone's (64 for Conv-4).
        noise_dim: Z of the hallucinator.
        n_generated: hallucinated examples per class.
        seed: seeds the noise at inference (same support set, same prototypes).
    """

    title = "Prototypical Networks + hallucinated examples (Wang et al., 2018)"
    short_title = "ProtoNet + hallucinator"
    frozen_defaults = None
    train_setup = TrainSetup(kwargs={"n_generated": 5})

    def __init__(self, backbone: nn.Module | None = None, feature_dim: int | None = None,
                 noise_dim: int = 64, n_generated: int = 5, seed: int = 0) -> None:
        super().__init__(backbone)
        self.hallucinator = Hallucinator(resolve_feature_dim(backbone, feature_dim), noise_dim)
        self.n_generated, self.seed = n_generated, seed
        self._train_generator: torch.Generator | None = None
        self.generated: torch.Tensor | None = None

    def _generator(self) -> torch.Generator:
        if not self.training:  # inference: a fresh generator per call
            return torch.Generator().manual_seed(self.seed)
        if self._train_generator is None:
            self._train_generator = torch.Generator().manual_seed(self.seed)
        return self._train_generator

    def process_support_set(self, support: torch.Tensor, labels: torch.Tensor) -> None:
        FewShotClassifier.process_support_set(self, support, labels)
        feats, N, M = self.support_features, self.n_way, self.n_generated
        gen = self._generator()
        # a random seed example of each class for each hallucination: (N*M,) indices
        counts = torch.bincount(labels, minlength=N)
        order = torch.argsort(labels, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        pick = (torch.rand(N, M, generator=gen) * counts[:, None]).long()  # (N, M)
        seeds = feats[order[(starts[:, None] + pick).flatten()]]  # (N*M, D)
        noise = torch.randn(N * M, self.hallucinator.noise_dim, generator=gen).to(feats)
        self.generated = self.hallucinator(seeds, noise)  # (N*M, D)
        all_feats = torch.cat([feats, self.generated])
        all_labels = torch.cat([labels, torch.arange(N).repeat_interleave(M)])
        self.prototypes = class_means(all_feats, all_labels, N)  # (N, D)
