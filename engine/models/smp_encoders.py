"""Segmentation encoders with segmentation-models-pytorch's encoder interface, so a decoder
(U-Net, FPN, ...) can be meta-trained on them later.

* :class:`Lite0Encoder` wraps the embedded ImageNet EfficientNet-Lite0 (the timm-compatible
  :class:`~engine.models.efficientnet.Lite0Net` of :mod:`engine.models.efficientnet`) as an smp encoder: ``out_channels``, ``get_stages()``
  (for ``make_dilated``) and a forward returning the 6 feature maps smp decoders expect.
* Hub mode: ``smp-convnext-tiny``, smp's ``TimmUniversalEncoder`` around timm's ConvNeXt-Tiny
  (ImageNet-12k pre-trained, fine-tuned on ImageNet-1k; Liu et al., CVPR 2022), created only when
  chosen and downloaded by timm from the hub.

Both return ``[x, 1/2, 1/4, 1/8, 1/16, 1/32]`` feature maps (smp's convention).
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch
from segmentation_models_pytorch.encoders._base import EncoderMixin
from torch import nn


class Lite0Encoder(nn.Module, EncoderMixin):
    """EfficientNet-Lite0 as a segmentation-models-pytorch encoder (depth 5, stride 32).

    Args:
        net: a timm ``efficientnet_lite0`` module or its plain-PyTorch twin
            :class:`~engine.models.efficientnet.Lite0Net` (e.g. ``EfficientNetLite0().net``).
            It is shared, not copied: deep-copy it before training or ``make_dilated``.
        depth: number of stages returned (1..5), as in smp.

    Output channels are (3, 32, 24, 40, 112, 320), smp's own ``timm-efficientnet-lite0``.
    """

    def __init__(self, net: nn.Module, depth: int = 5) -> None:
        nn.Module.__init__(self)
        EncoderMixin.__init__(self)
        if not 1 <= depth <= 5:
            raise ValueError(f"depth must be in 1..5, got {depth}")
        self.net = net
        self._depth = depth
        self._out_channels = [3, net.conv_stem.out_channels, 24, 40, 112, 320]

    def get_stages(self) -> Dict[int, Sequence[nn.Module]]:
        """Modules after which the stride becomes 16 and 32 (what ``make_dilated`` patches)."""
        return {16: [self.net.blocks[3:5]], 32: [self.net.blocks[5:]]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) normalised (Lite0 preprocessing) -> depth + 1 maps, the input first:
        (B, 32, H/2, W/2), (B, 24, H/4, ..), (B, 40, H/8, ..), (B, 112, H/16, ..),
        (B, 320, H/32, ..)."""
        net, features = self.net, [x]
        groups = [None, (0, 2), (2, 3), (3, 5), (5, 7)]
        h = net.bn1(net.conv_stem(x))
        features.append(h)
        for level in range(2, self._depth + 1):
            start, stop = groups[level - 1]
            for block in net.blocks[start:stop]:
                h = block(h)
            features.append(h)
        return features[: self._depth + 1]
