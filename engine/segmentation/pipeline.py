"""Few-shot segmentation: 1-5 support images with the object's mask painted on each, then that
object segmented in a query image (PANet, Wang et al., ICCV 2019; :mod:`engine.segmentation.panet`).

The pipeline is given an encoder with segmentation-models-pytorch's interface (a module mapping
(1, 3, H, W) to the maps ``[x, /2, /4, /8, /16, /32]``) and that encoder's preprocessing; the
factory (:mod:`engine.factory`) passes the frozen ImageNet EfficientNet-Lite0 behind
:class:`engine.models.smp_encoders.Lite0Encoder` offline, or smp's timm ConvNeXt-Tiny encoder
(``smp-convnext-tiny``) from the hub. The maps at strides 8, 16 and 32 are combined as a
hypercolumn, with self-support refinement. Images are resized (aspect kept) so the short side
is :data:`SEG_SIZE` pixels; the mask comes back at the query's own size.

    >>> pipe = SegmentPipeline(Lite0Encoder(net), LITE0_PREPROCESS, name="efficientnet_lite0")
    >>> result = pipe([(support_image, support_mask)], query_image, threshold=0.5)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from PIL import Image
from torch import nn

from engine.errors import UserInputError
from engine.models.preprocess import Preprocess
from engine.segmentation.panet import PRESENCE_RATIO, PANet
from engine.viz import overlay_heatmap
from engine.inputs.images import require_rgb

#: Short side (pixels) images are resized to before the encoder (long side at most twice it).
SEG_SIZE = 448
#: Most support (image, mask) pairs one request may give.
MAX_SUPPORT = 5
#: Encoder outputs used (smp convention [x, /2, /4, /8, /16, /32]): strides 8, 16, 32.
FEATURE_INDICES = (3, 4, 5)
#: Smallest side (pixels) of an encoder input, so a tiny image still has a stride-32 map.
MIN_SIDE = 64

#: (image, mask) support pair: RGB image and its (H, W) bool mask (True = object).
SupportPair = tuple[Image.Image, np.ndarray]


@dataclass
class SegmentResult:
    """Result of :class:`SegmentPipeline`.

    Attributes:
        mask: (H, W) bool at the query's size (True = object).
        probability: (H, W) float32 in [0, 1], PANet's foreground probability.
        similarity: (H, W) float32 in [-1, 1], cosine to the foreground prototype (mean of scales).
        overlay: RGB query with the mask tinted red; heatmap: RGB query with the similarity map.
        foreground_fraction: mask pixels / all pixels, in [0, 1]; foreground_pixels: count.
        model: encoder used (the pipeline's ``name``); ms: wall milliseconds (encoding + PANet).
        notes: remarks for the user.
        presence: how object-like the query's most object-like points are relative to the
            support's own object (:meth:`engine.segmentation.panet.PANet.presence`), or None
            when it cannot be measured (no background in the support).
        object_present: ``presence >= PRESENCE_RATIO`` (None when ``presence`` is None); when
            False, a note says the query probably does not contain the object (the mask is
            still the closest match, shown for inspection).
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
    presence: float | None = None
    object_present: bool | None = None

    def to_json(self) -> dict:
        h, w = self.mask.shape
        return {"foreground_fraction": round(self.foreground_fraction, 5),
                "foreground_pixels": self.foreground_pixels, "size": [w, h],
                "model": self.model, "ms": round(self.ms, 1), "notes": self.notes,
                "presence": None if self.presence is None else round(self.presence, 3),
                "object_present": self.object_present}


def mask_overlay(image: Image.Image, mask: np.ndarray, color=(255, 0, 0), alpha: float = 0.5
                 ) -> Image.Image:
    """RGB image with ``mask`` ((H, W) bool) tinted ``color`` at opacity ``alpha``."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    tint = np.array(color, dtype=np.float32)
    out = np.where(mask[..., None], (1 - alpha) * base + alpha * tint, base)
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8))


def check_support(support: list[SupportPair]) -> None:
    """Validate 1..:data:`MAX_SUPPORT` (image, mask) pairs; the message names the bad pair.

    Raises:
        UserInputError: wrong count, non-RGB image, mask not (H, W) of its image, empty mask.
    """
    if not 1 <= len(support) <= MAX_SUPPORT:
        raise UserInputError(f"give 1 to {MAX_SUPPORT} support images with masks, got "
                             f"{len(support)}")
    for i, (img, mask) in enumerate(support, start=1):
        require_rgb(img, f"support image {i}")
        mask = np.asarray(mask)
        if mask.shape != (img.height, img.width):
            raise UserInputError(f"support mask {i} is {mask.shape[::-1]} but its image is "
                                 f"{img.size}; load it with engine.inputs.images.load_mask")
        if not mask.any():
            raise UserInputError(f"support mask {i} is empty: paint at least a few pixels "
                                 f"of the object on support image {i}.")


class SegmentPipeline:
    """Segment the object shown in the support masks in a query image (training-free PANet).

    Read-only after construction: one instance serves every request.

    Args:
        encoder: smp-style encoder, (1, 3, H, W) normalised -> list of 6 maps
            ``[x, /2, /4, /8, /16, /32]`` (shared, frozen, eval mode).
        preprocess: the encoder's normalisation (its ``size`` is replaced by ``seg_size``).
        name: model name the pipeline runs on, reported in results.
        feature_indices: encoder outputs combined as a hypercolumn, finest first.
        seg_size: short side (pixels) images are resized to (aspect kept, long side <= 2x).
        refine_steps: PANet's self-support refinement rounds (0 = plain PANet).
    """

    def __init__(self, encoder: nn.Module, preprocess: Preprocess, *, name: str,
                 feature_indices: tuple[int, ...] = FEATURE_INDICES, seg_size: int = SEG_SIZE,
                 refine_steps: int = 2) -> None:
        self.name = name
        self.preprocess = replace(preprocess, size=seg_size)
        self.panet = PANet(encoder, feature_indices, refine_steps=refine_steps)

    def tensor(self, image: Image.Image) -> torch.Tensor:
        """RGB image -> (1, 3, H', W') float32 normalised, short side ``seg_size`` (aspect
        kept, no side below :data:`MIN_SIDE`)."""
        return self.preprocess.whole_image(image, min_side=MIN_SIDE)

    def support_tensors(self, support: list[SupportPair]
                        ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Support pairs at the encoder's input size.

        Args:
            support: (RGB image, (H, W) bool mask) pairs (validated by :func:`check_support`).

        Returns:
            Per pair (image (1, 3, H', W') float32 normalised, mask (H', W') bool), the mask
            resized nearest; a mask whose few pixels vanish when shrunk keeps one pixel.
        """
        pairs = []
        for img, mask in support:
            x = self.tensor(img)
            _, _, h, w = x.shape
            m = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255).resize(
                (w, h), Image.Resampling.NEAREST)
            m = torch.from_numpy(np.asarray(m) >= 128)  # (H', W') bool
            ys, xs = np.nonzero(np.asarray(mask))
            if not m.any() and len(ys):  # a few painted pixels vanished when shrunk: keep one
                m[int(ys[0] * h / mask.shape[0]), int(xs[0] * w / mask.shape[1])] = True
            pairs.append((x, m))
        return pairs

    def __call__(self, support: list[SupportPair], image: Image.Image, *,
                 threshold: float = 0.5) -> SegmentResult:
        """Segment ``image``.

        Args:
            support: 1..:data:`MAX_SUPPORT` pairs (RGB image, (H, W) bool mask of that image).
            image: the query, RGB ``PIL.Image``.
            threshold: foreground probability (0..1) at or above which a pixel is the object.

        Returns:
            :class:`SegmentResult` at the query's size.

        Raises:
            UserInputError: bad support set (names the pair), non-RGB query, threshold out of
                range.
        """
        check_support(support)
        require_rgb(image, "the query")
        if not 0.0 < threshold < 1.0:
            raise UserInputError(f"threshold must be between 0 and 1, got {threshold}")
        t0 = time.perf_counter()
        protos = self.panet.prototypes([self.support_tensors(support)])
        feat = self.panet.features(self.tensor(image))
        probs, sims = self.panet.segment(feat, protos, (image.height, image.width))
        ratio = self.panet.presence(feat, protos)
        presence = None if ratio is None else float(ratio[0])
        prob = probs[1].numpy().astype(np.float32)  # (H, W): the object's probability
        sim = sims[0].numpy().astype(np.float32)  # (H, W)
        mask = prob >= threshold
        ms = (time.perf_counter() - t0) * 1000.0
        notes = []
        if protos.background is None:
            notes.append("Every support mask covers the whole image, so there is no background "
                         "example: the first pass splits the query at the midpoint of its "
                         "similarity range, then the query's least object-like areas serve as "
                         "background.")
        present = None if presence is None else presence >= PRESENCE_RATIO
        if present is False:
            notes.append(
                f"The query probably does not contain the painted object: its most object-like "
                f"points score {presence:.2f} of the support object's own similarity (object "
                f"vs background prototype: {presence * float(protos.support_margin[0]):.3f} "
                f"in the query vs {float(protos.support_margin[0]):.3f} on the support; "
                f"below {PRESENCE_RATIO:g} it is probably absent). The mask shows the closest "
                f"match anyway.")
        pixels = int(mask.sum())
        return SegmentResult(mask, prob, sim, mask_overlay(image, mask),
                             overlay_heatmap(image, sim), pixels / mask.size, pixels, self.name,
                             ms, notes, presence, present)
