"""Named colours for sentences ("changed from orange to blue") and for edits ("make it red").

Names and sRGB values follow the basic colour terms of Berlin & Kay (1969) plus a few common
ones; naming picks the nearest name in CIELAB (ΔE 1976).
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
#: Names used when *describing* a colour (no aliases, no rare names).
_DESCRIBE = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black",
             "white", "gray", "cyan")


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in [0, 1] -> (..., 3) CIELAB (D65) float32."""
    from skimage.color import rgb2lab
    arr = np.asarray(rgb, dtype=np.float64)
    return rgb2lab(arr.reshape(-1, 1, 3)).reshape(arr.shape).astype(np.float32)


def colour_name(rgb: np.ndarray | tuple[float, float, float]) -> str:
    """The basic colour name of one sRGB colour in [0, 1].

    Achromatic colours (CIELAB chroma below 15) are named by lightness (black / gray / white);
    others by the nearest hue angle among the named colours, dark oranges being "brown".
    """
    L, a, b = rgb_to_lab(np.asarray(rgb, np.float64).reshape(1, 3))[0]
    chroma = float(np.hypot(a, b))
    if chroma < 15:
        return "black" if L < 25 else ("white" if L > 85 else "gray")
    hue = np.degrees(np.arctan2(b, a)) % 360
    best, best_d = "red", 1e9
    for name in ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"):
        rL, ra, rb = rgb_to_lab(np.array(NAMED_COLOURS[name], np.float64).reshape(1, 3) / 255.0)[0]
        d = abs((np.degrees(np.arctan2(rb, ra)) % 360 - hue + 180) % 360 - 180)
        if name == "pink":
            d += 0 if L > 60 else 30  # pink is a light red / magenta
        if d < best_d:
            best, best_d = name, d
    if best in ("orange", "red", "yellow") and L < 45:
        return "brown" if best != "red" else "dark red"
    return best


def dominant_colour(pixels: np.ndarray) -> np.ndarray:
    """Representative sRGB colour of (N, 3) pixels in [0, 1]: the median of the more
    chromatic half (so a grey background does not wash out a coloured object)."""
    pixels = np.asarray(pixels, np.float32).reshape(-1, 3)
    if len(pixels) == 0:
        raise ValueError("no pixels to take a colour from")
    chroma = pixels.max(1) - pixels.min(1)
    keep = pixels[chroma >= np.median(chroma)]
    return np.median(keep, axis=0)
