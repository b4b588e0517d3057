"""Did an object move? Find the translation that carries the before image's changed pixels onto
the after image's.

An object moved by ``t`` leaves two footprints: where it was, the before image holds it and the
after image holds whatever was behind it; where it went, the reverse. So for the right ``t``
(block matching, as in motion estimation for video coding; Jain & Jain, IEEE Trans. Comm. 1981):

* **arrived**: a changed pixel ``p`` of the new footprint shows in the after image what the
  before image showed at ``p - t`` (``after[p] ~ before[p - t]``);
* **left**: a changed pixel ``p`` of the old footprint shows in the before image what the after
  image shows at ``p + t`` (``before[p] ~ after[p + t]``).

The score of ``t`` is the smaller of the two shares of changed pixels (a moved object explains
about half of them each way, whatever the background behind it). An object that only appeared
or only disappeared explains none of one side (its pixels never match a background pixel),
which keeps added / removed / replaced objects from looking moved, on textured backgrounds too.
The same test covers an object whose two places overlap (one changed region, as a car between
two video frames) and one whose places are two separate regions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ΔE (CIELAB, lightly blurred images) below which two pixels show the same thing.
MATCH_DE = 12.0
#: ΔE (CIELAB, lightly blurred images) between the two sides above which a pixel changed.
CHANGED_DE = 12.0
#: Smallest score (share of changed pixels explained each way) of a moved object (chosen on
#: the dev split of ``assets/make_change_eval.py``: moved objects scored 0.31 and more, other
#: changes 0.24 and less).
MOVED_MATCH = 0.28
#: Shifts shorter than this (px) are not a motion (alignment residue).
MIN_SHIFT = 3.0
#: The coarse search tries about (2 GRID + 1)^2 shifts on COARSE_POINTS sampled changed pixels;
#: finer grids (a third of the step each time, down to 1 px) use FINE_POINTS.
GRID = 16
COARSE_POINTS = 600
#: Best coarse shifts refined (a narrow match peak can fall between coarse grid points).
TOP_K = 4
FINE_POINTS = 800


@dataclass
class Motion:
    """A translation found by :func:`find_shift`.

    Attributes:
        shift: (dy, dx) in pixels, after position = before position + shift.
        score: min of the arrived and left shares, in [0, 1].
        arrived: share of changed pixels with ``after[p] ~ before[p - t]``.
        left: share with ``before[p] ~ after[p + t]``.
        box_before, box_after: (x0, y0, x1, y1) boxes (x1/y1 exclusive) of the object's old
            and new place: the changed pixels span both places, so the new place is their box
            moved by the shift and cut to the box, the old place that moved back.
    """

    shift: tuple[int, int]
    score: float
    arrived: float
    left: float
    box_before: tuple[int, int, int, int]
    box_after: tuple[int, int, int, int]


def blurred_lab(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] -> CIELAB after a Gaussian blur of ``sigma`` px (the
    blur keeps JPEG noise and half-pixel edges from counting as changes or mismatches)."""
    from scipy import ndimage

    from engine.colours import rgb_to_lab
    return rgb_to_lab(ndimage.gaussian_filter(image, (sigma, sigma, 0)))


def changed_pixels(lab_b: np.ndarray, lab_a: np.ndarray) -> np.ndarray:
    """(H, W) bool: ΔE between the blurred sides (:func:`blurred_lab`) >= :data:`CHANGED_DE`."""
    return np.linalg.norm(lab_b - lab_a, axis=-1) >= CHANGED_DE


def blocks(lab: np.ndarray, step: int = 2) -> np.ndarray:
    """Block descriptors for matching: each pixel's CIELAB and that of its 8 neighbours
    ``step`` px away (a 3 x 3 grid spanning 2 ``step`` + 1 px; edges padded).

    Matching blocks rather than single pixels keeps an object's colours from "matching" the
    same colours somewhere else by chance (block matching, as in video coding).

    Args:
        lab: (H, W, 3) float32 CIELAB (:func:`blurred_lab`).

    Returns:
        (H, W, 27) float32.
    """
    H, W = lab.shape[:2]
    p = np.pad(lab, ((step, step), (step, step), (0, 0)), mode="edge")
    return np.concatenate([p[step + dy:step + dy + H, step + dx:step + dx + W]
                           for dy in (-step, 0, step) for dx in (-step, 0, step)], -1)


def _explained(desc_b: np.ndarray, desc_a: np.ndarray, ys: np.ndarray, xs: np.ndarray,
               shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, P) bool: pixel p arrived / left under shift t, for P points and T shifts (dy, dx)."""
    H, W, D = desc_b.shape
    n_values = D // 3  # colours per block
    chunk = max(1, 2_000_000 // max(1, ys.size * D))  # shifts per chunk (bounded memory)
    out = []
    for src, dst, sign in ((desc_b, desc_a, -1), (desc_a, desc_b, 1)):
        # arrived: after[p] vs before[p - t];  left: before[p] vs after[p + t]
        here = dst[ys, xs][None]  # (1, P, D)
        parts = []
        for k in range(0, len(shifts), chunk):
            dy, dx = shifts[k:k + chunk, 0:1], shifts[k:k + chunk, 1:2]  # (t, 1)
            qy, qx = ys[None] + sign * dy, xs[None] + sign * dx  # (t, P)
            inside = (qy >= 0) & (qy < H) & (qx >= 0) & (qx < W)
            qy, qx = np.clip(qy, 0, H - 1), np.clip(qx, 0, W - 1)
            d2 = np.square(src[qy, qx] - here).sum(-1)  # (t, P) squared distances
            parts.append(inside & (d2 < MATCH_DE ** 2 * n_values))  # RMS ΔE < MATCH_DE
        out.append(np.concatenate(parts))
    return out[0], out[1]


def find_shift(desc_b: np.ndarray, desc_a: np.ndarray, changed: np.ndarray,
               centre: tuple[float, float], radius: float) -> Motion | None:
    """The translation within ``radius`` of ``centre`` that best explains the changed pixels.

    Coarse to fine: a grid of about 33 x 33 shifts over a sample of the changed pixels, then
    grids a third as coarse around the best few, down to every pixel; the best shift is then
    scored on all changed pixels.

    Args:
        desc_b, desc_a: (H, W, D) float32 descriptors of the aligned pair (:func:`blocks` of
            :func:`blurred_lab`); D / 3 CIELAB colours per pixel, compared by RMS ΔE.
        changed: (H, W) bool, the changed pixels considered (one region's, or two regions').
        centre: (dy, dx) expected shift (0, 0 for an object moving within one region).
        radius: largest distance (px) of a tried shift from ``centre``.

    Returns:
        The best :class:`Motion` (shifts shorter than :data:`MIN_SHIFT` excluded), or None
        when there are fewer than 8 changed pixels.
    """
    ys, xs = np.nonzero(changed)
    if ys.size < 8:
        return None
    rng = np.random.default_rng(0)
    step = max(1, int(np.ceil(radius / GRID)))
    seeds = [(round(centre[0]), round(centre[1]))]
    half, points, keep = int(np.ceil(radius / step)) * step, COARSE_POINTS, TOP_K
    mid = desc_b.shape[-1] // 3 // 2 * 3  # the middle colour of a block descriptor
    centre_colour, coarsest = slice(mid, mid + 3), step > 1
    while True:  # coarse to fine: grids of shifts around the best so far, each finer
        g = np.arange(-half, half + 1, step)
        shifts = np.unique(np.concatenate([
            np.stack(np.meshgrid(g + y, g + x, indexing="ij"), -1).reshape(-1, 2)
            for y, x in seeds]), axis=0)
        shifts = shifts[np.hypot(shifts[:, 0], shifts[:, 1]) >= MIN_SHIFT]
        if len(shifts) == 0:
            return None
        pick = rng.choice(ys.size, min(points, ys.size), replace=False)
        # the coarsest grid compares the blocks' centre colours only (9 x cheaper; it only
        # picks the seeds), every finer grid and the final score the whole blocks
        use = centre_colour if coarsest else slice(None)
        arrived, left = _explained(desc_b[..., use], desc_a[..., use], ys[pick], xs[pick],
                                   shifts)
        seeds = [tuple(shifts[k]) for k in _ranked(arrived, left)[:keep]]
        if step == 1:
            break
        half, step, points, keep, coarsest = step, max(1, step // 3), FINE_POINTS, 1, False
    best = seeds[0]
    t = np.array([best])
    arrived, left = (x[0] for x in _explained(desc_b, desc_a, ys, xs, t))  # (P,) all pixels
    fa, fl = float(arrived.mean()), float(left.mean())
    dy, dx = int(t[0, 0]), int(t[0, 1])
    # the changed pixels span both places: the new place is that span moved by t, cut to it
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    new = (max(x0, x0 + dx), max(y0, y0 + dy), min(x1, x1 + dx), min(y1, y1 + dy))
    if new[2] <= new[0] or new[3] <= new[1]:  # a shift longer than the span (cannot happen
        new = (x0, y0, x1, y1)               # for a shift that explains pixels); keep it all
    return Motion((dy, dx), min(fa, fl), fa, fl,
                  (new[0] - dx, new[1] - dy, new[2] - dx, new[3] - dy), new)


def _ranked(arrived: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Shift indices, best min(arrived, left) share first (ties: the larger sum)."""
    fa, fl = arrived.mean(1), left.mean(1)  # (T,)
    return np.argsort(-(np.minimum(fa, fl) + 1e-3 * (fa + fl)), kind="stable")


def direction(shift: tuple[float, float]) -> str:
    """The direction of a (dy, dx) shift in words: "to the right", "up and to the left", ...
    (a component under a third of the other is dropped)."""
    dy, dx = shift
    vert = ("up" if dy < 0 else "down") if abs(dy) >= abs(dx) / 3 and dy else ""
    horiz = ("to the left" if dx < 0 else "to the right") if abs(dx) >= abs(dy) / 3 and dx else ""
    return " and ".join(p for p in (vert, horiz) if p) or "slightly"
