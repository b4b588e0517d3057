"""The Conv-4 backbone of the few-shot literature (Vinyals et al., 2016; Snell et al., 2017).

Four blocks of [conv 3x3, 64 channels -> BatchNorm -> ReLU -> max-pool 2]; on a 28x28 Omniglot
image the spatial size goes 28 -> 14 -> 7 -> 3 -> 1, giving a 64-d embedding (~112k
parameters). Relation Networks (Sung et al., 2018) pool only in the first two blocks and keep
64x7x7 feature maps, which ``pools=2`` returns flattened.
"""
from __future__ import annotations

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    """conv 3x3 (padding 1) -> BatchNorm -> ReLU [-> max-pool 2]."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1),
                               nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Conv4(nn.Module):
    """Conv-4 feature extractor.

    Args:
        in_channels: 1 for Omniglot.
        hidden: channels of every block (64 in the papers).
        pools: how many of the four blocks end with a 2x2 max-pool (4, or 2 for Relation Nets).
    """

    def __init__(self, in_channels: int = 1, hidden: int = 64, pools: int = 4) -> None:
        super().__init__()
        if not 0 <= pools <= 4:
            raise ValueError(f"pools must be in [0, 4], got {pools}")
        self.config = {"in_channels": in_channels, "hidden": hidden, "pools": pools}
        self.blocks = nn.Sequential(*[conv_block(in_channels if i == 0 else hidden, hidden,
                                                 pool=i < pools) for i in range(4)])

    def feature_shape(self, size: int = 28) -> tuple[int, int, int]:
        """(C, H, W) of the feature maps for a ``size`` x ``size`` input."""
        s = size
        for _ in range(self.config["pools"]):
            s //= 2
        return (self.config["hidden"], s, s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) float32 -> (B, D) flattened features (D = 64 for 28x28, pools=4)."""
        B = x.shape[0]
        return self.blocks(x).reshape(B, -1)
