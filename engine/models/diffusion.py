"""Hub editors through diffusers: InstructPix2Pix (Brooks, Holynski & Efros, "InstructPix2Pix:
Learning to Follow Image Editing Instructions", CVPR 2023) and Stable Diffusion inpainting
(Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models", CVPR 2022).

The image is resized so its long side is ``work_side`` (512 for the SD-1.5-based weights) and
both sides are multiples of 8 (the VAE downsamples by 8), edited, resized back to the input's
size, and the caller pastes the result back only inside the region. One lock per model:
diffusers schedulers keep per-call state (timesteps) and are not thread-safe.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image


class DiffusionEditor:
    """A diffusers pipeline with its kind, working size and lock.

    Args:
        pipe: ``StableDiffusionInstructPix2PixPipeline`` or ``StableDiffusionInpaintPipeline``.
        kind: "instruct" or "inpaint".
        work_side: long side (pixels) the image is edited at.
    """

    def __init__(self, pipe: Any, kind: str, work_side: int = 512) -> None:
        if kind not in ("instruct", "inpaint"):
            raise ValueError(f"kind must be 'instruct' or 'inpaint', got {kind!r}")
        self.pipe, self.kind, self.work_side = pipe, kind, int(work_side)
        self.pipe.set_progress_bar_config(disable=True)
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, repo_id: str, kind: str, device: torch.device,
                        dtype: torch.dtype, **kwargs: Any) -> "DiffusionEditor":
        """Load a pipeline from the hub (or its cache); the safety checker is left out."""
        from diffusers import StableDiffusionInpaintPipeline, StableDiffusionInstructPix2PixPipeline
        cls_ = StableDiffusionInstructPix2PixPipeline if kind == "instruct" else \
            StableDiffusionInpaintPipeline
        pipe = cls_.from_pretrained(repo_id, torch_dtype=dtype, safety_checker=None,
                                    requires_safety_checker=False, **kwargs)
        return cls(pipe.to(device), kind)

    def to(self, device=None, dtype=None) -> "DiffusionEditor":
        self.pipe.to(device=device, dtype=dtype)
        return self


def work_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(W, H) scaled so the long side is ``side``, each a multiple of 8 and at least 8 * 2."""
    W, H = size
    scale = side / max(W, H)
    return (max(16, int(round(W * scale / 8)) * 8), max(16, int(round(H * scale / 8)) * 8))


def run_hub_edit(editor: DiffusionEditor, image: Image.Image, text: str,
                 mask: np.ndarray | None, *, seed: int = 0, steps: int = 20,
                 guidance_scale: float = 7.5, image_guidance_scale: float = 1.5,
                 progress: Callable[[int, int], None] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Edit with a diffusion pipeline.

    Args:
        editor: :class:`DiffusionEditor`.
        image: RGB image (W x H).
        text: the instruction (InstructPix2Pix) or the caption of the region (inpainting).
        mask: (H, W) bool region, required for inpainting; for InstructPix2Pix None means the
            whole image.
        seed: seed of the initial noise (a ``torch.Generator`` per call).
        steps: denoising steps, 1..100.
        guidance_scale: classifier-free text guidance (> 1 enables it).
        image_guidance_scale: InstructPix2Pix's image guidance (>= 1).
        progress: called with (step, steps) after each denoising step.

    Returns:
        (edited (H, W, 3) uint8 at the input's size, region (H, W) bool allowed to change).

    Raises:
        ValueError: steps or guidance out of range, inpainting without a mask.
    """
    if not 1 <= int(steps) <= 100:
        raise ValueError(f"steps must be in 1..100, got {steps}")
    if not 0.0 <= guidance_scale <= 30.0 or not 0.0 <= image_guidance_scale <= 10.0:
        raise ValueError(f"guidance scales out of range: {guidance_scale}, {image_guidance_scale}")
    W, H = image.size
    region = np.ones((H, W), bool) if mask is None else np.asarray(mask, bool)
    if editor.kind == "inpaint" and mask is None:
        raise ValueError("inpainting needs a painted region (mask)")
    ws = work_size((W, H), editor.work_side)
    work = image.resize(ws, Image.Resampling.BICUBIC)
    generator = torch.Generator("cpu").manual_seed(int(seed))

    def on_step(pipe, step, timestep, kwargs):
        if progress is not None:
            progress(step + 1, int(steps))
        return kwargs

    common = dict(prompt=text, image=work, num_inference_steps=int(steps),
                  guidance_scale=float(guidance_scale), generator=generator, output_type="np",
                  callback_on_step_end=on_step)
    with editor._lock, torch.no_grad():
        if editor.kind == "instruct":
            out = editor.pipe(image_guidance_scale=float(image_guidance_scale), **common)
        else:
            mask_img = Image.fromarray(region.astype(np.uint8) * 255).resize(
                ws, Image.Resampling.NEAREST)
            out = editor.pipe(mask_image=mask_img, height=ws[1], width=ws[0], strength=1.0,
                              **common)
    arr = np.nan_to_num(np.asarray(out.images[0], np.float32))  # (h, w, 3) in [0, 1]
    edited = Image.fromarray((arr.clip(0, 1) * 255).round().astype(np.uint8)).resize(
        (W, H), Image.Resampling.BICUBIC)
    return np.asarray(edited, np.uint8), region
