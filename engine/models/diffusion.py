"""Diffusers pipelines of the hub editors, loaded once: InstructPix2Pix (Brooks, Holynski & Efros,
CVPR 2023) and Stable Diffusion inpainting (Rombach et al., CVPR 2022).

This module only builds and holds the pipelines; how an image is edited with them (working
size, seeding, paste-back) is the editing room's :mod:`engine.editing.diffusion`.
"""
from __future__ import annotations

import threading
from typing import Any

import torch

#: Kinds of diffusion editor: InstructPix2Pix ("instruct") or inpainting ("inpaint").
KINDS = ("instruct", "inpaint")
#: Long side (pixels) images are edited at on a GPU: the SD-1.5 weights' training side.
GPU_WORK_SIDE = 512
#: ... and on a CPU, where 512 px costs about 4x as much per step (docs/deployment.md,
#: "Waiting times"): smaller, so a default edit finishes in about 30 s.
CPU_WORK_SIDE = 256


def work_side_for(device: torch.device) -> int:
    """The working side of the diffusion editors on ``device``."""
    return GPU_WORK_SIDE if torch.device(device).type == "cuda" else CPU_WORK_SIDE


class DiffusionEditor:
    """A diffusers pipeline with its kind, working size and lock.

    Args:
        pipe: ``StableDiffusionInstructPix2PixPipeline`` or ``StableDiffusionInpaintPipeline``.
        kind: "instruct" or "inpaint".
        work_side: long side (pixels) the image is edited at (512 for SD-1.5 weights).

    Attributes:
        lock: held during a call; diffusers schedulers keep per-call state (timesteps) and are
            not thread-safe, so one model runs one request at a time.

    Raises:
        ValueError: unknown ``kind``.
    """

    def __init__(self, pipe: Any, kind: str, work_side: int = 512) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be 'instruct' or 'inpaint', got {kind!r}")
        self.pipe, self.kind, self.work_side = pipe, kind, int(work_side)
        self.pipe.set_progress_bar_config(disable=True)
        self.lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, repo_id: str, kind: str, device: torch.device,
                        dtype: torch.dtype, **kwargs: Any) -> "DiffusionEditor":
        """Load a pipeline from the hub (or its cache) onto ``device`` in ``dtype``, once; the
        safety checker is left out; the working side is :func:`work_side_for` the device."""
        from diffusers import StableDiffusionInpaintPipeline, StableDiffusionInstructPix2PixPipeline
        cls_ = StableDiffusionInstructPix2PixPipeline if kind == "instruct" else \
            StableDiffusionInpaintPipeline
        pipe = cls_.from_pretrained(repo_id, torch_dtype=dtype, safety_checker=None,
                                    requires_safety_checker=False, **kwargs)
        return cls(pipe.to(device), kind, work_side=work_side_for(device))

    @property
    def device(self) -> torch.device:
        """Where the pipeline's weights are (diffusers' ``pipe.device``)."""
        return torch.device(self.pipe.device)

    @property
    def dtype(self) -> torch.dtype:
        """The UNet's dtype (float16 on a GPU, float32 on the CPU; see engine.device)."""
        return self.pipe.unet.dtype

    def to(self, device=None, dtype=None) -> "DiffusionEditor":
        """Move the pipeline's weights (in place); returns self."""
        self.pipe.to(device=device, dtype=dtype)
        return self
