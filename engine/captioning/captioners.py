"""Hub captioners: a learned model that writes the caption (BLIP), with its preprocessing.

:class:`HubCaptioner` is the component :class:`~engine.captioning.pipeline.CaptionPipeline`
and the change room's caption namer use; it is the one place BLIP's decoding is serialised.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from PIL import Image

from engine.device import module_placement
from engine.errors import UserInputError

if TYPE_CHECKING:
    from engine.models.blip import BlipCaptioner
    from engine.models.preprocess import Preprocess

#: Decoding strategies a captioner accepts: beam search or nucleus (top-p) sampling.
DECODINGS = ("beam", "nucleus")


def check_decoding(decoding: str) -> str:
    """Return ``decoding`` if it is one of :data:`DECODINGS`.

    Raises:
        UserInputError: it is not (the message quotes it).
    """
    if decoding not in DECODINGS:
        raise UserInputError(f"decoding must be 'beam' or 'nucleus', got {decoding!r}")
    return decoding


class HubCaptioner:
    """Captions images with a :class:`~engine.models.blip.BlipCaptioner` (Li et al., "BLIP",
    ICML 2022).

    The model seeds torch's process-wide random generator for nucleus sampling (transformers'
    ``generate`` takes no generator), so every call of every ``HubCaptioner`` holds one lock
    shared by the class: two requests (or the caption and change pipelines, which share the
    model instance) never sample at the same time and a seed always gives the same caption.

    Args:
        model: the captioning model; ``generate(pixels, decoding, seed) -> list[str]``.
        preprocess: its preprocessing (the whole image resized to ``size`` x ``size``).
    """

    _sampling = threading.Lock()  # one per process: torch's global RNG is one per process

    def __init__(self, model: BlipCaptioner, preprocess: Preprocess) -> None:
        self.model, self.preprocess = model, preprocess

    @property
    def device(self) -> str:
        """Where the model answers: "cpu float32" or "cuda:0 float16" (engine.device)."""
        return module_placement(self.model).label()

    def caption(self, images: list[Image.Image], decoding: str = "beam", seed: int = 0
                ) -> list[str]:
        """Caption each image.

        Args:
            images: N RGB images of any size (each resized whole, no crop).
            decoding: "beam" (3 beams) or "nucleus" (top-p 0.9 sampling).
            seed: seed of nucleus sampling (same seed and image, same caption).

        Returns:
            N captions, lower case.

        Raises:
            UserInputError: unknown ``decoding``.
        """
        check_decoding(decoding)
        pixels = self.preprocess(images, crop=False)  # (N, 3, size, size)
        with self._sampling:
            return self.model.generate(pixels, decoding=decoding, seed=seed)
