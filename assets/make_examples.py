"""Write the bundled example photos from freely licensed images that ship inside installed
packages (scikit-image, scikit-learn, matplotlib), so nothing is downloaded.

    python assets/make_examples.py        # writes assets/examples/*.jpg (deterministic)

Provenance and licences: assets/examples/SOURCES.md.
"""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageOps

OUT = Path(__file__).resolve().parent / "examples"


def _skimage(name: str) -> Image.Image:
    import skimage
    return Image.open(Path(os.path.dirname(skimage.__file__)) / "data" / name).convert("RGB")


def _sklearn(name: str) -> Image.Image:
    import sklearn
    return Image.open(Path(os.path.dirname(sklearn.__file__)) / "datasets" / "images" / name
                      ).convert("RGB")


def _matplotlib(name: str) -> Image.Image:
    import matplotlib
    return Image.open(Path(matplotlib.get_data_path()) / "sample_data" / name).convert("RGB")


def crop(img: Image.Image, box: tuple[float, float, float, float], flip: bool = False,
         size: int = 320) -> Image.Image:
    """Crop a fractional box (x0, y0, x1, y1 in [0, 1]) and resize its long side to ``size``."""
    w, h = img.size
    out = img.crop((round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))
    out = ImageOps.mirror(out) if flip else out
    out.thumbnail((size, size), Image.Resampling.LANCZOS)
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cat, coffee = _skimage("chelsea.png"), _skimage("coffee.png")
    photos = {
        "cat.jpg": cat,
        "coffee.jpg": coffee,
        "astronaut.jpg": _skimage("astronaut.png"),
        "rocket.jpg": _skimage("rocket.jpg"),
        "grace_hopper.jpg": _matplotlib("grace_hopper.jpg"),
        "china_temple.jpg": _sklearn("china.jpg"),
        "flower.jpg": _sklearn("flower.jpg"),
    }
    for name, img in photos.items():
        img = img.copy()
        img.thumbnail((640, 640), Image.Resampling.LANCZOS)
        img.save(OUT / name, quality=90)
    # few-shot support/query views: different crops (and mirror images) of the two photos
    fewshot = OUT / "fewshot"
    views = {
        "support/cat/cat_1.jpg": (cat, (0.0, 0.0, 0.75, 1.0), False),
        "support/cat/cat_2.jpg": (cat, (0.2, 0.0, 1.0, 0.9), True),
        "support/cat/cat_3.jpg": (cat, (0.1, 0.1, 0.9, 1.0), False),
        "support/coffee/coffee_1.jpg": (coffee, (0.0, 0.0, 0.8, 1.0), False),
        "support/coffee/coffee_2.jpg": (coffee, (0.15, 0.05, 1.0, 1.0), True),
        "support/coffee/coffee_3.jpg": (coffee, (0.1, 0.15, 0.85, 0.95), False),
        "query/cat_query.jpg": (cat, (0.25, 0.15, 0.95, 0.95), True),
        "query/coffee_query.jpg": (coffee, (0.05, 0.1, 0.7, 0.9), True),
    }
    for name, (img, box, flip) in views.items():
        path = fewshot / name
        path.parent.mkdir(parents=True, exist_ok=True)
        crop(img, box, flip).save(path, quality=90)
    print(f"wrote {len(photos)} photos and {len(views)} few-shot views to {OUT}")


if __name__ == "__main__":
    main()
