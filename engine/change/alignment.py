"""Register a before/after pair so that a small camera shift or a lighting change is not a change.

Two steps, the classical answer to the "distractor" problem of change captioning (Park et al.,
"Robust Change Captioning", ICCV 2019, whose distractors are viewpoint and illumination):

1. **Geometry**, two candidates, the one leaving the smaller median difference wins:
   a translation by phase correlation (Kuglin & Hines, 1975; sub-pixel refinement of
   Guizar-Sicairos et al., 2008, as in ``skimage.registration.phase_cross_correlation``), and a
   homography fitted by RANSAC (Fischler & Bolles, 1981) to ORB keypoint matches (Rublee et al.,
   ICCV 2011), for a small camera rotation, zoom or tilt; a homography is only accepted with
   enough inliers and corners moving less than ``MAX_SHIFT_FRACTION``.
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
        after: (H, W, 3) float32 in [0, 1], the after image warped onto the before image's grid
            and photometrically normalised to it.
        valid: (H, W) bool, pixels the warped after image covers (the rest is border).
        shift: (dy, dx) in pixels applied to the after image (after coords = before - shift);
            for a homography, the displacement of the image centre.
        homography: (3, 3) float64 mapping before (x, y, 1) to after pixel coordinates, or None
            when the translation was used.
        gain, offset: (3,) float32 per-channel photometric fit (applied to ``after``).
    """

    after: np.ndarray
    valid: np.ndarray
    shift: tuple[float, float]
    gain: np.ndarray
    offset: np.ndarray
    homography: np.ndarray | None = None

    def to_after(self, x: float, y: float) -> tuple[float, float]:
        """Map a before-grid point (x, y) to after-image pixels."""
        if self.homography is None:
            return x - self.shift[1], y - self.shift[0]
        u, v, w = self.homography @ np.array([x, y, 1.0])
        return u / w, v / w


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


#: Fewest RANSAC inliers for a homography to be trusted.
MIN_INLIERS = 25


def estimate_homography(before: np.ndarray, after: np.ndarray) -> np.ndarray | None:
    """Homography mapping before pixel (x, y) to after pixel coordinates, from ORB + RANSAC.

    Args:
        before, after: (H, W) float grayscale in [0, 1], same shape.

    Returns:
        (3, 3) float64, or None (too few keypoints or inliers, or a warp too large to be a
        small camera motion).
    """
    from skimage.feature import ORB, match_descriptors
    from skimage.measure import ransac
    from skimage.transform import ProjectiveTransform
    if min(before.shape) < 48 or np.ptp(before) == 0 or np.ptp(after) == 0:
        return None
    points = []
    try:
        for img in (before, after):
            orb = ORB(n_keypoints=400, fast_threshold=0.05)
            orb.detect_and_extract(img)
            points.append((orb.keypoints[:, ::-1], orb.descriptors))  # (N, 2) as (x, y)
    except (RuntimeError, ValueError, IndexError):
        return None
    if min(len(points[0][1]), len(points[1][1])) < MIN_INLIERS:
        return None  # flat or tiny images have (almost) no keypoints
    matches = match_descriptors(points[0][1], points[1][1], cross_check=True, max_ratio=0.8)
    if len(matches) < MIN_INLIERS:
        return None
    src, dst = points[0][0][matches[:, 0]], points[1][0][matches[:, 1]]
    try:
        model, inliers = ransac((src, dst), ProjectiveTransform, min_samples=4,
                                residual_threshold=1.5, max_trials=500, rng=0)
    except (ValueError, np.linalg.LinAlgError):
        return None
    if model is None or inliers is None or inliers.sum() < MIN_INLIERS:
        return None
    H, W = before.shape
    corners = np.array([[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1]], float)
    moved = np.abs(model(corners) - corners).max()
    if not np.isfinite(moved) or moved > MAX_SHIFT_FRACTION * min(H, W):
        return None
    return np.asarray(model.params, np.float64)


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
    from skimage.transform import ProjectiveTransform, warp
    if before.shape != after.shape or before.ndim != 3:
        raise ValueError(f"expected two (H, W, 3) arrays of one shape, got {before.shape} "
                         f"and {after.shape}")
    gray_b, gray_a = before.mean(-1), after.mean(-1)
    dy, dx = estimate_shift(gray_b, gray_a)
    if dy or dx:
        shifted = np.stack([ndimage.shift(after[..., c], (dy, dx), order=1, mode="nearest")
                            for c in range(3)], -1)
        valid = ndimage.shift(np.ones(before.shape[:2], np.float32), (dy, dx), order=0,
                              cval=0.0) > 0.5
        valid = ndimage.binary_erosion(valid, iterations=2)
    else:
        shifted, valid = after.copy(), np.ones(before.shape[:2], bool)
    homography = estimate_homography(gray_b, gray_a)
    if homography is not None:
        tf = ProjectiveTransform(matrix=homography)
        warped = warp(after, tf, order=1, mode="edge", preserve_range=True).astype(np.float32)
        covered = warp(np.ones(before.shape[:2]), tf, order=0, cval=0.0) > 0.5
        covered = ndimage.binary_erosion(covered, iterations=2)

        def residual(img, mask):
            return float(np.median(np.abs(img - before).mean(-1)[mask])) if mask.any() else 1e9
        if residual(warped, covered) < residual(shifted, valid):
            H, W = before.shape[:2]
            cx, cy = (W - 1) / 2, (H - 1) / 2
            u, v, w = homography @ np.array([cx, cy, 1.0])
            shifted, valid, (dy, dx) = warped, covered, (cy - v / w, cx - u / w)
        else:
            homography = None
    gain, offset = fit_gain(before, shifted, valid)
    normalised = np.clip(shifted * gain + offset, 0.0, 1.0).astype(np.float32)
    return Alignment(normalised, valid, (dy, dx), gain, offset, homography)
