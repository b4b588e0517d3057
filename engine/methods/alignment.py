"""Register a before/after pair so that a small camera shift or a lighting change is not a change.

Two steps, the classical answer to the "distractor" problem of change captioning (Park et al.,
"Robust Change Captioning", ICCV 2019, whose distractors are viewpoint and illumination):

1. **Translation** by phase correlation (Kuglin & Hines, 1975; sub-pixel refinement of
   Guizar-Sicairos et al., 2008, as in ``skimage.registration.phase_cross_correlation``): the
   peak of the normalised cross-power spectrum gives the shift of the after image.
2. **Photometric normalisation**: per channel, a gain and offset ``a * after + b`` fitted to the
   before image by least squares, refitted on the 80 % best-agreeing pixels so a real change
   does not bias the fit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Largest shift (fraction of the shorter side) accepted as camera motion; larger is ignored.
MAX_SHIFT_FRACTION = 0.1


@dataclass
class Alignment:
    """Result of :func:`align_pair`.

    Attributes:
        after: (H, W, 3) float32 in [0, 1], the after image shifted onto the before image's grid
            and photometrically normalised to it.
        valid: (H, W) bool, pixels the shifted after image covers (the rest is border).
        shift: (dy, dx) in pixels applied to the after image (after coords = before - shift).
        gain, offset: (3,) float32 per-channel photometric fit (applied to ``after``).
    """

    after: np.ndarray
    valid: np.ndarray
    shift: tuple[float, float]
    gain: np.ndarray
    offset: np.ndarray


def estimate_shift(before: np.ndarray, after: np.ndarray, upsample: int = 4
                   ) -> tuple[float, float]:
    """Translation (dy, dx) that registers ``after`` onto ``before`` by phase correlation.

    Args:
        before, after: (H, W) float arrays of the same shape (grayscale).
        upsample: sub-pixel precision is 1 / upsample pixels.

    Returns:
        (dy, dx) in pixels; (0, 0) when the estimate exceeds :data:`MAX_SHIFT_FRACTION`.
    """
    from skimage.registration import phase_cross_correlation
    if before.shape != after.shape:
        raise ValueError(f"shapes differ: {before.shape} vs {after.shape}")
    if np.ptp(before) == 0 or np.ptp(after) == 0 or min(before.shape) < 8:
        return 0.0, 0.0
    shift, _, _ = phase_cross_correlation(before, after, upsample_factor=upsample,
                                          normalization=None)
    dy, dx = float(shift[0]), float(shift[1])
    if max(abs(dy), abs(dx)) > MAX_SHIFT_FRACTION * min(before.shape):
        return 0.0, 0.0
    return dy, dx


def fit_gain(before: np.ndarray, after: np.ndarray, valid: np.ndarray, keep: float = 0.8
             ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel gain and offset with ``gain * after + offset ~= before`` (robust refit).

    Args:
        before, after: (H, W, 3) float32 in [0, 1].
        valid: (H, W) bool, pixels used for the fit.
        keep: fraction of best-agreeing pixels kept for the second fit.

    Returns:
        (gain (3,), offset (3,)) float32; gain clipped to [0.5, 2].
    """
    gains, offsets = np.ones(3, np.float32), np.zeros(3, np.float32)
    if valid.sum() < 16:
        return gains, offsets
    for c in range(3):
        x, y = after[..., c][valid].astype(np.float64), before[..., c][valid].astype(np.float64)
        sel = np.ones_like(x, bool)
        for _ in range(2):
            if np.ptp(x[sel]) < 1e-6:
                a, b = 1.0, float(np.mean(y[sel] - x[sel]))
            else:
                a, b = np.polyfit(x[sel], y[sel], 1)
            a = float(np.clip(a, 0.5, 2.0))
            resid = np.abs(a * x + b - y)
            sel = resid <= np.quantile(resid, keep)
        gains[c], offsets[c] = a, b
    return gains, offsets


def align_pair(before: np.ndarray, after: np.ndarray) -> Alignment:
    """Shift and re-light ``after`` onto ``before``.

    Args:
        before, after: (H, W, 3) float32 in [0, 1], same shape.

    Returns:
        :class:`Alignment`.

    Raises:
        ValueError: the shapes differ.
    """
    from scipy import ndimage
    if before.shape != after.shape or before.ndim != 3:
        raise ValueError(f"expected two (H, W, 3) arrays of one shape, got {before.shape} "
                         f"and {after.shape}")
    dy, dx = estimate_shift(before.mean(-1), after.mean(-1))
    if dy or dx:
        shifted = np.stack([ndimage.shift(after[..., c], (dy, dx), order=1, mode="nearest")
                            for c in range(3)], -1)
        valid = ndimage.shift(np.ones(before.shape[:2], np.float32), (dy, dx), order=0,
                              cval=0.0) > 0.5
        valid = ndimage.binary_erosion(valid, iterations=2)
    else:
        shifted, valid = after.copy(), np.ones(before.shape[:2], bool)
    gain, offset = fit_gain(before, shifted, valid)
    normalised = np.clip(shifted * gain + offset, 0.0, 1.0).astype(np.float32)
    return Alignment(normalised, valid, (dy, dx), gain, offset)
