"""Which side of a changed region holds an object: compare each side with the region's own
surroundings.

A background continues: whatever texture it has (a suit's folds, gravel, grass), the pixels
under a region look like pixels around it. An object does not: its patches have no close match
in the surroundings. This is the non-parametric patch view of texture (Efros & Leung, "Texture
synthesis by non-parametric sampling", ICCV 1999; the same nearest-neighbour patch test is behind
exemplar inpainting, Criminisi et al. 2004), used here as a test instead of a synthesiser:

1. the region's box, grown by its own size on each side, is cropped from both images and
   resized so its long side is :data:`SIDE` px; CIELAB 5 x 5 patches describe every pixel;
2. the **changed pixels** of the region (ΔE between the two sides >= :data:`CHANGED_DE`) are
   the pixels tested; the **context** is the ring around the region's mask (from 2 px to
   0.75 region sizes away), which is the same in both images;
3. each changed pixel's patch is compared with every context patch of both images (nearest
   neighbour, RMS ΔE per patch pixel); the context's own scale is the 90th percentile of the
   nearest-neighbour distance of context patches to context patches at least a patch away
   (a textured context has a large scale, a flat one a small one, floored at
   :data:`MIN_SCALE`);
4. the **object fraction** of a side is the share of changed pixels farther than that scale
   from every context patch: near 0 for a background, near 1 for an object that fills the
   changed pixels.

:func:`engine.change.detection.single_region_type` turns the two fractions into added /
removed / replaced.
"""
from __future__ import annotations

import numpy as np
import torch

#: Long side (px) of the region-plus-context window the test runs at.
SIDE = 96
#: Patch side (px at :data:`SIDE`).
PATCH = 5
#: ΔE (CIELAB) between the sides above which a pixel of the region changed.
CHANGED_DE = 8.0
#: Smallest context scale (RMS ΔE per patch pixel): JPEG noise on a flat background.
MIN_SCALE = 3.0
#: Context ring: from 2 px to this many region sizes away from the region's mask.
RING = 0.75
#: At most this many changed pixels and context pixels enter the nearest-neighbour test.
MAX_POINTS = 2500


def _patches(lab: np.ndarray, k: int = PATCH) -> np.ndarray:
    """(h, w, 3) -> (h, w, 3 k k) patch descriptors (edge padded)."""
    r = k // 2
    p = np.pad(lab, ((r, r), (r, r), (0, 0)), mode="edge")
    h, w = lab.shape[:2]
    return np.concatenate([p[dy:dy + h, dx:dx + w] for dy in range(k) for dx in range(k)], -1)


def _nearest(queries: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """RMS distance (per patch value) of each query row to its nearest ref row."""
    d = torch.cdist(torch.from_numpy(queries).float(), torch.from_numpy(refs).float())
    return (d.min(1).values / np.sqrt(queries.shape[1])).numpy()


def object_fractions(before: np.ndarray, after: np.ndarray, mask: np.ndarray,
                     box: tuple[int, int, int, int]) -> dict:
    """How much of a region's changed pixels look unlike the region's surroundings, per side.

    Args:
        before, after: (H, W, 3) float32 RGB in [0, 1], the aligned pair.
        mask: (H, W) bool, the region.
        box: (x0, y0, x1, y1) of the region, x1/y1 exclusive.

    Returns:
        {"before": fraction in [0, 1], "after": fraction in [0, 1], "scale": the context's
        nearest-neighbour scale (RMS ΔE), "changed": number of changed pixels tested}; both
        fractions 0.0 when the region has no context (it fills the image).
    """
    from scipy import ndimage
    from skimage.transform import resize

    from engine.change.detection import expand_box
    from engine.colours import rgb_to_lab
    H, W = mask.shape
    x0, y0, x1, y1 = box
    size = max(x1 - x0, y1 - y0)
    X0, Y0, X1, Y1 = expand_box(box, (H, W), 1.0)
    b, a, m = before[Y0:Y1, X0:X1], after[Y0:Y1, X0:X1], mask[Y0:Y1, X0:X1]
    s = min(1.0, SIDE / max(b.shape[:2]))
    shape = (max(8, round(b.shape[0] * s)), max(8, round(b.shape[1] * s)))
    if s < 1.0:
        b = resize(b, shape, anti_aliasing=True).astype(np.float32)
        a = resize(a, shape, anti_aliasing=True).astype(np.float32)
        m = resize(m.astype(np.float32), shape, order=1) > 0.5
    lab_b, lab_a = rgb_to_lab(b), rgb_to_lab(a)  # (h, w, 3)
    changed = m & (np.linalg.norm(lab_b - lab_a, axis=-1) > CHANGED_DE)
    if changed.sum() < 4:
        changed = m
    dist = ndimage.distance_transform_edt(~m)
    context = (dist > 2) & (dist <= 2 + max(4.0, RING * size * s))
    if context.sum() < 16:
        context = dist > 2
    if context.sum() < 16 or not changed.any():
        return {"before": 0.0, "after": 0.0, "scale": 0.0, "changed": int(changed.sum())}
    rng = np.random.default_rng(0)
    pb, pa = _patches(lab_b).reshape(-1, 3 * PATCH * PATCH), _patches(lab_a).reshape(
        -1, 3 * PATCH * PATCH)
    cidx, sidx = np.flatnonzero(context.ravel()), np.flatnonzero(changed.ravel())
    if len(cidx) > MAX_POINTS:
        cidx = np.sort(rng.choice(cidx, MAX_POINTS, replace=False))
    if len(sidx) > MAX_POINTS:
        sidx = np.sort(rng.choice(sidx, MAX_POINTS, replace=False))
    refs = np.concatenate([pb[cidx], pa[cidx]])
    d_before, d_after = _nearest(pb[sidx], refs), _nearest(pa[sidx], refs)
    # the context's own scale: context patches vs context patches at least a patch away
    q = rng.choice(cidx, min(600, len(cidx)), replace=False)
    qy, qx = np.divmod(q, shape[1])
    cy, cx = np.divmod(cidx, shape[1])
    d = torch.cdist(torch.from_numpy(pb[q]).float(), torch.from_numpy(pb[cidx]).float())
    near = (np.abs(qy[:, None] - cy[None]) <= PATCH) & (np.abs(qx[:, None] - cx[None]) <= PATCH)
    d[torch.from_numpy(near)] = float("inf")
    self_d = (d.min(1).values / np.sqrt(pb.shape[1])).numpy()
    self_d = self_d[np.isfinite(self_d)]
    scale = max(float(np.quantile(self_d, 0.9)) if self_d.size else 0.0, MIN_SCALE)
    return {"before": float((d_before > scale).mean()), "after": float((d_after > scale).mean()),
            "scale": scale, "changed": int(len(sidx))}
