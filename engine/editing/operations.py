"""Pixel operations of the embedded editor, each confined to a region mask.

Every operation maps an (H, W, 3) uint8 image and an (H, W) bool region to a new uint8 image;
:func:`compose` then takes the edited pixels inside the region and the *original bytes*
outside it, so nothing outside the region changes (the complaint against inpainting pipelines
that re-encode the whole image).

* recolour: in CIELAB, keep L* (the shading) and replace a*, b* by the named colour's hue, its
  chroma scaled by 0.45-1.0 following the original chroma (pale parts stay paler); achromatic
  targets (black / white / gray) remap L* instead.
* remove: biharmonic inpainting (Damelin & Hoang, "On Surface Completion and Image Inpainting by
  Biharmonic Functions", 2018; ``skimage.restoration.inpaint_biharmonic``) solved on a crop
  downscaled to at most 160 px and upsampled back, plus seeded grain matched to the fine
  texture around the region.
* grayscale (ITU-R BT.601 luma), blur (Gaussian, sigma 1.2 % of the long side), brightness
  (gain on L*, plus 8 L* units when brightening so dark areas lift too), sepia restyle (the
  classic sepia-tone matrix).
"""
from __future__ import annotations

import numpy as np

from engine.colours import NAMED_COLOURS, rgb_to_lab
from engine.errors import UserInputError

#: Brightness gains of "brighter" / "darker".
BRIGHTER, DARKER = 1.35, 0.65
_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]],
                  np.float32)


def _lab2rgb(lab: np.ndarray) -> np.ndarray:
    from skimage.color import lab2rgb
    return lab2rgb(lab.astype(np.float64)).astype(np.float32)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    return (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def compose(original: np.ndarray, edited: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Edited pixels inside ``mask``, original bytes outside.

    Args:
        original, edited: (H, W, 3) uint8.
        mask: (H, W) bool.

    Returns:
        (H, W, 3) uint8.
    """
    if original.shape != edited.shape or original.shape[:2] != mask.shape:
        raise ValueError(f"shapes differ: {original.shape}, {edited.shape}, {mask.shape}")
    return np.where(mask[..., None], edited, original)


def recolour(image: np.ndarray, colour: str) -> np.ndarray:
    """Paint ``image`` (H, W, 3) uint8 in a named colour keeping its shading -> uint8."""
    if colour not in NAMED_COLOURS:
        raise ValueError(f"unknown colour {colour!r}; known: {', '.join(sorted(NAMED_COLOURS))}")
    lab = rgb_to_lab(image.astype(np.float32) / 255.0)
    target = rgb_to_lab(np.array(NAMED_COLOURS[colour], np.float32).reshape(1, 3) / 255.0)[0]
    L = lab[..., 0]
    if colour in ("black", "white", "gray", "grey", "silver"):
        lo, hi = {"black": (2, 25), "white": (80, 100)}.get(colour, (target[0] - 20,
                                                                     target[0] + 20))
        span = max(float(np.ptp(L)), 1e-3)
        lab[..., 0] = lo + (L - L.min()) / span * (hi - lo)
        lab[..., 1:] = 0.0
    else:
        # hue from the target; chroma follows the original's, so near-white highlights and
        # pale parts stay paler (a dye, not a coat of paint)
        chroma = np.hypot(lab[..., 1], lab[..., 2])
        ref = max(float(np.percentile(chroma, 90)), 1.0)
        strength = 0.45 + 0.55 * np.clip(chroma / ref, 0.0, 1.0)
        lab[..., 1], lab[..., 2] = target[1] * strength, target[2] * strength
        # a dark object stays dark, but is lifted enough for the new hue to show
        lab[..., 0] = np.maximum(L, 0.6 * L + 0.4 * target[0])
    return _to_uint8(_lab2rgb(lab))


def grayscale(image: np.ndarray) -> np.ndarray:
    """BT.601 luma replicated on three channels; (H, W, 3) uint8 -> uint8."""
    y = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(y.round().clip(0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def sepia(image: np.ndarray) -> np.ndarray:
    """Sepia-tone restyle; (H, W, 3) uint8 -> uint8."""
    return (image.astype(np.float32) @ _SEPIA.T).round().clip(0, 255).astype(np.uint8)


def blur(image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Gaussian blur (default sigma: 1.2 % of the long side, at least 2 px); uint8 -> uint8."""
    from scipy import ndimage
    sigma = sigma or max(2.0, 0.012 * max(image.shape[:2]))
    out = ndimage.gaussian_filter(image.astype(np.float32), (sigma, sigma, 0), mode="reflect")
    return out.round().clip(0, 255).astype(np.uint8)


def brightness(image: np.ndarray, gain: float) -> np.ndarray:
    """Scale CIELAB lightness by ``gain`` (> 0); (H, W, 3) uint8 -> uint8."""
    if gain <= 0:
        raise ValueError(f"gain must be positive, got {gain}")
    lab = rgb_to_lab(image.astype(np.float32) / 255.0)
    lab[..., 0] = np.clip(lab[..., 0] * gain + (8.0 if gain > 1 else 0.0), 0, 100)
    return _to_uint8(_lab2rgb(lab))


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate a (H, W) bool mask by ``pixels``."""
    from scipy import ndimage
    return ndimage.binary_dilation(mask, iterations=pixels) if pixels > 0 else mask.copy()


def remove(image: np.ndarray, mask: np.ndarray, side: int = 160, seed: int = 0) -> np.ndarray:
    """Fill ``mask`` from its surroundings by biharmonic inpainting, plus grain.

    The smooth biharmonic fill gets Gaussian grain whose per-channel standard deviation is that
    of the fine texture (image minus its 1.5 px blur) in a 6 px ring around the region, so the
    fill does not look smoother than its surroundings.

    Args:
        image: (H, W, 3) uint8.
        mask: (H, W) bool region to fill (grow it first to cover the object's edge).
        side: the crop around the region is solved at most this many pixels on its long side.
        seed: seed of the grain (same seed, same bytes).

    Returns:
        (H, W, 3) uint8 (only pixels inside ``mask`` differ from the input).

    Raises:
        UserInputError: the mask covers the whole image (nothing to inpaint from).
    """
    from PIL import Image
    from skimage.restoration import inpaint_biharmonic
    if mask.all():
        raise UserInputError("the region to remove covers the whole image: there is no background "
                         "left to fill it from")
    H, W = mask.shape
    ys, xs = np.nonzero(mask)
    my, mx = max(8, (np.ptp(ys) + 1) // 2), max(8, (np.ptp(xs) + 1) // 2)
    y0, y1 = max(0, ys.min() - my), min(H, ys.max() + 1 + my)
    x0, x1 = max(0, xs.min() - mx), min(W, xs.max() + 1 + mx)
    crop, m = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    scale = min(1.0, side / max(crop.shape[:2]))
    size = (max(4, round(crop.shape[1] * scale)), max(4, round(crop.shape[0] * scale)))
    small = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR),
                       np.float32) / 255.0
    small_m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize(
        size, Image.Resampling.BILINEAR)) > 0
    if small_m.all():
        small_m[0, :] = small_m[-1, :] = small_m[:, 0] = small_m[:, -1] = False
    filled = inpaint_biharmonic(small, small_m, channel_axis=-1)
    big = np.asarray(Image.fromarray(_to_uint8(filled)).resize(
        (crop.shape[1], crop.shape[0]), Image.Resampling.BICUBIC)).astype(np.float32)
    from scipy import ndimage
    ring = grow(m, 6) & ~m
    if ring.any():
        fine = crop.astype(np.float32) - ndimage.gaussian_filter(crop.astype(np.float32),
                                                                 (1.5, 1.5, 0))
        std = fine[ring].std(axis=0)  # (3,)
        grain = np.random.default_rng(seed).standard_normal(big.shape).astype(np.float32)
        big = big + ndimage.gaussian_filter(grain, (0.6, 0.6, 0)) * std * 1.6
    big = big.round().clip(0, 255).astype(np.uint8)
    out = image.copy()
    out[y0:y1, x0:x1] = np.where(m[..., None], big, crop)
    return out
