"""Edit an image by text: an instruction ("make the cat red", "blur the background") or a
caption for a painted region (GLIDE-style caption + mask).

:class:`EditPipeline` owns one editor (:mod:`engine.editing.editor` describes the interface):
the offline editor (:mod:`engine.editing.offline`: parse, localise, one pixel operation) or a
hub diffusion editor (:mod:`engine.editing.diffusion`: InstructPix2Pix, Brooks et al., CVPR
2023; Stable Diffusion inpainting, Rombach et al., CVPR 2022). Whatever the editor, the pipeline
checks the inputs, pastes the edited pixels back inside the editor's region so pixels outside
it keep their exact bytes, refuses an edit that would change no pixel, and measures the change.

    >>> pipe = EditPipeline(OfflineEditor(localiser))   # engine.factory.get_pipeline("edit")
    >>> result = pipe(image, "make the cat red")
    >>> result = pipe(image, "blue", mask=painted)      # caption + mask
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from engine.editing.editor import Editor, Progress
from engine.editing.operations import compose
from engine.errors import UserInputError
from engine.viz import overlay_heatmap
from engine.inputs.images import require_rgb, small_image_note

#: Change magnitudes (mean absolute difference, 0..255) the heatmap's colour scale spans.
HEATMAP_RANGE = (0.0, 96.0)


@dataclass
class EditResult:
    """Result of :class:`EditPipeline`.

    Attributes:
        image: the edited RGB image, same size as the input.
        mask: (H, W) bool region the edit was allowed to touch.
        heatmap: RGB image, per-pixel change magnitude over the input.
        operation: what was done ("recolour", "remove", ..., or "instruct-pix2pix" /
            "inpaint" in hub mode).
        target: what was edited ("cat", "the background", "the painted region", ...).
        changed_fraction: share of all pixels whose value changed, in [0, 1].
        changed_fraction_outside: share of the pixels outside ``mask`` that changed (0 for
            every embedded operation and after the hub paste-back).
        model: the model used.
        ms: wall milliseconds (model loading excluded).
        notes: remarks for the user.
        device: where the editor ran ("cpu float32", "cuda:0 float16").
    """

    image: Image.Image
    mask: np.ndarray
    heatmap: Image.Image
    operation: str
    target: str
    changed_fraction: float
    changed_fraction_outside: float
    model: str
    ms: float
    notes: list[str] = field(default_factory=list)
    device: str = "cpu float32"

    def to_json(self) -> dict:
        return {"operation": self.operation, "target": self.target,
                "changed_fraction": round(self.changed_fraction, 5),
                "changed_fraction_outside": round(self.changed_fraction_outside, 6),
                "model": self.model, "ms": round(self.ms, 1), "device": self.device}


def change_heatmap(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(H, W) float32 mean absolute difference of two (H, W, 3) uint8 images, 0..255."""
    return np.abs(before.astype(np.int16) - after.astype(np.int16)).mean(-1).astype(np.float32)


class EditPipeline:
    """Edit one image by text with one editor.

    Args:
        editor: an :class:`engine.editing.editor.Editor` (offline, InstructPix2Pix or
            inpainting); its ``name`` is the model the results report.
    """

    def __init__(self, editor: Editor) -> None:
        self.editor = editor
        self.name: str = editor.name

    def estimate(self, size: tuple[int, int], steps: int):
        """The editor's expected duration (:class:`engine.latency.Estimate`) of an edit of a
        (W, H) ``size`` image with ``steps`` denoising steps; None for an editor that does not
        sample (the offline one answers in under a second) or when nothing is known."""
        fn = getattr(self.editor, "estimate", None)
        return None if fn is None else fn(size, int(steps))

    @property
    def device(self) -> str:
        """Where the editor runs ("cpu float32", "cuda:0 float16")."""
        return getattr(self.editor, "device", "cpu float32")

    @staticmethod
    def _check(image: Image.Image, text: str, mask: np.ndarray | None) -> np.ndarray | None:
        """Refuse a non-RGB image, empty text, a mask of the wrong size or an empty mask."""
        require_rgb(image)
        if not isinstance(text, str) or not text.strip():
            raise UserInputError("the instruction is empty: please type what to change")
        if mask is None:
            return None
        W, H = image.size
        mask = np.asarray(mask, bool)
        if mask.shape != (H, W):
            raise UserInputError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                                 f"{W}x{H} (load it with engine.inputs.images.load_mask)")
        if not mask.any():
            raise UserInputError("the mask is empty: paint the region to change")
        return mask

    def __call__(self, image: Image.Image, text: str, mask: np.ndarray | None = None, *,
                 seed: int = 0, steps: int = 20, guidance_scale: float = 7.5,
                 image_guidance_scale: float = 1.5, progress: Progress | None = None
                 ) -> EditResult:
        """Edit ``image`` as ``text`` says.

        Args:
            image: RGB ``PIL.Image`` (from :func:`engine.inputs.images.load_image`).
            text: instruction, or the caption of the masked region (cleaned by
                :func:`engine.inputs.text.clean_text`).
            mask: optional (H, W) bool region (H, W = image height, width), e.g. from
                :func:`engine.inputs.images.load_mask`; only these pixels may change.
            seed: seed of the hub models' sampling and of the grain of an offline removal
                (every other offline edit has no randomness).
            steps, guidance_scale, image_guidance_scale: hub models' denoising steps (1..100),
                text guidance and InstructPix2Pix's image guidance.
            progress: called with (step, steps) during hub denoising.

        Returns:
            :class:`EditResult` (the image has the input's size).

        Raises:
            UserInputError: not an RGB image, empty text, bad mask shape, empty mask, text the
                editor cannot carry out, a target it cannot find, a mask it needs, sampling
                options out of range, an edit that changes nothing.
        """
        mask = self._check(image, text, mask)
        arr = np.asarray(image, np.uint8)  # (H, W, 3)
        t0 = time.perf_counter()
        out = self.editor.edit(image, text, mask, seed=seed, steps=steps,
                               guidance_scale=guidance_scale,
                               image_guidance_scale=image_guidance_scale, progress=progress)
        edited = compose(arr, out.edited, out.region)
        ms = (time.perf_counter() - t0) * 1000.0
        changed = np.any(edited != arr, axis=-1)  # (H, W)
        if not changed.any():
            raise UserInputError(f"\"{text}\" would not change any pixel of {out.target} (it "
                                 f"already looks like that); nothing was edited.")
        outside = ~out.region
        frac_out = float(changed[outside].mean()) if outside.any() else 0.0
        heat = overlay_heatmap(image, change_heatmap(arr, edited), vrange=HEATMAP_RANGE)
        small = small_image_note(image)
        return EditResult(Image.fromarray(edited), out.region, heat, out.operation, out.target,
                          float(changed.mean()), frac_out, self.name, ms,
                          list(out.notes) + ([small] if small else []),
                          getattr(self.editor, "device", "cpu float32"))
