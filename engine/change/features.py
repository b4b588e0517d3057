"""The change room's view through the backbone: feature maps of the whole pair (for the
difference map) and one pooled embedding plus class logits per region crop (for moved-object
matching and for naming regions with ImageNet classes), all from one EfficientNet-Lite0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

if TYPE_CHECKING:
    from engine.models.efficientnet import EfficientNetLite0
    from engine.models.preprocess import Preprocess

#: Strides of the feature maps compared in the difference map.
MAP_STRIDES = (8, 16)


def to_image(arr: np.ndarray) -> Image.Image:
    """(H, W, 3) float RGB in [0, 1] (clipped) -> RGB ``PIL.Image``."""
    return Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8))


def to_array(image: Image.Image) -> np.ndarray:
    """RGB ``PIL.Image`` -> (H, W, 3) float32 in [0, 1]."""
    return np.asarray(image, dtype=np.float32) / 255.0


@dataclass
class CropFeatures:
    """What one backbone pass says about N crops.

    Attributes:
        embeddings: (N, C) float32 pooled head features, unit L2 norm (C = 1280 for Lite0).
        logits: (N, 1000) float32 ImageNet logits.
    """

    embeddings: torch.Tensor
    logits: torch.Tensor


class ChangeFeatures:
    """Backbone features for change detection.

    Args:
        backbone: a network whose forward gives ``features`` {stride: (B, C_s, H/s, W/s)},
            ``pooled`` (B, C) and ``logits`` (B, 1000) (as :class:`EfficientNetLite0`).
        preprocess: its preprocessing.
    """

    def __init__(self, backbone: EfficientNetLite0, preprocess: Preprocess) -> None:
        self.backbone, self.preprocess = backbone, preprocess

    @property
    def class_names(self) -> tuple[str, ...]:
        """The backbone's 1,000 class names, in logit order."""
        return self.backbone.class_names

    def maps(self, images: list[np.ndarray]) -> list[dict[int, torch.Tensor]]:
        """Feature maps of each whole image at the strides of :data:`MAP_STRIDES`.

        Args:
            images: (H, W, 3) float32 RGB arrays in [0, 1] (the aligned pair).

        Returns:
            One dict per image, {8: (1, 40, h/8, w/8), 16: (1, 112, h/16, w/16)} float32 for
            Lite0, where (h, w) is the image resized by :meth:`Preprocess.whole_image`.
        """
        out = []
        with torch.no_grad():
            for arr in images:
                x = self.preprocess.whole_image(to_image(arr))  # (1, 3, h, w)
                feats = self.backbone(x).features
                out.append({s: feats[s] for s in MAP_STRIDES})
        return out

    def crops(self, crops: list[Image.Image]) -> CropFeatures:
        """Pooled embedding and class logits of each crop (each resized whole, no crop).

        Args:
            crops: N >= 1 RGB images of any size.

        Returns:
            :class:`CropFeatures` of the N crops.
        """
        x = self.preprocess(crops, crop=False)  # (N, 3, size, size)
        with torch.no_grad():
            out = self.backbone(x)
        return CropFeatures(F.normalize(out.pooled, dim=-1), out.logits)
