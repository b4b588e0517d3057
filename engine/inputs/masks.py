"""Masks painted in the browser: the union of an image editor's layers.

Gradio's image editor sends each painted layer as an RGBA image; each goes through
:func:`engine.inputs.images.load_mask` (decoded and checked like any upload, resized nearest to
the image). A pixel is painted when its alpha is at least
:data:`engine.inputs.images.PAINT_MIN_ALPHA` (1): any visible paint counts, so a
semi-transparent brush (40 % opacity is alpha about 100) or a stroke's soft edge is painted. A
pixel painted on any layer is selected.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from engine.inputs.images import ImageInputError, ImageSource, load_mask


def painted_mask(layers: Sequence[ImageSource | None], size: tuple[int, int],
                 what: str = "painted layer") -> np.ndarray:
    """Union of painted layers, fitted to an image of ``size``.

    Args:
        layers: the editor's layers (file paths, bytes, images or arrays; None entries skipped).
        size: (width, height) in pixels of the image the layers belong to.
        what: how to name a layer in messages ("painted layer", "support 2 mask layer").

    Returns:
        (H, W) bool array, possibly all False (nothing painted); the caller decides whether
        an empty mask is an error.

    Raises:
        ImageInputError: a layer that does not decode; the message names it (``what k``).
    """
    mask = np.zeros((size[1], size[0]), bool)
    for k, layer in enumerate((x for x in layers if x is not None), start=1):
        mask |= load_mask(layer, size=size, name=f"{what} {k}", allow_empty=True)
    return mask


__all__ = ["ImageInputError", "painted_mask"]
