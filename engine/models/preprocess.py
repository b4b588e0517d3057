"""Image preprocessing that travels with a model's weights (size, crop, mean, std, interpolation)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

_INTERP = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
           "nearest": Image.Resampling.NEAREST}


@dataclass(frozen=True)
class Preprocess:
    """Resize, centre-crop and normalise PIL images into a model's input tensor.

    Attributes:
        size: output side in pixels (square).
        crop_pct: the short side is first resized to ``size / crop_pct`` then centre-cropped.
        mean, std: per-channel normalisation of [0, 1] RGB values.
        interpolation: "bicubic", "bilinear" or "nearest".
    """

    size: int = 224
    crop_pct: float = 0.875
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"

    def resize_crop(self, image: Image.Image) -> Image.Image:
        """Resize the short side to ``size / crop_pct`` and centre-crop ``size`` x ``size``."""
        if image.mode != "RGB":
            raise ValueError(f"expected an RGB image, got mode {image.mode!r}")
        scale_to = max(self.size, int(round(self.size / self.crop_pct)))
        w, h = image.size
        s = scale_to / min(w, h)
        nw, nh = max(self.size, round(w * s)), max(self.size, round(h * s))
        image = image.resize((nw, nh), _INTERP[self.interpolation])
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        return image.crop((left, top, left + self.size, top + self.size))

    def whole_image(self, image: Image.Image, max_long: int | None = None,
                    min_side: int = 32) -> torch.Tensor:
        """One image, aspect ratio kept, for fully convolutional use (CAM, feature maps).

        The short side is resized to ``size``, the long side capped at ``max_long`` (default
        2 * ``size``); no side goes below ``min_side`` pixels.

        Returns:
            (1, 3, H, W) float32 tensor, normalised.
        """
        max_long = max_long or 2 * self.size
        w, h = image.size
        scale = self.size / min(w, h)
        if max(w, h) * scale > max_long:
            scale = max_long / max(w, h)
        nw, nh = max(min_side, round(w * scale)), max(min_side, round(h * scale))
        arr = np.asarray(image.convert("RGB").resize((nw, nh), _INTERP[self.interpolation]),
                         dtype=np.float32) / 255.0
        return self.normalize(torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous())

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float32 in [0, 1] -> normalised (B, 3, H, W) float32."""
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std

    def __call__(self, images: list[Image.Image], crop: bool = True) -> torch.Tensor:
        """Turn RGB PIL images into a batch.

        Args:
            images: RGB images of any size.
            crop: centre-crop (classification) or resize the whole image to ``size`` x ``size``.

        Returns:
            (B, 3, size, size) float32 tensor, normalised.
        """
        if not images:
            raise ValueError("no images to preprocess")
        arrays = []
        for img in images:
            img = self.resize_crop(img) if crop else img.resize((self.size, self.size),
                                                                _INTERP[self.interpolation])
            arrays.append(np.asarray(img, dtype=np.float32) / 255.0)
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (B, 3, H, W)
        return self.normalize(x)
