"""Describe the changes between a before and an after image, one sentence per change.

Method: the pair is registered (phase correlation or an ORB + RANSAC homography, then a
photometric fit, :mod:`engine.change.alignment`, so a small camera motion or a lighting change is
not a change; Park et al., "Robust Change Captioning", ICCV 2019); the two images are compared
in pixels and in the backbone's stride-8/16 feature maps (:mod:`engine.change.features`); the
difference map becomes regions (:mod:`engine.change.detection`); each region is typed and
described (:mod:`engine.change.describe`) by the region namer, ImageNet class names offline or a
hub captioner's (BLIP's) captions of the crops (:mod:`engine.change.namers`).

Images of different sizes: the after image is resized to the before image's size (bicubic)
before anything else; boxes are reported in the after image's own pixels.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from engine.change import detection as cd
from engine.change.alignment import align_pair
from engine.change.describe import Change, describe_regions
from engine.change.features import ChangeFeatures, to_array
from engine.change.namers import RegionNamer
from engine.errors import UserInputError
from engine.viz import overlay_heatmap
from engine.inputs.images import require_rgb

#: Long side (pixels) the pair is analysed at.
WORK_SIDE = 384
#: Matplotlib colormap of the difference heatmaps, drawn over 0..1 (fixed range) at half
#: opacity; the tab's colour scale is drawn from the same name.
HEATMAP_CMAP = "jet"


@dataclass
class ChangeResult:
    """Result of :class:`ChangePipeline`.

    Attributes:
        changes: the changes, numbered 1.. in this order on the overlays; boxes in after-image
            pixels.
        caption: all sentences joined, or "no change".
        before_overlay, after_overlay: RGB images, the difference heatmap over each image with
            numbered boxes (before at its own size, after at its own size).
        heat: (h, w) float32 difference map in [0, 1] at the working size (before's grid).
        model: the name of the model that named the regions (the pipeline's ``name``).
        ms: wall milliseconds of the analysis.
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
        """The result as a JSON-ready dict (changes, caption, model, ms; no images)."""
        return {"changes": [c.to_json() for c in self.changes], "caption": self.caption,
                "model": self.model, "ms": round(self.ms, 1)}


class ChangePipeline:
    """Describe what changed between two images.

    Args:
        features: the backbone's feature maps and crop embeddings (:class:`ChangeFeatures`).
        namer: names the regions and phrases the sentences (an
            :class:`~engine.change.namers.ImageNetNamer` offline, a
            :class:`~engine.change.namers.CaptionNamer` on a hub captioner).
        name: the model name reported in results ("efficientnet_lite0", "blip-base", ...).

    Usage::

        result = engine.factory.get_pipeline("change")(before, after)
    """

    def __init__(self, features: ChangeFeatures, namer: RegionNamer, *, name: str) -> None:
        self.features, self.namer, self.name = features, namer, name

    def __call__(self, before: Image.Image, after: Image.Image, *,
                 threshold: float = cd.THRESHOLD) -> ChangeResult:
        """Find and describe the changes from ``before`` to ``after``.

        Args:
            before, after: RGB ``PIL.Image`` (from :func:`engine.inputs.images.load_image`);
                after is resized to before's size when they differ.
            threshold: difference (0..1) above which a pixel is changed.

        Returns:
            :class:`ChangeResult`.

        Raises:
            UserInputError: threshold outside (0, 1).
            ValueError: non-RGB images (a programming error).
        """
        for img, what in ((before, "before"), (after, "after")):
            require_rgb(img, f"the {what} image")
        if not 0.0 < threshold < 1.0:
            raise UserInputError(f"threshold must be in (0, 1), got {threshold}")
        notes: list[str] = []
        t0 = time.perf_counter()
        W0, H0 = before.size
        after_input, after_size = after, after.size
        if after.size != before.size:
            notes.append(f"The after image ({after.size[0]}x{after.size[1]}) was resized to the "
                         f"before image's size ({W0}x{H0}) for the comparison.")
            after = after.resize(before.size, Image.Resampling.BICUBIC)
        scale = min(1.0, WORK_SIDE / max(W0, H0))
        work = (max(16, round(W0 * scale)), max(16, round(H0 * scale)))  # (width, height)
        b = to_array(before.resize(work, Image.Resampling.BILINEAR))  # (h, w, 3)
        a = to_array(after.resize(work, Image.Resampling.BILINEAR))
        al = align_pair(b, a)
        fb, fa = self.features.maps([b, al.after])
        heat = cd.difference_map(cd.pixel_distance(b, al.after),
                                 cd.feature_distance(fb, fa, b.shape[:2]), al.valid)  # (h, w)
        regions = cd.find_regions(heat, threshold)
        changes = describe_regions(b, al.after, regions, self.features, self.namer)
        # boxes: working grid (before) -> after-image pixels (undo the shift, then rescale)
        dy, dx = (float(v) for v in al.shift)
        sx, sy = after_size[0] / work[0], after_size[1] / work[1]
        for c in changes:  # box corners through the camera motion, then to after pixels
            x0, y0, x1, y1 = c.box
            pts = np.array([al.to_after(x, y) for x in (x0, x1) for y in (y0, y1)])  # (4, 2)
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
        over_b = overlay_heatmap(before, heat, cmap=HEATMAP_CMAP, vrange=(0.0, 1.0))
        over_a = overlay_heatmap(after_input, heat_after, cmap=HEATMAP_CMAP, vrange=(0.0, 1.0))
        return ChangeResult(changes, caption, draw_boxes(over_b, before_boxes),
                            draw_boxes(over_a, [c.box for c in changes]), heat, self.name, ms,
                            (dy, dx), notes)


def draw_boxes(image: Image.Image, boxes: list[list[int]], color=(255, 255, 255)
               ) -> Image.Image:
    """Draw numbered boxes (1, 2, ...) on a copy of ``image``.

    Args:
        image: RGB image.
        boxes: [x0, y0, x1, y1] in the image's pixels.
        color: RGB (0..255) of the box outlines and numbers (drawn over a black outline).

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
