"""Few-shot segmentation: 1-5 support images with the object's mask painted on each, then that
object segmented in a query image (PANet, Wang et al., ICCV 2019; :mod:`engine.segmentation.panet`).

Embedded mode (offline): the frozen ImageNet EfficientNet-Lite0 behind segmentation-models-
pytorch's encoder interface (:class:`engine.models.smp_encoders.Lite0Encoder`), feature maps at
strides 8, 16 and 32 combined as a hypercolumn, with self-support refinement. Hub mode: smp's timm ConvNeXt-Tiny encoder (``smp-convnext-tiny``).
Images are resized (aspect kept) so the short side is :data:`SEG_SIZE` pixels; the mask comes
back at the query's own size.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from PIL import Image

from engine.segmentation.panet import PANet
from engine.models import load_model as get_model, get_spec, list_models
from engine.viz import overlay_heatmap

EMBEDDED_SEGMENTER = "efficientnet_lite0"
#: Short side (pixels) images are resized to before the encoder (long side at most twice it).
SEG_SIZE = 448
MAX_SUPPORT = 5
#: Encoder outputs used (smp convention [x, /2, /4, /8, /16, /32]): strides 8, 16, 32.
FEATURE_INDICES = (3, 4, 5)


def segment_models() -> list[str]:
    """Encoders the pipeline accepts: the embedded one first, then hub encoders."""
    return [EMBEDDED_SEGMENTER] + list_models(task="segmentation")


@dataclass
class SegmentResult:
    """Result of :class:`SegmentPipeline`.

    Attributes:
        mask: (H, W) bool at the query's size (True = object).
        probability: (H, W) float32 in [0, 1], PANet's foreground probability.
        similarity: (H, W) float32 in [-1, 1], cosine to the foreground prototype (mean of scales).
        overlay: RGB query with the mask tinted red; heatmap: RGB query with the similarity map.
        foreground_fraction: mask pixels / all pixels, in [0, 1]; foreground_pixels: count.
        model: encoder used; ms: wall milliseconds (encoding + PANet; model loading excluded).
        notes: remarks for the user.
    """

    mask: np.ndarray
    probability: np.ndarray
    similarity: np.ndarray
    overlay: Image.Image
    heatmap: Image.Image
    foreground_fraction: float
    foreground_pixels: int
    model: str
    ms: float
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        h, w = self.mask.shape
        return {"foreground_fraction": round(self.foreground_fraction, 5),
                "foreground_pixels": self.foreground_pixels, "size": [w, h],
                "model": self.model, "ms": round(self.ms, 1), "notes": self.notes}


def mask_overlay(image: Image.Image, mask: np.ndarray, color=(255, 0, 0), alpha: float = 0.5
                 ) -> Image.Image:
    """RGB image with ``mask`` ((H, W) bool) tinted ``color`` at opacity ``alpha``."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    tint = np.array(color, dtype=np.float32)
    out = np.where(mask[..., None], (1 - alpha) * base + alpha * tint, base)
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8))


class SegmentPipeline:
    """Segment the object shown in the support masks in a query image.

    Usage::

        result = SegmentPipeline()([(support_image, support_mask)], query_image)
    """

    @staticmethod
    def panet(model: str) -> PANet:
        """PANet over ``model``'s encoder (wraps the shared, read-only model; cheap)."""
        if model not in segment_models():
            raise ValueError(f"unknown segmentation model {model!r}; valid: "
                             f"{', '.join(segment_models())}")
        if model == EMBEDDED_SEGMENTER:
            from engine.models.smp_encoders import Lite0Encoder
            return PANet(Lite0Encoder(get_model(model).net), FEATURE_INDICES)
        return PANet(get_model(model), FEATURE_INDICES)

    def tensor(self, image: Image.Image, model: str) -> torch.Tensor:
        """(1, 3, H', W') normalised input, short side :data:`SEG_SIZE` (aspect kept)."""
        pre = replace(get_spec(model).preprocess, size=SEG_SIZE)
        return pre.whole_image(image, min_side=64)

    @staticmethod
    def check_support(support: list[tuple[Image.Image, np.ndarray]]) -> None:
        """Validate 1..5 (image, mask) pairs; the message names the bad support pair.

        Raises:
            ValueError: wrong count, non-RGB image, mask not (H, W) of its image, empty mask.
        """
        if not 1 <= len(support) <= MAX_SUPPORT:
            raise ValueError(f"give 1 to {MAX_SUPPORT} support images with masks, got "
                             f"{len(support)}")
        for i, (img, mask) in enumerate(support, start=1):
            if not isinstance(img, Image.Image) or img.mode != "RGB":
                raise ValueError(f"support image {i} must be an RGB PIL image")
            mask = np.asarray(mask)
            if mask.shape != (img.height, img.width):
                raise ValueError(f"support mask {i} is {mask.shape[::-1]} but its image is "
                                 f"{img.size}; load it with engine.inputs.images.load_mask")
            if not mask.any():
                raise ValueError(f"support mask {i} is empty: paint at least a few pixels "
                                 f"of the object on support image {i}.")

    def support_tensors(self, support: list[tuple[Image.Image, np.ndarray]], model: str
                        ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(image (1, 3, H', W') normalised, mask (H', W') bool) per support pair, at the
        encoder's input size; a mask that vanishes when shrunk keeps one pixel."""
        pairs = []
        for img, mask in support:
            x = self.tensor(img, model)
            m = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255).resize(
                (x.shape[3], x.shape[2]), Image.Resampling.NEAREST)
            m = torch.from_numpy(np.asarray(m) >= 128)
            ys, xs = np.nonzero(np.asarray(mask))
            if not m.any() and len(ys):  # a few painted pixels vanished when shrunk: keep one
                m[int(ys[0] * x.shape[2] / mask.shape[0]),
                  int(xs[0] * x.shape[3] / mask.shape[1])] = True
            pairs.append((x, m))
        return pairs

    def __call__(self, support: list[tuple[Image.Image, np.ndarray]], image: Image.Image, *,
                 model: str = EMBEDDED_SEGMENTER, threshold: float = 0.5) -> SegmentResult:
        """Segment ``image``.

        Args:
            support: 1..5 pairs (RGB image, (H, W) bool mask of that image).
            image: the query, RGB ``PIL.Image``.
            model: one of :func:`segment_models`.
            threshold: foreground probability (0..1) at or above which a pixel is the object.

        Returns:
            :class:`SegmentResult`.

        Raises:
            ValueError: bad support set (names the pair), non-RGB query, threshold out of range,
                unknown model.
            engine.models._hub.HubUnavailableError: a hub encoder while the hub is unreachable.
        """
        self.check_support(support)
        if not isinstance(image, Image.Image) or image.mode != "RGB":
            raise ValueError("the query must be an RGB PIL image (use engine.inputs.images.load_image)")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        panet = self.panet(model)  # loads the model outside the timed part
        t0 = time.perf_counter()
        protos = panet.prototypes([self.support_tensors(support, model)])
        probs, sims = panet(self.tensor(image, model), protos, (image.height, image.width))
        prob = probs[1].numpy().astype(np.float32)  # (H, W)
        sim = sims[0].numpy().astype(np.float32)
        mask = prob >= threshold
        ms = (time.perf_counter() - t0) * 1000.0
        notes = []
        if protos.background is None:
            notes.append("Every support mask covers the whole image, so there is no background "
                         "example: the first pass splits the query at the midpoint of its "
                         "similarity range, then the query's least object-like areas serve as "
                         "background.")
        pixels = int(mask.sum())
        return SegmentResult(mask, prob, sim, mask_overlay(image, mask),
                             overlay_heatmap(image, sim), pixels / mask.size, pixels, model, ms,
                             notes)
