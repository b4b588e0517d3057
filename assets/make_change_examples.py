"""Write the bundled before/after pairs of the "Describe the changes" tab from the bundled photos.

    python assets/make_change_examples.py     # writes assets/examples/changes/*.jpg (deterministic)

Every pair has exactly one known change (or none), made with plain image operations on the
photos of ``assets/examples`` (themselves from scikit-image / scikit-learn / matplotlib, see
``assets/examples/SOURCES.md``). How each pair was made and the expected answer:
``assets/examples/changes/SOURCES.md``; the list is :data:`PAIRS` (the tests read it too).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SRC = Path(__file__).resolve().parent / "examples"
OUT = SRC / "changes"

#: name -> expected change type ("none" = no change); the tests assert the pipeline agrees.
PAIRS = {
    "added_flower": "added",
    "removed_shuttle": "removed",
    "recoloured_dahlia": "recoloured",
    "moved_cup": "moved",
    "replaced_cup": "replaced",
    "added_flower_shifted": "added",
    "nochange_cat_shift": "none",
    "nochange_temple_shift": "none",
    "nochange_coffee_rotated": "none",
}


def _open(name: str) -> Image.Image:
    return Image.open(SRC / name).convert("RGB")


def _cutout(img: Image.Image, center: tuple[int, int], radius: int, out_radius: int
            ) -> tuple[Image.Image, Image.Image]:
    """A round cut-out (RGB, soft-edged alpha mask L) of ``img``, rescaled to ``out_radius``."""
    cx, cy = center
    patch = img.crop((cx - radius, cy - radius, cx + radius, cy + radius))
    size = 2 * out_radius
    patch = patch.resize((size, size), Image.Resampling.LANCZOS)
    alpha = Image.new("L", (size, size), 0)
    ImageDraw.Draw(alpha).ellipse((3, 3, size - 4, size - 4), fill=255)
    return patch, alpha.filter(ImageFilter.GaussianBlur(2))


def _paste(base: Image.Image, cut: tuple[Image.Image, Image.Image], center: tuple[int, int]
           ) -> Image.Image:
    out = base.copy()
    patch, alpha = cut
    out.paste(patch, (center[0] - patch.width // 2, center[1] - patch.height // 2), alpha)
    return out


def _inpaint(img: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """Remove what is inside ``box`` by biharmonic inpainting (scikit-image)."""
    from skimage.restoration import inpaint_biharmonic
    arr = np.asarray(img, dtype=np.float64) / 255.0
    mask = np.zeros(arr.shape[:2], bool)
    mask[box[1]:box[3], box[0]:box[2]] = True
    filled = inpaint_biharmonic(arr, mask, channel_axis=-1)
    return Image.fromarray((filled * 255).round().clip(0, 255).astype(np.uint8))


def _recolour_dahlia(img: Image.Image) -> Image.Image:
    """Turn the orange dahlia blue: rotate the hue of its saturated orange pixels by 180 deg."""
    hsv = np.asarray(img.convert("HSV")).copy()
    h, w = hsv.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    inside = (xx - 304) ** 2 + (yy - 224) ** 2 < 150 ** 2
    hue = hsv[..., 0].astype(int)
    orange = inside & (hue < 40) & (hsv[..., 1] > 80)
    hsv[..., 0] = np.where(orange, (hue + 128) % 256, hue).astype(np.uint8)
    return Image.fromarray(hsv, "HSV").convert("RGB")


def _shifted(img: Image.Image, shift: tuple[int, int], gain: float, offset: float
             ) -> tuple[Image.Image, Image.Image]:
    """Two crops of one photo ``shift`` (dx, dy) pixels apart, the second re-lit (gain, offset)."""
    dx, dy = shift
    w, h = img.size
    before = img.crop((0, 0, w - dx, h - dy))
    after = img.crop((dx, dy, w, h))
    arr = np.asarray(after, dtype=np.float32) * gain + offset
    return before, Image.fromarray(arr.round().clip(0, 255).astype(np.uint8))


def _rotated(img: Image.Image, degrees: float, gain: float, offset: float
             ) -> tuple[Image.Image, Image.Image]:
    """Two views of one photo: the second turned by ``degrees`` about a point off the centre,
    shifted a few pixels and re-lit (gain, offset); both cropped 20 px inside the border."""
    w, h = img.size
    before = img.crop((20, 20, w - 20, h - 20))
    turned = img.rotate(degrees, resample=Image.Resampling.BICUBIC, center=(w / 2 + 10, h / 2))
    after = turned.crop((24, 18, w - 16, h - 22))
    arr = np.asarray(after, dtype=np.float32) * gain + offset
    return before, Image.fromarray(arr.round().clip(0, 255).astype(np.uint8))


def _shifted_pair(before: Image.Image, after: Image.Image, shift: tuple[int, int], gain: float,
                  offset: float) -> tuple[Image.Image, Image.Image]:
    """A changed pair seen through a camera shift and a lighting change as well."""
    b, _ = _shifted(before, shift, 1.0, 0.0)
    _, a = _shifted(after, shift, gain, offset)
    return b, a


def make_pairs() -> dict[str, tuple[Image.Image, Image.Image]]:
    """All pairs, name -> (before, after)."""
    flower, coffee = _open("flower.jpg"), _open("coffee.jpg")
    astronaut, rocket = _open("astronaut.jpg"), _open("rocket.jpg")
    temple, cat = _open("china_temple.jpg"), _open("cat.jpg")
    dahlia = _cutout(flower, (304, 224), 140, 55)
    cup = _cutout(coffee, (290, 140), 125, 42)
    pairs = {
        "added_flower": (rocket, _paste(rocket, dahlia, (150, 120))),
        "removed_shuttle": (astronaut, _inpaint(astronaut, (340, 0, 472, 272))),
        "recoloured_dahlia": (flower, _recolour_dahlia(flower)),
        "moved_cup": (_paste(temple, cup, (80, 50)), _paste(temple, cup, (560, 48))),
        "replaced_cup": (_paste(temple, cup, (560, 48)),
                         _paste(temple, _cutout(flower, (304, 224), 140, 50), (560, 48))),
        "added_flower_shifted": _shifted_pair(rocket, _paste(rocket, dahlia, (470, 300)),
                                              (6, 4), 0.85, 5.0),
        "nochange_cat_shift": _shifted(cat, (7, 5), 1.18, 6.0),
        "nochange_temple_shift": _shifted(temple, (4, 3), 0.82, -4.0),
        "nochange_coffee_rotated": _rotated(coffee, 1.5, 1.1, 0.0),
    }
    assert set(pairs) == set(PAIRS)
    return pairs


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (before, after) in make_pairs().items():
        before.save(OUT / f"{name}_before.jpg", quality=92)
        after.save(OUT / f"{name}_after.jpg", quality=92)
        print(f"{name}: {before.size} -> {after.size} ({PAIRS[name]})")


if __name__ == "__main__":
    main()
