"""The one interface every editor exposes to :class:`engine.editing.pipeline.EditPipeline`.

An editor decides *what* the new pixels are and *where* they may go; the pipeline does the rest
(input checks, pasting back so pixels outside the region keep their bytes, the "would change no
pixel" refusal, changed fractions, heatmap, timing). Three editors implement it:

* :class:`engine.editing.offline.OfflineEditor`: instruction parsing, localisation, one pixel
  operation (works offline);
* :class:`engine.editing.diffusion.InstructPix2PixEditor` and
  :class:`engine.editing.diffusion.InpaintingEditor`: hub diffusion models.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
from PIL import Image

#: ``progress(step, steps)``: called after each denoising step (1-based step).
Progress = Callable[[int, int], None]


@dataclass
class EditOutput:
    """What an editor returns, before the pipeline pastes it back.

    Attributes:
        edited: (H, W, 3) uint8 edited pixels at the input's size; only those inside
            ``region`` are kept.
        region: (H, W) bool, the pixels the edit may change.
        operation: what was done ("recolour", "remove", ..., "instruct-pix2pix", "inpaint").
        target: what was edited ("cat", "the background", "the painted region", ...).
        notes: remarks for the user (which classes matched, how confident, ...).
    """

    edited: np.ndarray
    region: np.ndarray
    operation: str
    target: str
    notes: list[str] = field(default_factory=list)


class Editor(Protocol):
    """An editing component: ``name`` (its model name) and one :meth:`edit` method."""

    name: str

    def edit(self, image: Image.Image, text: str, mask: np.ndarray | None, *, seed: int,
             steps: int, guidance_scale: float, image_guidance_scale: float,
             progress: Progress | None) -> EditOutput:
        """Edit ``image`` as ``text`` says.

        Args:
            image: RGB image (W x H), already checked by the pipeline.
            text: the instruction, or the caption of the painted region (non-empty, cleaned).
            mask: (H, W) bool painted region (non-empty), or None.
            seed: seed of any randomness (sampling noise, removal grain).
            steps: denoising steps (diffusion editors only).
            guidance_scale: classifier-free text guidance (diffusion editors only).
            image_guidance_scale: InstructPix2Pix's image guidance.
            progress: called with (step, steps) during denoising (diffusion editors only).

        Returns:
            :class:`EditOutput` at the input's size.

        Raises:
            engine.errors.UserInputError: text this editor cannot carry out, a target it cannot
                find, a missing mask it needs, options out of range.
        """
        ...
