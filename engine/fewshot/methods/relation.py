"""Relation Networks (Sung, Yang, Zhang, Xiang, Torr & Hospedales, CVPR 2018).

The backbone keeps feature maps (Conv-4 with two pools: 64x7x7 for 28x28 Omniglot). Each class
feature map is the sum (paper) or mean (our default) of its support maps; a learned relation
module scores the concatenated (class, query) maps, and training regresses the score onto 1
(same class) / 0 (MSE loss).
"""
from __future__ import annotations

import torch
from torch import nn

from engine.fewshot.methods.base import (FewShotClassifier, TrainSetup, class_means,
                                         register_method, resolve_feature_shape)
from engine.models.conv4 import conv_block


class RelationModule(nn.Module):
    """Two conv blocks on the (2C, H, W) pair, then FC-8 -> ReLU -> FC-1 (a pre-sigmoid score).

    Args:
        channels: C of one feature map (64).
        spatial: H = W of the feature maps (7).
        hidden: size of the FC layer (8 in the paper).
    """

    def __init__(self, channels: int = 64, spatial: int = 7, hidden: int = 8) -> None:
        super().__init__()
        self.convs = nn.Sequential(conv_block(2 * channels, channels, pool=True),
                                   conv_block(channels, channels, pool=True))
        out = spatial // 4
        self.fc = nn.Sequential(nn.Linear(channels * out * out, hidden), nn.ReLU(inplace=True),
                                nn.Linear(hidden, 1))

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        """(B, 2C, H, W) -> (B,) pre-sigmoid relation scores."""
        B = pairs.shape[0]
        return self.fc(self.convs(pairs).reshape(B, -1)).squeeze(1)


@register_method("relation")
class RelationNetworks(FewShotClassifier):
    """Relation Networks.

    Args:
        backbone: (B, ...) -> (B, C*H*W) flattened feature maps (Conv4(pools=2)).
        feature_shape: (C, H, W) of those maps; None = ask the backbone (64x7x7 for Conv-4
            with two pools on 28x28).
        hidden: FC size of the relation module.
        aggregate: how a class's K support maps are combined: "mean" (default here, so a model
            trained at one K can be used at another) or "sum" (the paper, which trains one
            model per K).
    """

    title = "Relation Networks (a learned relation score between feature maps)"
    short_title = "Relation Networks"
    train_setup = TrainSetup(backbone={"pools": 2})

    def __init__(self, backbone: nn.Module | None = None,
                 feature_shape: tuple[int, int, int] | None = None, hidden: int = 8,
                 aggregate: str = "mean") -> None:
        super().__init__(backbone)
        if aggregate not in ("mean", "sum"):
            raise ValueError(f"aggregate must be 'mean' or 'sum', got {aggregate!r}")
        self.aggregate = aggregate
        self.feature_shape = resolve_feature_shape(backbone, feature_shape)
        C, H, W = self.feature_shape
        self.relation = RelationModule(C, H, hidden)
        self.class_maps: torch.Tensor | None = None

    def process_support_set(self, support: torch.Tensor, labels: torch.Tensor) -> None:
        super().process_support_set(support, labels)
        pooled = class_means(self.support_features, labels, self.n_way)  # (N, C*H*W)
        if self.aggregate == "sum":
            counts = torch.bincount(labels, minlength=self.n_way).to(pooled.dtype)
            pooled = pooled * counts[:, None]
        self.class_maps = pooled.reshape(self.n_way, *self.feature_shape)  # (N, C, H, W)

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """(Q, ...) -> (Q, N) pre-sigmoid relation scores (sigmoid: relation in [0, 1])."""
        self._require_support()
        q = self.embed(query).reshape(-1, *self.feature_shape)  # (Q, C, H, W)
        Q, N = q.shape[0], self.n_way
        pairs = torch.cat([self.class_maps.unsqueeze(0).expand(Q, -1, -1, -1, -1),
                           q.unsqueeze(1).expand(-1, N, -1, -1, -1)], 2)  # (Q, N, 2C, H, W)
        return self.relation(pairs.flatten(0, 1)).reshape(Q, N)

    def episode_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """MSE between sigmoid(scores) (Q, N) and one-hot labels (Q,), as in the paper."""
        target = nn.functional.one_hot(labels, logits.shape[1]).to(logits.dtype)
        return nn.functional.mse_loss(torch.sigmoid(logits), target)
