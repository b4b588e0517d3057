"""Describe the changes between a before and an after image, one sentence per change.

Method (embedded, offline): the pair is registered (phase correlation or an ORB + RANSAC
homography, then a photometric fit, :mod:`engine.change.alignment`, so a small camera motion
or a lighting change is not a change;
Park et al., "Robust Change Captioning", ICCV 2019); the two images are compared in pixels and in
EfficientNet-Lite0's stride-8/16 feature maps; the difference map becomes regions; each region's
content before and after is named with the ImageNet vocabulary (crops through the classifier);
the change type follows :mod:`engine.change.detection`; a template writes the sentence
(CLEVR-Change style, Park et al. 2019). Hub mode: BLIP describes each region's crop before and
after instead of the ImageNet names.

Images of different sizes: the after image is resized to the before image's size (bicubic)
before anything else; boxes are reported in the after image's own pixels.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageDraw

from engine.change import detection as cd
from engine.change.alignment import align_pair
from engine.colours import colour_name, dominant_colour, rgb_to_lab
from engine.models import load_model as get_model, get_spec, list_models
from engine.viz import overlay_heatmap

EMBEDDED_MODEL = "efficientnet_lite0"
#: Long side (pixels) the pair is analysed at.
WORK_SIDE = 384
CHANGE_TYPES = ("added", "removed", "moved", "replaced", "recoloured")
_lock = threading.Lock()


@dataclass
class Change:
    """One change.

    Attributes:
        type: one of :data:`CHANGE_TYPES`.
        sentence: one sentence describing it.
        box: [x0, y0, x1, y1] in after-image pixels (ints, x1/y1 exclusive).
        before: what the region held before (ImageNet name or BLIP caption).
        after: what it holds after.
        evidence: the measured cues behind the type (for the curious and for tests).
    """

    type: str
    sentence: str
    box: list[int]
    before: str
    after: str
    evidence: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"type": self.type, "sentence": self.sentence, "box": self.box,
                "before": self.before, "after": self.after}


@dataclass
class ChangeResult:
    """Result of :class:`ChangePipeline`.

    Attributes:
        changes: the changes, numbered 1.. in this order on the overlays.
        caption: all sentences joined, or "no change".
        before_overlay, after_overlay: RGB images, the difference heatmap over each image with
            numbered boxes (before at its own size, after at its own size).
        heat: (h, w) float32 difference map in [0, 1] at the working size (before's grid).
        model: the model that named the regions.
        ms: wall milliseconds of the analysis (model loading excluded).
        shift: (dy, dx) camera shift compensated (for a homography, the image centre's), in
            working-size pixels; after coordinates = before - shift.
        notes: remarks for the user.
    """

    changes: list[Change]
    caption: str
    before_overlay: Image.Image
    after_overlay: Image.Image
    heat: np.ndarray
    model: str
    ms: float
    shift: tuple[float, float] = (0.0, 0.0)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"changes": [c.to_json() for c in self.changes], "caption": self.caption,
                "model": self.model, "ms": round(self.ms, 1)}


def change_models() -> list[str]:
    """Models the pipeline accepts: the embedded namer first, then hub captioners."""
    return [EMBEDDED_MODEL] + list_models(task="caption")


def _where(box, W: int, H: int) -> str:
    cx, cy = (box[0] + box[2]) / 2 / W, (box[1] + box[3]) / 2 / H
    row = "top" if cy < 1 / 3 else ("bottom" if cy > 2 / 3 else "")
    col = "left" if cx < 1 / 3 else ("right" if cx > 2 / 3 else "")
    if not row and not col:
        return "in the centre"
    return f"at the {' '.join(p for p in (row, col) if p)}"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _to_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) / 255.0


def _to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8))


class ChangePipeline:
    """Describe what changed between two images.

    Usage::

        result = ChangePipeline()(before, after)          # embedded, offline
        result = ChangePipeline()(before, after, model="blip-base")
    """

    def _features(self, images: list[np.ndarray]) -> list[dict[int, torch.Tensor]]:
        backbone = get_model(EMBEDDED_MODEL)
        pre = get_spec(EMBEDDED_MODEL).preprocess
        out = []
        with torch.no_grad():
            for arr in images:
                x = pre.whole_image(_to_image(arr))
                feats = backbone(x).features
                out.append({s: feats[s] for s in (8, 16)})
        return out

    def _name_crops(self, crops: list[Image.Image]) -> tuple[list[str], torch.Tensor]:
        """ImageNet name of each crop and its (N, 1280) unit-norm pooled embedding."""
        backbone = get_model(EMBEDDED_MODEL)
        x = get_spec(EMBEDDED_MODEL).preprocess(crops, crop=False)
        with torch.no_grad():
            out = backbone(x)
        names = [backbone.class_names[i] for i in out.logits.argmax(-1).tolist()]
        return names, torch.nn.functional.normalize(out.pooled, dim=-1)

    def _blip_crops(self, crops: list[Image.Image], model: str) -> list[str]:
        from engine.models.blip import preprocess_for_blip
        pixels = preprocess_for_blip(crops, get_spec(model).preprocess)
        with _lock:
            return get_model(model).generate(pixels, decoding="beam")

    def __call__(self, before: Image.Image, after: Image.Image, *, model: str = EMBEDDED_MODEL,
                 threshold: float = cd.THRESHOLD) -> ChangeResult:
        """Find and describe the changes from ``before`` to ``after``.

        Args:
            before, after: RGB ``PIL.Image`` (from :func:`engine.inputs.images.load_image`); after is
                resized to before's size when they differ.
            model: one of :func:`change_models` (hub captioners describe the regions).
            threshold: difference (0..1) above which a pixel is changed.

        Returns:
            :class:`ChangeResult`.

        Raises:
            ValueError: unknown model, non-RGB images, threshold outside (0, 1).
            engine.models._hub.HubUnavailableError: a hub model while the hub is unreachable.
        """
        if model not in change_models():
            raise ValueError(f"unknown model {model!r}; valid: {', '.join(change_models())}")
        for img, what in ((before, "before"), (after, "after")):
            if not isinstance(img, Image.Image) or img.mode != "RGB":
                raise ValueError(f"the {what} image must be an RGB PIL image "
                                 "(use engine.inputs.images.load_image)")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        for name in {EMBEDDED_MODEL, model}:
            get_model(name)  # load outside the timed part
        notes: list[str] = []
        t0 = time.perf_counter()
        W0, H0 = before.size
        after_input, after_size = after, after.size
        if after.size != before.size:
            notes.append(f"The after image ({after.size[0]}x{after.size[1]}) was resized to the "
                         f"before image's size ({W0}x{H0}) for the comparison.")
            after = after.resize(before.size, Image.Resampling.BICUBIC)
        scale = min(1.0, WORK_SIDE / max(W0, H0))
        work = (max(16, round(W0 * scale)), max(16, round(H0 * scale)))
        b = _to_array(before.resize(work, Image.Resampling.BILINEAR))
        a = _to_array(after.resize(work, Image.Resampling.BILINEAR))
        al = align_pair(b, a)
        fb, fa = self._features([b, al.after])
        heat = cd.difference_map(cd.pixel_distance(b, al.after),
                                 cd.feature_distance(fb, fa, b.shape[:2]), al.valid)
        regions = cd.find_regions(heat, threshold)
        changes = self._describe(b, al.after, regions, model, work)
        # boxes: working grid (before) -> after-image pixels (undo the shift, then rescale)
        dy, dx = (float(v) for v in al.shift)
        sx, sy = after_size[0] / work[0], after_size[1] / work[1]
        for c in changes:  # box corners through the camera motion, then to after pixels
            x0, y0, x1, y1 = c.box
            pts = np.array([al.to_after(x, y) for x in (x0, x1) for y in (y0, y1)])
            c.box = [int(np.clip(round(pts[:, 0].min() * sx), 0, after_size[0])),
                     int(np.clip(round(pts[:, 1].min() * sy), 0, after_size[1])),
                     int(np.clip(round(pts[:, 0].max() * sx), 0, after_size[0])),
                     int(np.clip(round(pts[:, 1].max() * sy), 0, after_size[1]))]
        caption = " ".join(c.sentence for c in changes) if changes else "no change"
        ms = (time.perf_counter() - t0) * 1000.0
        if al.homography is not None:
            notes.append(f"A small camera motion (rotation / zoom / tilt, about ({dx:+.1f}, "
                         f"{dy:+.1f}) pixels at the centre, at {work[0]}x{work[1]}) was "
                         f"compensated before comparing.")
        elif abs(dx) >= 0.5 or abs(dy) >= 0.5:
            notes.append(f"A camera shift of ({dx:+.1f}, {dy:+.1f}) pixels at {work[0]}x"
                         f"{work[1]} was compensated before comparing.")
        before_boxes = [[round(v / scale) for v in c.evidence.get("work_box_before",
                                                                  c.evidence["work_box"])]
                        for c in changes]  # a moved object: where it was
        heat_after = np.roll(heat, (round(-dy), round(-dx)), axis=(0, 1))
        over_b = overlay_heatmap(before, heat, vrange=(0.0, 1.0))
        over_a = overlay_heatmap(after_input, heat_after, vrange=(0.0, 1.0))
        return ChangeResult(changes, caption, draw_boxes(over_b, before_boxes),
                            draw_boxes(over_a, [c.box for c in changes]), heat, model, ms,
                            (dy, dx), notes)

    def _describe(self, b: np.ndarray, a: np.ndarray, regions: list[cd.Region], model: str,
                  work: tuple[int, int]) -> list[Change]:
        """Type, names and sentence of each region (boxes in the working grid)."""
        if not regions:
            return []
        H, W = b.shape[:2]
        crops_b, crops_a = [], []
        for r in regions:
            x0, y0, x1, y1 = cd.expand_box(r.box, (H, W), 0.15)
            crops_b.append(_to_image(b[y0:y1, x0:x1]))
            crops_a.append(_to_image(a[y0:y1, x0:x1]))
        names, emb = self._name_crops(crops_b + crops_a)
        n = len(regions)
        names_b, names_a, emb_b, emb_a = names[:n], names[n:], emb[:n], emb[n:]
        if model != EMBEDDED_MODEL:
            texts = self._blip_crops(crops_b + crops_a, model)
            names_b, names_a = texts[:n], texts[n:]
        sim = (emb_b @ emb_a.T).numpy()  # (n, n): before crop i vs after crop j
        lab_b, lab_a = rgb_to_lab(b), rgb_to_lab(a)
        changes: list[Change] = []
        used: set[int] = set()
        # moved: what was in region i before is in region j after, and both places changed
        pairs = sorted(((sim[i, j], i, j) for i in range(n) for j in range(n) if i != j),
                       reverse=True)
        for s, i, j in pairs:
            if i in used or j in used or s < cd.MOVED_SIMILARITY:
                continue
            if s - max(sim[i, i], sim[j, j]) < 0.1:
                continue
            used |= {i, j}
            name = names_b[i]
            sentence = (f"The {name} moved from {_where(regions[i].box, W, H)[3:]} to "
                        f"{_where(regions[j].box, W, H)[3:]}.")
            if model != EMBEDDED_MODEL:
                sentence = (f"Moved from {_where(regions[i].box, W, H)[3:]} to "
                            f"{_where(regions[j].box, W, H)[3:]}: \"{name}\".")
            changes.append(Change("moved", sentence, list(regions[j].box), names_b[i],
                                  names_a[j], {"similarity": round(float(s), 3),
                                               "work_box": list(regions[j].box),
                                               "work_box_before": list(regions[i].box)}))
        for i, r in enumerate(regions):
            if i in used:
                continue
            corr, dab = cd.recolour_evidence(lab_b, lab_a, r.mask)
            err_b = cd.inpaint_error(b, r.mask, r.box)
            err_a = cd.inpaint_error(a, r.mask, r.box)
            kind = cd.single_region_type(corr, dab, err_b, err_a)
            where = _where(r.box, W, H)
            nb, na = names_b[i], names_a[i]
            if model != EMBEDDED_MODEL:
                sentence = {"added": f"Something appeared {where}: \"{na}\".",
                            "removed": f"Something disappeared {where}: \"{nb}\".",
                            "replaced": f"{where[:1].upper()}{where[1:]}, \"{nb}\" was "
                                        f"replaced by \"{na}\".",
                            }.get(kind, "")
            else:
                sentence = {"added": f"{_article(na).capitalize()} {na} appeared {where}.",
                            "removed": f"The {nb} {where} disappeared.",
                            "replaced": f"The {nb} {where} was replaced by {_article(na)} {na}.",
                            }.get(kind, "")
            if kind == "recoloured":
                moved_ab = np.linalg.norm(lab_b[..., 1:] - lab_a[..., 1:], axis=-1)
                sel = r.mask & (moved_ab >= cd.RECOLOUR_DAB)
                sel = sel if sel.any() else r.mask
                c0 = colour_name(dominant_colour(b[sel]))
                c1 = colour_name(dominant_colour(a[sel]))
                colours = f"from {c0} to {c1}" if c0 != c1 else f"(now {c1})"
                sentence = f"The {nb} {where} changed colour {colours}." \
                    if model == EMBEDDED_MODEL else f"\"{nb}\" {where} changed colour {colours}."
            changes.append(Change(kind, sentence, list(r.box), nb, na,
                                  {"l_correlation": round(corr, 3), "delta_ab": round(dab, 2),
                                   "inpaint_error_before": round(err_b, 2),
                                   "inpaint_error_after": round(err_a, 2),
                                   "work_box": list(r.box)}))
        changes.sort(key=lambda c: (c.box[1], c.box[0]))
        return changes


def draw_boxes(image: Image.Image, boxes: list[list[int]], color=(255, 255, 255)
               ) -> Image.Image:
    """Draw numbered boxes (1, 2, ...) on a copy of ``image``.

    Args:
        image: RGB image.
        boxes: [x0, y0, x1, y1] in the image's pixels.

    Returns:
        RGB image, same size.
    """
    out = image.copy()
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 200))
    for k, (x0, y0, x1, y1) in enumerate(boxes, start=1):
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=(0, 0, 0),
                       width=width + 2)
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=color, width=width)
        label = str(k)
        tx, ty = x0 + width + 1, y0 + width + 1
        tb = draw.textbbox((tx, ty), label, font_size=max(12, width * 6))
        draw.rectangle((tb[0] - 2, tb[1] - 2, tb[2] + 2, tb[3] + 2), fill=(0, 0, 0))
        draw.text((tx, ty), label, fill=color, font_size=max(12, width * 6))
    return out
