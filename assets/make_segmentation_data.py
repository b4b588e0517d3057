"""Write the few-shot segmentation evaluation set and the bundled segmentation example, with
exactly known masks: transparent public-domain clip art pasted onto CC0 / CC BY photos.

    apt-get install openclipart-png         # needed by this script only
    python assets/make_segmentation_data.py
    python assets/make_segmentation_data.py --layer-only   # support_layer.png only (no clipart)

Writes (deterministic, seed 0):
* ``assets/segmentation/eval/<class>/<name>.jpg`` + ``<name>_mask.png`` (224 x 224): 6 classes
  (cat, horse, bird, fish, vehicle, fruit) x 6 different drawings from Debian's
  ``openclipart-png`` (Public Domain), each pasted at a random scale (35-65 % of the side),
  position and mirror onto a random 224 px crop of a background photo; the mask is the
  drawing's opaque pixels (alpha >= 128). Provenance per file in ``SOURCES.csv`` there.
* ``assets/examples/segment/``: one horse drawing pasted on two different random crops of one
  photo at two scales (support + its mask, query + its true mask): the "same object, another
  place in a similar scene" case; ``support_layer.png`` is the support mask as the editor's
  painted layer (RGBA, red at alpha 160 on the object, transparent elsewhere), which the tab's
  "Load the example" button hands to the editor as it is (a read-only file, no temp file).
"""
from __future__ import annotations

import csv
import os
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent
CLIPART = Path("/usr/share/openclipart/png")
OUT = ROOT / "segmentation" / "eval"
EXAMPLE = ROOT / "examples" / "segment"
SIDE = 224
CLASSES = {"cat": "animals/mammals/housecats", "horse": "animals/mammals/horses",
           "bird": "animals/birds", "fish": "animals/fish",
           "vehicle": "transportation/vehicles", "fruit": "food/fruit"}
PER_CLASS = 6
#: (package, file, licence) of background photos.
BACKGROUNDS = [("skimage", "brick.png", "CC0 (CC0Textures, skimage.data.brick)"),
               ("skimage", "grass.png", "CC0 (skimage.data.grass)"),
               ("skimage", "gravel.png", "CC0 (CC0Textures, skimage.data.gravel)"),
               ("skimage", "coffee.png", "CC0 (skimage.data.coffee)"),
               ("skimage", "hubble_deep_field.jpg", "public domain, NASA"),
               ("sklearn", "china.jpg", "CC BY 2.0, danielbuechele (Flickr)"),
               ("sklearn", "flower.jpg", "CC BY 2.0, vultilion (Flickr)")]
CLIPART_LICENCE = "Public Domain (Open Clip Art Library; Debian openclipart-png)"


def package_file(loader: str, name: str) -> Path:
    if loader == "skimage":
        import skimage
        return Path(os.path.dirname(skimage.__file__)) / "data" / name
    import sklearn
    return Path(os.path.dirname(sklearn.__file__)) / "datasets" / "images" / name


def drawings(folder: str) -> list[Path]:
    """Drawings with a usable alpha mask (10-85 % opaque), in name order."""
    out = []
    for p in sorted((CLIPART / folder).glob("*.png")):
        img = Image.open(p)
        if img.size[0] * img.size[1] > 20_000_000 or min(img.size) < 32:
            continue
        rgba = img.convert("RGBA")
        rgba.thumbnail((128, 128))
        if 0.10 < (np.asarray(rgba)[..., 3] >= 128).mean() < 0.85:
            out.append(p)
    return out


def background(rng: random.Random, photos: list[Image.Image]) -> tuple[int, Image.Image]:
    k = rng.randrange(len(photos))
    photo = photos[k]
    scale = rng.uniform(SIDE / min(photo.size), 1.0)
    w, h = max(SIDE, round(photo.width * scale)), max(SIDE, round(photo.height * scale))
    photo = photo.resize((w, h), Image.Resampling.BICUBIC)
    x, y = rng.randrange(w - SIDE + 1), rng.randrange(h - SIDE + 1)
    return k, photo.crop((x, y, x + SIDE, y + SIDE))


def paste(bg: Image.Image, drawing: Path, rng: random.Random, scale: float | None = None
          ) -> tuple[Image.Image, np.ndarray]:
    """Paste the drawing onto ``bg``; returns (RGB image, (SIDE, SIDE) bool mask)."""
    obj = Image.open(drawing).convert("RGBA")
    obj = ImageOps.mirror(obj) if rng.random() < 0.5 else obj
    obj.thumbnail((round(SIDE * (scale or rng.uniform(0.35, 0.65))),) * 2,
                  Image.Resampling.LANCZOS)
    x, y = rng.randrange(SIDE - obj.width + 1), rng.randrange(SIDE - obj.height + 1)
    alpha = (np.asarray(obj)[..., 3] >= 128)
    obj.putalpha(Image.fromarray(alpha.astype(np.uint8) * 255))
    out = bg.convert("RGBA")
    out.alpha_composite(obj, (x, y))
    mask = np.zeros((SIDE, SIDE), bool)
    mask[y:y + obj.height, x:x + obj.width] = alpha
    return out.convert("RGB"), mask


def save(img: Image.Image, mask: np.ndarray, folder: Path, stem: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    img.save(folder / f"{stem}.jpg", quality=90)
    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / f"{stem}_mask.png")


def write_example_layer() -> Path:
    """Write ``support_layer.png`` from ``support_mask.png``: the mask as a painted layer.

    Painted pixels are red at alpha 160: opaque enough for ``engine.inputs.images.load_mask``
    (alpha >= 128 is painted), translucent enough for the horse to show through in the editor.
    """
    mask = np.asarray(Image.open(EXAMPLE / "support_mask.png").convert("L")) >= 128  # (H, W)
    layer = np.zeros(mask.shape + (4,), np.uint8)  # (H, W, 4) RGBA, transparent
    layer[mask] = (255, 0, 0, 160)
    path = EXAMPLE / "support_layer.png"
    Image.fromarray(layer, "RGBA").save(path, optimize=True)
    return path


def main() -> None:
    if "--layer-only" in sys.argv[1:]:
        print(f"wrote {write_example_layer()}")
        return
    if not CLIPART.is_dir():
        raise SystemExit(f"{CLIPART} not found: apt-get install openclipart-png")
    rng = random.Random(0)
    photos = [Image.open(package_file(l, f)).convert("RGB") for l, f, _ in BACKGROUNDS]
    rows = []
    for cls, folder in CLASSES.items():
        files = drawings(folder)
        rng.shuffle(files)
        for i, p in enumerate(files[:PER_CLASS]):
            k, bg = background(rng, photos)
            img, mask = paste(bg, p, rng)
            stem = f"{cls}_{i + 1}"
            save(img, mask, OUT / cls, stem)
            rows.append({"file": f"{cls}/{stem}.jpg", "object": f"openclipart-png:"
                         f"{p.relative_to(CLIPART)}", "object_licence": CLIPART_LICENCE,
                         "background": f"{BACKGROUNDS[k][0]}:{BACKGROUNDS[k][1]}",
                         "background_licence": BACKGROUNDS[k][2]})
    with open(OUT / "SOURCES.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    horse = CLIPART / "animals/mammals/horses/cavallo_architetto_franc_02.png"
    erng = random.Random(1)
    for stem, bg_k, scale in (("support", 5, 0.6), ("query", 5, 0.6)):
        _, bg = background(erng, [photos[bg_k]])
        img, mask = paste(bg, horse, erng, scale)
        save(img, mask, EXAMPLE, stem)
    write_example_layer()
    (EXAMPLE / "SOURCES.md").write_text(
        "# Segmentation example\n\nWritten by `python assets/make_segmentation_data.py`.\n\n"
        f"- object: openclipart-png `{horse.relative_to(CLIPART)}`, {CLIPART_LICENCE}\n"
        f"- backgrounds: two random crops of scikit-learn `china.jpg`, {BACKGROUNDS[5][2]}\n"
        "- masks (`*_mask.png`, white = object) are the drawing's opaque pixels, exact.\n"
        "- `support_layer.png`: `support_mask.png` as the editor's painted layer (red, alpha "
        "160), loaded by the tab's \"Load the example\" button.\n")
    print(f"wrote {len(rows)} evaluation pairs to {OUT} and the example to {EXAMPLE}")


if __name__ == "__main__":
    main()
