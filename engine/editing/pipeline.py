"""Edit an image by text: an instruction ("make the cat red", "blur the background") or a
caption for a painted region (GLIDE-style caption + mask).

Embedded mode (offline): *where* is the user's mask if given, else the region the text names
(MiniLM matches the words to ImageNet classes, the class activation map localises them, SLIC
superpixels refine the outline; "the background" is the complement of the main object,
:mod:`engine.editing.localize`); *how* is one pixel operation of :mod:`engine.editing.operations`
(recolour keeping shading, remove by inpainting, grayscale, blur, brightness, sepia). Pixels
outside the region keep their exact bytes. Text it cannot carry out is refused with what it can
do (:mod:`engine.editing.instruction`); an edit that would change no pixel is refused too.

Hub mode: InstructPix2Pix (Brooks et al., CVPR 2023) for instructions and Stable Diffusion
inpainting (Rombach et al., CVPR 2022) for caption + mask, through diffusers
(:mod:`engine.models.diffusion`), the result pasted back outside the region.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

from engine.editing import operations as edit_ops
from engine.editing.instruction import BACKGROUND, WHOLE_IMAGE, Command, parse_instruction
from engine.models import load_model as get_model, get_spec, list_models
from engine.viz import overlay_heatmap

EMBEDDED_MODEL = "efficientnet_lite0"
#: Pixels a *found* object's region is grown by for a removal, so its edge goes too (a painted
#: mask is used as painted).
REMOVE_GROW = 4
_NOTHING = re.compile(r"^(?:an? )?(?:nothing|empty|blank|clear|background|plain background)"
                      r"(?: \w+)?$")


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

    def to_json(self) -> dict:
        return {"operation": self.operation, "target": self.target,
                "changed_fraction": round(self.changed_fraction, 5),
                "changed_fraction_outside": round(self.changed_fraction_outside, 6),
                "model": self.model, "ms": round(self.ms, 1)}


def edit_models() -> list[str]:
    """Models the pipeline accepts: the embedded editor first, then hub editors."""
    return [EMBEDDED_MODEL] + list_models(task="edit") + list_models(task="inpaint")


def change_heatmap(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(H, W) float32 mean absolute difference of two (H, W, 3) uint8 images, 0..255."""
    return np.abs(before.astype(np.int16) - after.astype(np.int16)).mean(-1).astype(np.float32)


class EditPipeline:
    """Edit one image by text.

    Usage::

        result = EditPipeline()(image, "make the cat red")
        result = EditPipeline()(image, "blue", mask=painted)                 # caption + mask
        result = EditPipeline()(image, "a vase of flowers", mask=painted, model="sd-inpainting")
    """

    def _region(self, image: Image.Image, command: Command, notes: list[str]) -> np.ndarray:
        from engine.editing.localize import localise
        W, H = image.size
        if command.target == WHOLE_IMAGE:
            return np.ones((H, W), bool)
        if command.target == BACKGROUND:
            loc = localise(image, None)
            notes.append(f"Background = everything but the main object ({loc.classes[0]}).")
            return ~loc.mask
        loc = localise(image, command.target)
        notes.append(f"\"{command.target}\" matched ImageNet classes {', '.join(loc.classes[:3])}"
                     f" (similarity {loc.similarity:.2f}; image probability "
                     f"{loc.probability:.2f}).")
        if loc.probability < 0.02:
            notes.append("The classifier is not confident this object is in the image; the "
                         "region is a guess. Paint a mask for a precise edit.")
        return loc.mask

    @staticmethod
    def _parse(text: str, mask: np.ndarray | None) -> Command:
        if mask is not None and _NOTHING.match(text.lower().strip(" .!")):
            return Command("remove", "the painted region")
        try:
            return parse_instruction(text)
        except ValueError as exc:
            if mask is None:
                raise
            raise ValueError(f"{exc} With a painted region the offline editor can also fill "
                             "it from its surroundings (caption \"nothing\"). It cannot draw "
                             "new objects; that needs the hub model sd-inpainting.") from None

    def _apply(self, arr: np.ndarray, command: Command, region: np.ndarray, grow: bool,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
        op = command.operation
        if op == "remove":
            region = edit_ops.grow(region, REMOVE_GROW) if grow else region
            return edit_ops.remove(arr, region, seed=seed), region
        edited = {"recolour": lambda: edit_ops.recolour(arr, command.colour or "red"),
                  "grayscale": lambda: edit_ops.grayscale(arr),
                  "sepia": lambda: edit_ops.sepia(arr),
                  "blur": lambda: edit_ops.blur(arr),
                  "brighten": lambda: edit_ops.brightness(arr, edit_ops.BRIGHTER),
                  "darken": lambda: edit_ops.brightness(arr, edit_ops.DARKER)}[op]()
        return edited, region

    def __call__(self, image: Image.Image, text: str, mask: np.ndarray | None = None, *,
                 seed: int = 0, model: str = EMBEDDED_MODEL, steps: int = 20,
                 guidance_scale: float = 7.5, image_guidance_scale: float = 1.5,
                 progress: Callable[[int, int], None] | None = None) -> EditResult:
        """Edit ``image`` as ``text`` says.

        Args:
            image: RGB ``PIL.Image`` (from :func:`engine.inputs.images.load_image`).
            text: instruction, or the caption of the masked region (cleaned by
                :func:`engine.inputs.text.clean_text`).
            mask: optional (H, W) bool region (H, W = image height, width), e.g. from
                :func:`engine.inputs.images.load_mask`; only these pixels may change.
            seed: seed of the hub models' sampling and of the grain of an embedded removal
                (every other embedded edit has no randomness).
            model: one of :func:`edit_models`.
            steps, guidance_scale, image_guidance_scale: hub models' denoising steps (1..100),
                text guidance and InstructPix2Pix's image guidance.
            progress: called with (step, steps) during hub denoising.

        Returns:
            :class:`EditResult` (the image has the input's size).

        Raises:
            ValueError: unknown model, bad mask shape, text the editor cannot carry out, a
                target it cannot find, an edit that changes nothing.
            engine.models._hub.HubUnavailableError: a hub model while the hub is unreachable.
        """
        if model not in edit_models():
            raise ValueError(f"unknown edit model {model!r}; valid: {', '.join(edit_models())}")
        if not isinstance(image, Image.Image) or image.mode != "RGB":
            raise ValueError("image must be an RGB PIL image (use engine.inputs.images.load_image)")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the instruction is empty: please type what to change")
        W, H = image.size
        if mask is not None:
            mask = np.asarray(mask, bool)
            if mask.shape != (H, W):
                raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                                 f"{W}x{H} (load it with engine.inputs.images.load_mask)")
            if not mask.any():
                raise ValueError("the mask is empty: paint the region to change")
        command = self._parse(text, mask) if model == EMBEDDED_MODEL else None
        for name in {EMBEDDED_MODEL, "minilm", model}:
            get_model(name)  # load outside the timed part
        if model == EMBEDDED_MODEL and mask is None:
            from engine.editing.localize import class_table
            class_table()  # embeds the 1,000 class names once per process
        notes: list[str] = []
        arr = np.asarray(image, np.uint8)
        t0 = time.perf_counter()
        if model != EMBEDDED_MODEL:
            from engine.models.diffusion import run_hub_edit
            kind = get_spec(model).task
            if kind == "inpaint" and mask is None:
                raise ValueError(f"{model} fills a painted region: paint a mask (caption + mask "
                                 "mode), or choose an instruction model")
            edited, region = run_hub_edit(get_model(model), image, text, mask, seed=seed,
                                          steps=steps, guidance_scale=guidance_scale,
                                          image_guidance_scale=image_guidance_scale,
                                          progress=progress)
            operation = "inpaint" if kind == "inpaint" else "instruct-pix2pix"
            target = "the painted region" if mask is not None else WHOLE_IMAGE
        else:
            region = mask if mask is not None else self._region(image, command, notes)
            edited, region = self._apply(arr, command, region, grow=mask is None, seed=seed)
            operation = command.operation
            target = "the painted region" if mask is not None else command.target
        out = edit_ops.compose(arr, edited, region)
        ms = (time.perf_counter() - t0) * 1000.0
        changed = np.any(out != arr, axis=-1)
        if not changed.any():
            raise ValueError(f"\"{text}\" would not change any pixel of {target} (it already "
                             f"looks like that); nothing was edited.")
        outside = ~region
        frac_out = float(changed[outside].mean()) if outside.any() else 0.0
        heat = overlay_heatmap(image, change_heatmap(arr, out), vrange=(0.0, 96.0))
        return EditResult(Image.fromarray(out), region, heat, operation, target,
                          float(changed.mean()), frac_out, model, ms, notes)
