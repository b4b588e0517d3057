"""Where did an aligned image pair change, and what kind of change is it?

Difference map: the mean of a pixel term (CIELAB ΔE of lightly blurred images) and a feature
term (cosine distance of the backbone's stride-8 and stride-16 maps), in the spirit of
feature-difference change captioners (DUDA, Park et al. ICCV 2019; its "dual" view is the
before and after feature maps). The map is thresholded, cleaned (opening) and split into
connected components (``scipy.ndimage.label``).

Change type of a region, from measurable cues (the rule is a kind, not a list of cases:
"replaced" needs evidence of two distinct objects, one per side):

* **moved** (decided first, :mod:`engine.change.motion`): a translation carries the before
  image's changed pixels onto the after image's, within one region (the two places overlap)
  or between two regions; or, failing that, two regions whose before/after crops swap content
  (backbone embedding similarity of the crops).
* **recoloured**: on the region's changed pixels, lightness keeps its structure (correlation of
  L* >= 0.7) while the chroma (a*, b*) moved by more than ``RECOLOUR_DAB``.
* **added / removed / replaced**: each side of the region is compared with the region's own
  surroundings (:func:`engine.change.context.object_fractions`): the share of changed pixels
  whose patches match nothing around them. A side with at least ``OBJECT_FRACTION`` holds an
  object, a side below it shows the background continuing (textured or not). Object after
  only: added; before only: removed; both: replaced; neither clearly: the side less like its
  surroundings holds the object (added or removed; biharmonic inpainting error breaks ties).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

#: ΔE (CIELAB) mapped to a pixel difference of 1.0.
DELTA_E_SCALE = 30.0
#: Cosine distance of backbone features mapped to 1.0.
FEATURE_SCALE = 0.6
#: Combined difference above which a pixel counts as changed.
THRESHOLD = 0.45
#: Smallest region kept, as a fraction of the image area.
MIN_AREA = 0.003
#: Mean a*b* shift (CIELAB units) above which a structure-preserving change is a recolouring.
RECOLOUR_DAB = 12.0
#: Share of a side's changed pixels unlike the region's surroundings from which that side
#: holds an object (chosen on the dev split of ``assets/make_change_eval.py``: background
#: sides reached 0.29, the weaker side of a replacement 0.5 and more).
OBJECT_FRACTION = 0.4
#: Object fractions closer than this are a tie, broken by the inpainting errors.
FRACTION_TIE = 0.05
#: Embedding similarity of crops above which a removed+added pair is one moved object (the
#: fallback of the pixel test of :mod:`engine.change.motion`).
MOVED_SIMILARITY = 0.7


@dataclass
class Region:
    """One change region in the before image's grid (aligned pair).

    Attributes:
        mask: (H, W) bool.
        box: (x0, y0, x1, y1) int pixel box of the mask, x1/y1 exclusive.
        score: mean difference inside the region, in [0, 1].
    """

    mask: np.ndarray
    box: tuple[int, int, int, int]
    score: float


def feature_distance(feats_before: dict[int, torch.Tensor], feats_after: dict[int, torch.Tensor],
                     size: tuple[int, int]) -> np.ndarray:
    """Cosine distance of feature maps, averaged over strides and upsampled.

    Args:
        feats_before, feats_after: {stride: (1, C, h, w)} float32 feature maps.
        size: (H, W) output size in pixels.

    Returns:
        (H, W) float32 in [0, 2].
    """
    maps = []
    for stride in sorted(feats_before):
        a, b = feats_before[stride], feats_after[stride]
        d = 1.0 - F.cosine_similarity(a, b, dim=1, eps=1e-6)  # (1, h, w)
        maps.append(F.interpolate(d[:, None], size=size, mode="bilinear", align_corners=False))
    return torch.cat(maps, 1).mean(1)[0].nan_to_num(0.0).numpy().astype(np.float32)


def pixel_distance(before: np.ndarray, after: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """CIELAB ΔE of the two images after a Gaussian blur of ``sigma`` pixels.

    Args:
        before, after: (H, W, 3) float32 in [0, 1].

    Returns:
        (H, W) float32 >= 0.
    """
    from scipy import ndimage

    from engine.colours import rgb_to_lab
    blur = [ndimage.gaussian_filter(x, (sigma, sigma, 0)) for x in (before, after)]
    lab_b, lab_a = rgb_to_lab(blur[0]), rgb_to_lab(blur[1])
    return np.linalg.norm(lab_b - lab_a, axis=-1).astype(np.float32)


def difference_map(pixel: np.ndarray, feature: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Combine pixel ΔE and feature distance into one (H, W) float32 map in [0, 1]."""
    from scipy import ndimage
    pix = np.clip(pixel / DELTA_E_SCALE, 0, 1)
    feat = np.clip(feature / FEATURE_SCALE, 0, 1)
    heat = ndimage.gaussian_filter(0.5 * (pix + feat), 2.0)
    return np.where(valid, heat, 0.0).astype(np.float32)


def find_regions(heat: np.ndarray, threshold: float = THRESHOLD, min_area: float = MIN_AREA,
                 max_regions: int = 8) -> list[Region]:
    """Threshold ``heat`` into connected change regions, largest first.

    Args:
        heat: (H, W) float32 in [0, 1].
        threshold: changed if above.
        min_area: smallest region as a fraction of H * W.
        max_regions: at most this many regions (the strongest by area x score).

    Returns:
        list of :class:`Region`.
    """
    from scipy import ndimage
    H, W = heat.shape
    binary = ndimage.binary_opening(heat > threshold, iterations=2)
    binary = ndimage.binary_closing(binary, iterations=4)
    labels, n = ndimage.label(binary)
    regions = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        mask = labels == i
        area = int(mask.sum())
        if area < min_area * H * W:
            continue
        ys, xs = sl
        regions.append(Region(ndimage.binary_fill_holes(mask),
                              (xs.start, ys.start, xs.stop, ys.stop), float(heat[mask].mean())))
    regions.sort(key=lambda r: -r.mask.sum() * r.score)
    return regions[:max_regions]


def expand_box(box: tuple[int, int, int, int], shape: tuple[int, int], frac: float
               ) -> tuple[int, int, int, int]:
    """Grow ``box`` by ``frac`` of its size on every side, clipped to (H, W) ``shape``."""
    x0, y0, x1, y1 = box
    mx, my = int((x1 - x0) * frac) + 1, int((y1 - y0) * frac) + 1
    return max(0, x0 - mx), max(0, y0 - my), min(shape[1], x1 + mx), min(shape[0], y1 + my)


def recolour_evidence(before_lab: np.ndarray, after_lab: np.ndarray, mask: np.ndarray
                      ) -> tuple[float, float]:
    """(correlation of L* inside ``mask``, mean a*b* shift) of two (H, W, 3) Lab images."""
    lb, la = before_lab[..., 0][mask], after_lab[..., 0][mask]
    if lb.size < 4 or lb.std() < 1e-3 or la.std() < 1e-3:
        corr = 0.0
    else:
        corr = float(np.corrcoef(lb, la)[0, 1])
    dab = float(np.linalg.norm(before_lab[..., 1:][mask] - after_lab[..., 1:][mask], axis=-1
                               ).mean()) if mask.any() else 0.0
    return corr, dab


def inpaint_error(image: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int],
                  side: int = 64) -> float:
    """How badly the region is predicted from its surroundings (biharmonic inpainting).

    Args:
        image: (H, W, 3) float32 in [0, 1].
        mask: (H, W) bool region.
        box: the region's box; a margin of 50 % around it gives the context.
        side: the context crop is resized so its long side is at most this (speed).

    Returns:
        Mean CIELAB ΔE between the region and its inpainted prediction (>= 0).
    """
    from scipy import ndimage
    from skimage.restoration import inpaint_biharmonic
    from skimage.transform import resize

    from engine.colours import rgb_to_lab
    x0, y0, x1, y1 = expand_box(box, mask.shape, 0.5)
    crop, m = image[y0:y1, x0:x1], ndimage.binary_dilation(mask[y0:y1, x0:x1], iterations=2)
    scale = min(1.0, side / max(crop.shape[:2]))
    if scale < 1.0:
        shape = (max(4, round(crop.shape[0] * scale)), max(4, round(crop.shape[1] * scale)))
        crop = resize(crop, shape, anti_aliasing=True).astype(np.float32)
        m = resize(m.astype(np.float32), shape, order=0) > 0.5
    if not m.any() or m.all():
        return 0.0
    filled = inpaint_biharmonic(crop, m, channel_axis=-1)
    diff = np.linalg.norm(rgb_to_lab(crop) - rgb_to_lab(np.clip(filled, 0, 1)), axis=-1)
    return float(diff[m].mean())


def single_region_type(corr: float, dab: float, object_before: float, object_after: float,
                       err_before: float, err_after: float) -> str:
    """Decide recoloured / added / removed / replaced for a region that did not move.

    Args:
        corr, dab: :func:`recolour_evidence` on the region's changed pixels.
        object_before, object_after: object fractions of each side in [0, 1]
            (:func:`engine.change.context.object_fractions`).
        err_before, err_after: :func:`inpaint_error` of each side (mean ΔE), the tie-break.

    Returns:
        "recoloured", "added", "removed" or "replaced" (see the module docstring).
    """
    if corr >= 0.7 and dab >= RECOLOUR_DAB:
        return "recoloured"
    obj_before, obj_after = object_before >= OBJECT_FRACTION, object_after >= OBJECT_FRACTION
    if obj_before and obj_after:
        return "replaced"
    if obj_after != obj_before:
        return "added" if obj_after else "removed"
    if abs(object_after - object_before) >= FRACTION_TIE:
        return "added" if object_after > object_before else "removed"
    return "added" if err_after >= err_before else "removed"
