"""Hub editors: InstructPix2Pix (Brooks, Holynski & Efros, "InstructPix2Pix: Learning to Follow
Image Editing Instructions", CVPR 2023) and Stable Diffusion inpainting (Rombach et al.,
"High-Resolution Image Synthesis with Latent Diffusion Models", CVPR 2022), each wrapping a
:class:`engine.models.diffusion.DiffusionEditor` behind the editors' one ``edit(...)`` method.

The image is resized so its long side is the model's ``work_side`` (512 for the SD-1.5-based
weights) and both sides are multiples of 8 (the VAE downsamples by 8), edited, and resized back
to the input's size; the pipeline then pastes the result back only inside the region.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.device import Placement, make_generator
from engine.latency import CLOCK, Estimate
from engine.editing.editor import EditOutput, Progress
from engine.editing.instruction import PAINTED_REGION, WHOLE_IMAGE
from engine.errors import UserInputError
from engine.models.diffusion import DiffusionEditor

#: Accepted ranges of the sampling options (inclusive).
STEPS_RANGE, GUIDANCE_RANGE, IMAGE_GUIDANCE_RANGE = (1, 100), (0.0, 30.0), (0.0, 10.0)


def work_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(W, H) scaled so the long side is ``side``, each a multiple of 8 and at least 8 * 2."""
    W, H = size
    scale = side / max(W, H)
    return (max(16, int(round(W * scale / 8)) * 8), max(16, int(round(H * scale / 8)) * 8))


def check_sampling(steps: int, guidance_scale: float, image_guidance_scale: float) -> None:
    """Refuse sampling options out of range.

    Raises:
        UserInputError: steps not in 1..100, or a guidance scale out of range.
    """
    if not STEPS_RANGE[0] <= int(steps) <= STEPS_RANGE[1]:
        raise UserInputError(f"steps must be in 1..100, got {steps}")
    if not (GUIDANCE_RANGE[0] <= guidance_scale <= GUIDANCE_RANGE[1]
            and IMAGE_GUIDANCE_RANGE[0] <= image_guidance_scale <= IMAGE_GUIDANCE_RANGE[1]):
        raise UserInputError(f"guidance scales out of range: {guidance_scale}, "
                             f"{image_guidance_scale}")


def run_diffusion(model: DiffusionEditor, image: Image.Image, text: str, *, seed: int,
                  steps: int, guidance_scale: float, progress: Progress | None,
                  mask: np.ndarray | None = None, **pipe_kwargs: Any) -> np.ndarray:
    """One seeded denoising run at the working size, resized back to the input's size.

    Args:
        model: the loaded diffusers pipeline with its working size and lock.
        image: RGB image (W x H).
        text: the prompt.
        seed: seed of the initial noise (a ``torch.Generator`` per call on the model's device,
            so a seed gives the same image again on the same kind of device).
        steps: denoising steps.
        guidance_scale: classifier-free text guidance (> 1 enables it).
        progress: called with (step, steps) after each denoising step.
        mask: (H, W) bool region to fill (inpainting), passed resized (nearest) to the working
            size as ``mask_image``; None for InstructPix2Pix.
        pipe_kwargs: further arguments of the diffusers pipeline.

    Returns:
        (H, W, 3) uint8 edited image.
    """
    W, H = image.size
    ws = work_size((W, H), model.work_side)
    work = image.resize(ws, Image.Resampling.BICUBIC)
    if mask is not None:
        pipe_kwargs.update(height=ws[1], width=ws[0], mask_image=Image.fromarray(
            mask.astype(np.uint8) * 255).resize(ws, Image.Resampling.NEAREST))
    generator = make_generator(seed, model.device)  # per call, on the model's device

    last_step = [0.0]

    def on_step(pipe, step, timestep, kwargs):
        last_step[0] = time.perf_counter()
        if progress is not None:
            progress(step + 1, int(steps))
        return kwargs

    with model.lock, torch.no_grad():  # schedulers keep per-call state: one call at a time
        t0 = time.perf_counter()  # after the lock: another request's run is not this one's
        out = model.pipe(prompt=text, image=work, num_inference_steps=int(steps),
                         guidance_scale=float(guidance_scale), generator=generator,
                         output_type="np", callback_on_step_end=on_step, **pipe_kwargs)
        if last_step[0]:  # this device's seconds per step, for the next estimates
            CLOCK.record(model.kind, model.device.type, model.work_side, ws, int(steps),
                         last_step[0] - t0, time.perf_counter() - last_step[0])
    arr = np.nan_to_num(np.asarray(out.images[0], np.float32))  # (h, w, 3) in [0, 1]
    edited = Image.fromarray((arr.clip(0, 1) * 255).round().astype(np.uint8)).resize(
        (W, H), Image.Resampling.BICUBIC)
    return np.asarray(edited, np.uint8)


def estimate(model: DiffusionEditor, size: tuple[int, int], steps: int) -> Estimate | None:
    """Expected duration of :func:`run_diffusion` on ``model`` for a (W, H) ``size`` image."""
    return CLOCK.estimate(model.kind, model.device.type, model.work_side,
                          work_size(size, model.work_side), int(steps))


class InstructPix2PixEditor:
    """Edit by instruction with InstructPix2Pix; a painted mask limits where it may change.

    Args:
        model: a :class:`DiffusionEditor` of kind "instruct".
        name: the model name results report.

    Raises:
        ValueError: ``model`` is not an InstructPix2Pix pipeline.
    """

    operation = "instruct-pix2pix"

    def __init__(self, model: DiffusionEditor, name: str = "instruct-pix2pix") -> None:
        if model.kind != "instruct":
            raise ValueError(f"{name}: needs an InstructPix2Pix pipeline, got kind {model.kind!r}")
        self.model, self.name = model, name

    @property
    def device(self) -> str:
        """Where the model runs: "cpu float32" or "cuda:0 float16" (engine.device)."""
        return Placement(self.model.device, self.model.dtype).label()

    def estimate(self, size: tuple[int, int], steps: int) -> Estimate | None:
        """Expected duration of an edit of a (W, H) ``size`` image with ``steps`` steps on this
        model's device (:data:`engine.latency.CLOCK`), or None when nothing is known."""
        return estimate(self.model, size, steps)

    def edit(self, image: Image.Image, text: str, mask: np.ndarray | None, *, seed: int = 0,
             steps: int = 20, guidance_scale: float = 7.5, image_guidance_scale: float = 1.5,
             progress: Progress | None = None) -> EditOutput:
        """Edit as :meth:`engine.editing.editor.Editor.edit` describes (no mask: whole image).

        Raises:
            UserInputError: steps or guidance out of range.
        """
        check_sampling(steps, guidance_scale, image_guidance_scale)
        W, H = image.size
        region = np.ones((H, W), bool) if mask is None else np.asarray(mask, bool)
        edited = run_diffusion(self.model, image, text, seed=seed, steps=steps,
                               guidance_scale=guidance_scale, progress=progress,
                               image_guidance_scale=float(image_guidance_scale))
        return EditOutput(edited, region, self.operation,
                          WHOLE_IMAGE if mask is None else PAINTED_REGION)


class InpaintingEditor:
    """Fill a painted region as its caption says, with Stable Diffusion inpainting.

    Args:
        model: a :class:`DiffusionEditor` of kind "inpaint".
        name: the model name results report.

    Raises:
        ValueError: ``model`` is not an inpainting pipeline.
    """

    operation = "inpaint"

    def __init__(self, model: DiffusionEditor, name: str = "sd-inpainting") -> None:
        if model.kind != "inpaint":
            raise ValueError(f"{name}: needs an inpainting pipeline, got kind {model.kind!r}")
        self.model, self.name = model, name

    @property
    def device(self) -> str:
        """Where the model runs: "cpu float32" or "cuda:0 float16" (engine.device)."""
        return Placement(self.model.device, self.model.dtype).label()

    def estimate(self, size: tuple[int, int], steps: int) -> Estimate | None:
        """Expected duration of an edit of a (W, H) ``size`` image with ``steps`` steps on this
        model's device (:data:`engine.latency.CLOCK`), or None when nothing is known."""
        return estimate(self.model, size, steps)

    def edit(self, image: Image.Image, text: str, mask: np.ndarray | None, *, seed: int = 0,
             steps: int = 20, guidance_scale: float = 7.5, image_guidance_scale: float = 1.5,
             progress: Progress | None = None) -> EditOutput:
        """Edit as :meth:`engine.editing.editor.Editor.edit` describes (``image_guidance_scale``
        is InstructPix2Pix's and has no effect here).

        Raises:
            UserInputError: no painted mask (inpainting fills a region), steps or guidance out
                of range.
        """
        if mask is None:
            raise UserInputError(f"{self.name} fills a painted region: paint a mask (caption + "
                                 "mask mode), or choose an instruction model")
        check_sampling(steps, guidance_scale, image_guidance_scale)
        region = np.asarray(mask, bool)
        edited = run_diffusion(self.model, image, text, seed=seed, steps=steps,
                               guidance_scale=guidance_scale, progress=progress, mask=region,
                               strength=1.0)
        return EditOutput(edited, region, self.operation, PAINTED_REGION)
