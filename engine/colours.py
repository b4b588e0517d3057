"""Named colours for sentences ("changed from orange to blue") and for edits ("make it red").

Names and sRGB values follow the basic colour terms of Berlin & Kay (1969) plus a few common
ones; naming a colour uses HSV hue bins (:func:`colour_name`).
"""
from __future__ import annotations

import numpy as np

#: name -> sRGB (0..255). Aliases map to the same value.
NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 30), "orange": (240, 140, 20), "yellow": (240, 220, 40),
    "green": (40, 160, 50), "blue": (30, 80, 210), "purple": (120, 50, 170),
    "pink": (240, 120, 180), "brown": (120, 70, 30), "black": (15, 15, 15),
    "white": (245, 245, 245), "gray": (128, 128, 128), "grey": (128, 128, 128),
    "cyan": (0, 190, 210), "teal": (0, 128, 128), "magenta": (210, 0, 160),
    "violet": (140, 80, 200), "gold": (212, 175, 55), "silver": (192, 192, 192),
    "turquoise": (64, 210, 200), "navy": (20, 30, 110), "beige": (225, 205, 165),
}


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in [0, 1] -> (..., 3) CIELAB (D65) float32."""
    from skimage.color import rgb2lab
    arr = np.asarray(rgb, dtype=np.float64)
    return rgb2lab(arr.reshape(-1, 1, 3)).reshape(arr.shape).astype(np.float32)


#: HSV hue bins (degrees, upper bounds) -> basic colour name.
_HUE_BINS = ((15, "red"), (45, "orange"), (70, "yellow"), (165, "green"), (195, "cyan"),
             (255, "blue"), (290, "purple"), (345, "pink"), (360, "red"))


def colour_name(rgb: np.ndarray | tuple[float, float, float]) -> str:
    """The basic colour name of one sRGB colour in [0, 1].

    Achromatic colours (HSV saturation below 0.2, or value below 0.15) are named by lightness
    (black / gray / white); others by HSV hue bins (:data:`_HUE_BINS`), dark oranges and
    yellows being "brown".
    """
    import colorsys
    r, g, b = (float(np.clip(v, 0, 1)) for v in np.asarray(rgb, np.float64).reshape(3))
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    if v < 0.15:
        return "black"
    if s < 0.2:
        return "white" if v > 0.85 else ("gray" if v > 0.25 else "black")
    hue = h * 360.0
    name = next(n for bound, n in _HUE_BINS if hue < bound)
    if name in ("orange", "yellow") and v < 0.55:
        return "brown"
    return name


def dominant_colour(pixels: np.ndarray) -> np.ndarray:
    """Representative sRGB colour of (N, 3) pixels in [0, 1]: the median of the more
    chromatic half (so a grey background does not wash out a coloured object)."""
    pixels = np.asarray(pixels, np.float32).reshape(-1, 3)
    if len(pixels) == 0:
        raise ValueError("no pixels to take a colour from")
    chroma = pixels.max(1) - pixels.min(1)
    keep = pixels[chroma >= np.median(chroma)]
    return np.median(keep, axis=0)
