"""Registry entries of the few-shot segmentation encoders (imports nothing heavy)."""
from __future__ import annotations

import torch

from engine.models._registry import ModelSpec, register_model
from engine.models.preprocess import Preprocess

#: ImageNet preprocessing of timm's ConvNeXt weights.
CONVNEXT_PREPROCESS = Preprocess(size=224, crop_pct=0.95, mean=(0.485, 0.456, 0.406),
                                 std=(0.229, 0.224, 0.225), interpolation="bicubic")


def _convnext(device: torch.device, dtype: torch.dtype, name: str = "convnext_tiny.in12k_ft_in1k",
              pretrained: bool = True):
    from segmentation_models_pytorch.encoders import get_encoder
    enc = get_encoder(f"tu-{name}", weights=True if pretrained else None)
    return enc.eval().to(device=device, dtype=dtype)


register_model(ModelSpec(
    name="smp-convnext-tiny", task="segmentation", source="hub", factory=_convnext,
    description="ConvNeXt-Tiny (IN-12k -> IN-1k) as an smp encoder, for few-shot segmentation",
    preprocess=CONVNEXT_PREPROCESS, weights="hub: timm/convnext_tiny.in12k_ft_in1k",
    license="Apache-2.0", size_mb=111.3))
