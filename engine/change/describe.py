"""Type each changed region and write its sentence.

Given the aligned pair and the regions of :func:`engine.change.detection.find_regions`:

1. each region is cropped (box grown by 15 %) before and after; one backbone pass gives every
   crop an embedding, and the namer (:mod:`engine.change.namers`) says what each crop shows;
2. **moved** first, by pixels (:mod:`engine.change.motion`): a translation carries the changed
   pixels of two regions (region i's object reappears in region j), or of one region (the two
   places overlap), from before to after, most convincing first; then, for the regions left,
   by embeddings: region i's before-crop reappears as region j's after-crop (similarity >=
   ``MOVED_SIMILARITY`` and clearly above each region's own before/after similarity);
3. every other region gets **recoloured / added / removed / replaced** from its colour cues and
   from how each side compares with the region's surroundings
   (:func:`engine.change.context.object_fractions`,
   :func:`engine.change.detection.single_region_type`);
4. the namer phrases the sentence; places are thirds of the image ("at the top left").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.change import detection as cd
from engine.change import motion
from engine.change.context import object_fractions
from engine.change.features import ChangeFeatures, to_image
from engine.change.namers import RegionNamer
from engine.colours import colour_name, dominant_colour, rgb_to_lab

CHANGE_TYPES = ("added", "removed", "moved", "replaced", "recoloured")
#: How much more similar a moved pair must be than either region to itself.
MOVED_MARGIN = 0.1
#: Growth of a region's box (fraction of its size, each side) before cropping.
CROP_MARGIN = 0.15
#: Two regions can be one moved object only if their areas differ by at most this factor and
#: the mean colour (CIELAB) of what left one and of what came to the other differ by at most
#: MOVED_COLOUR_DE (a cheap test before block matching the pair).
MOVED_AREA_RATIO = 3.0
MOVED_COLOUR_DE = 30.0


@dataclass
class Change:
    """One change.

    Attributes:
        type: one of :data:`CHANGE_TYPES`.
        sentence: one sentence describing it.
        box: [x0, y0, x1, y1] ints, x1/y1 exclusive: in the working grid as returned by
            :func:`describe_regions`; the pipeline maps it to after-image pixels.
        before: what the region held before (the namer's words: ImageNet name or caption).
        after: what it holds after.
        evidence: the measured cues behind the type (for the curious and for tests), with
            ``work_box`` (and for a moved object ``work_box_before``) in the working grid.
    """

    type: str
    sentence: str
    box: list[int]
    before: str
    after: str
    evidence: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The change as a JSON-ready dict (no evidence)."""
        return {"type": self.type, "sentence": self.sentence, "box": self.box,
                "before": self.before, "after": self.after}


def _row_col(box, width: int, height: int) -> tuple[str, str]:
    """The third of the image the box centre lies in: ("top" | "" | "bottom",
    "left" | "" | "right"); ("", "") is the centre."""
    cx, cy = (box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height
    row = "top" if cy < 1 / 3 else ("bottom" if cy > 2 / 3 else "")
    col = "left" if cx < 1 / 3 else ("right" if cx > 2 / 3 else "")
    return row, col


def place(box, width: int, height: int) -> str:
    """The bare place of ``box`` (x0, y0, x1, y1) in a ``width`` x ``height`` image:
    "the top left", "the bottom", "the right", ..., or "the centre"."""
    row, col = _row_col(box, width, height)
    return "the " + (" ".join(p for p in (row, col) if p) or "centre")


def where(box, width: int, height: int) -> str:
    """The place of ``box`` with its preposition: "at the top left", ..., "in the centre"."""
    row, col = _row_col(box, width, height)
    return ("at " if row or col else "in ") + place(box, width, height)


def _size(box) -> int:
    return max(box[2] - box[0], box[3] - box[1])


def _moved_by_pixels(desc_b: np.ndarray, desc_a: np.ndarray, changed: np.ndarray,
                     regions: list[cd.Region]) -> list[tuple[float, int, int, motion.Motion]]:
    """Moves found by :func:`engine.change.motion.find_shift`, best first, each region used
    once: (score, i, j, motion) with the object going from region i to region j (i == j: within
    one region)."""
    n = len(regions)
    found = []
    centroids = [np.argwhere(r.mask).mean(0) for r in regions]  # (dy, dx) centres
    areas = [int(r.mask.sum()) for r in regions]
    mid = desc_b.shape[-1] // 3 // 2 * 3  # a block descriptor's own colour (CIELAB)

    def mean_colour(desc, r):  # mean CIELAB of a side's changed pixels in region r
        pixels = desc[r.mask & changed][:, mid:mid + 3]
        return pixels.mean(0) if len(pixels) else np.full(3, 1e6)  # nothing: never close

    left_colour = [mean_colour(desc_b, r) for r in regions]  # what left region i
    came_colour = [mean_colour(desc_a, r) for r in regions]  # what came to region j
    for i in range(n):
        for j in range(n):
            if i == j:
                m = motion.find_shift(desc_b, desc_a, regions[i].mask & changed, (0.0, 0.0),
                                      _size(regions[i].box))
            elif (max(areas[i], areas[j]) <= MOVED_AREA_RATIO * min(areas[i], areas[j])
                  and np.linalg.norm(left_colour[i] - came_colour[j]) <= MOVED_COLOUR_DE):
                size = max(_size(regions[i].box), _size(regions[j].box))
                m = motion.find_shift(desc_b, desc_a, (regions[i].mask | regions[j].mask) & changed,
                                      tuple(centroids[j] - centroids[i]), 0.3 * size + 4)
            else:
                continue
            if m is not None and m.score >= motion.MOVED_MATCH:
                found.append((m.score, i, j, m))
    used: set[int] = set()
    out = []
    for score, i, j, m in sorted(found, key=lambda f: -f[0]):
        if i in used or j in used:
            continue
        used |= {i, j}
        out.append((score, i, j, m))
    return out


def _moved_sentence(namer: RegionNamer, name: str, box_before, box_after, shift,
                    width: int, height: int) -> str:
    """"moved from A to B", or "moved <direction>" when both places are the same third."""
    source, target = place(box_before, width, height), place(box_after, width, height)
    if source != target:
        return namer.moved(name, source, target)
    return namer.shifted(name, where(box_after, width, height), motion.direction(shift))


def _moved(sim: np.ndarray, regions: list[cd.Region], names_b: list[str], names_a: list[str],
           namer: RegionNamer, width: int, height: int, used: set[int]) -> list[Change]:
    """Moved objects from the (n, n) before/after crop similarity, among the regions not in
    ``used`` (which it extends)."""
    n = len(regions)
    changes: list[Change] = []
    pairs = sorted(((sim[i, j], i, j) for i in range(n) for j in range(n) if i != j),
                   reverse=True)
    for s, i, j in pairs:
        if i in used or j in used or s < cd.MOVED_SIMILARITY:
            continue
        if s - max(sim[i, i], sim[j, j]) < MOVED_MARGIN:
            continue
        used |= {i, j}
        sentence = namer.moved(names_b[i], place(regions[i].box, width, height),
                               place(regions[j].box, width, height))
        changes.append(Change("moved", sentence, list(regions[j].box), names_b[i], names_a[j],
                              {"similarity": round(float(s), 3),
                               "work_box": list(regions[j].box),
                               "work_box_before": list(regions[i].box)}))
    return changes


def _colours(before: np.ndarray, after: np.ndarray, lab_b: np.ndarray, lab_a: np.ndarray,
             mask: np.ndarray) -> str:
    """The colour change in words, "from orange to cyan" ("(now cyan)" when both names agree):
    the dominant colours of the ``mask`` pixels whose chroma (a*, b*) moved by at least
    ``RECOLOUR_DAB``, or of the whole mask if none did.

    Args:
        before, after: (H, W, 3) float32 RGB in [0, 1]; lab_b, lab_a: their (H, W, 3) CIELAB.
        mask: (H, W) bool, the region.
    """
    moved_ab = np.linalg.norm(lab_b[..., 1:] - lab_a[..., 1:], axis=-1)  # (H, W)
    sel = mask & (moved_ab >= cd.RECOLOUR_DAB)
    sel = sel if sel.any() else mask
    c0 = colour_name(dominant_colour(before[sel]))
    c1 = colour_name(dominant_colour(after[sel]))
    return f"from {c0} to {c1}" if c0 != c1 else f"(now {c1})"


def describe_regions(before: np.ndarray, after: np.ndarray, regions: list[cd.Region],
                     features: ChangeFeatures, namer: RegionNamer) -> list[Change]:
    """Type, names and sentence of each region.

    Args:
        before, after: (H, W, 3) float32 RGB in [0, 1], the aligned pair on the working grid.
        regions: changed regions on that grid.
        features: gives the crops' embeddings (and class logits for the namer).
        namer: names the crops and phrases the sentences.

    Returns:
        Changes with boxes in the working grid, sorted top to bottom then left to right
        (a moved object is one change, reported at its new place).
    """
    if not regions:
        return []
    H, W = before.shape[:2]
    crops_b, crops_a = [], []
    for r in regions:
        x0, y0, x1, y1 = cd.expand_box(r.box, (H, W), CROP_MARGIN)
        crops_b.append(to_image(before[y0:y1, x0:x1]))
        crops_a.append(to_image(after[y0:y1, x0:x1]))
    crop_features = features.crops(crops_b + crops_a)  # 2n crops: before ones, then after
    names = namer.names(crops_b + crops_a, crop_features)
    n = len(regions)
    names_b, names_a = names[:n], names[n:]
    emb = crop_features.embeddings  # (2n, C) unit vectors
    sim = (emb[:n] @ emb[n:].T).numpy()  # (n, n): before crop i vs after crop j
    blur_b, blur_a = motion.blurred_lab(before), motion.blurred_lab(after)
    changed = motion.changed_pixels(blur_b, blur_a)  # (H, W) bool
    changes, used = [], set()
    desc_b, desc_a = motion.blocks(blur_b), motion.blocks(blur_a)  # (H, W, 27)
    for score, i, j, m in _moved_by_pixels(desc_b, desc_a, changed, regions):
        used |= {i, j}
        sentence = _moved_sentence(namer, names_b[i], m.box_before, m.box_after, m.shift, W, H)
        changes.append(Change("moved", sentence, list(m.box_after), names_b[i], names_a[j],
                              {"match": round(score, 3), "shift": list(m.shift),
                               "work_box": list(m.box_after),
                               "work_box_before": list(m.box_before)}))
    changes += _moved(sim, regions, names_b, names_a, namer, W, H, used)
    lab_b, lab_a = rgb_to_lab(before), rgb_to_lab(after)
    for i, r in enumerate(regions):
        if i in used:
            continue
        pixels = r.mask & changed if (r.mask & changed).sum() >= 16 else r.mask
        corr, dab = cd.recolour_evidence(lab_b, lab_a, pixels)
        fractions = object_fractions(before, after, r.mask, r.box)
        err_b = cd.inpaint_error(before, r.mask, r.box)
        err_a = cd.inpaint_error(after, r.mask, r.box)
        kind = cd.single_region_type(corr, dab, fractions["before"], fractions["after"],
                                     err_b, err_a)
        at, nb, na = where(r.box, W, H), names_b[i], names_a[i]
        if kind == "added":
            sentence = namer.added(na, at)
        elif kind == "removed":
            sentence = namer.removed(nb, at)
        elif kind == "replaced":
            sentence = namer.replaced(nb, na, at)
        else:  # "recoloured"
            sentence = namer.recoloured(nb, at, _colours(before, after, lab_b, lab_a, pixels))
        changes.append(Change(kind, sentence, list(r.box), nb, na,
                              {"l_correlation": round(corr, 3), "delta_ab": round(dab, 2),
                               "object_before": round(fractions["before"], 3),
                               "object_after": round(fractions["after"], 3),
                               "inpaint_error_before": round(err_b, 2),
                               "inpaint_error_after": round(err_a, 2),
                               "work_box": list(r.box)}))
    changes.sort(key=lambda c: (c.box[1], c.box[0]))
    return changes
