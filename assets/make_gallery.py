"""Write the default retrieval gallery (assets/galleries/default/) from freely licensed images on
this machine, deterministically, with each image's provenance in SOURCES.csv.

    apt-get install openclipart-png      # public-domain clip art (needed by this script only)
    python assets/make_gallery.py        # writes assets/galleries/default/*.jpg + SOURCES.csv

Sources:
* Debian ``openclipart-png`` (/usr/share/openclipart/png): Open Clip Art Library drawings,
  Creative Commons Public Domain Dedication (/usr/share/doc/openclipart-png/copyright). A fixed,
  seeded sample of animals, vehicles, food, plants, objects, buildings; transparency composited
  onto white; duplicates (same pixels) dropped.
* Photos inside scikit-image, scikit-learn and matplotlib (licences as
  assets/examples/SOURCES.md and the scikit-image docstrings), each also written as a
  "black and white" (grayscale) and an "at night" (darkened, blue-tinted) variant, so queries
  such as "in black and white" have true answers in the gallery.

The app and the tests only read the written files; this script is not needed at run time.
"""
from __future__ import annotations

import csv
import hashlib
import os
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

OUT = Path(__file__).resolve().parent / "galleries" / "default"
CLIPART = Path("/usr/share/openclipart/png")
CLIPART_LICENCE = "Public Domain (Open Clip Art Library, CC PD Dedication; Debian openclipart-png)"
#: Long side (pixels) of every gallery image.
SIDE = 192
#: (folder under CLIPART, how many drawings to take, words a file name must not contain).
CLIPART_PICKS = [
    ("animals/mammals", 34, ()), ("animals/mammals/dogs", 8, ()),
    ("animals/mammals/housecats", 8, ()), ("animals/mammals/horses", 5, ()),
    ("animals/mammals/big_cats", 5, ()), ("animals/mammals/bears", 4, ()),
    ("animals/birds", 16, ()), ("animals/fish", 10, ()), ("animals/bugs", 10, ()),
    ("animals/dinosaurs", 5, ()),
    ("transportation/vehicles", 22, ("symbol", "sign")),
    ("transportation/boating", 6, ("rules",)),
    ("food/fruit", 18, ()), ("food/vegetables", 8, ()), ("food/desserts", 10, ()),
    ("food/beverages", 8, ()), ("food/breads_and_carbs", 6, ()),
    ("plants/flowers", 10, ()), ("plants/trees", 6, ()),
    ("electronics", 10, ()), ("tools", 10, ()), ("recreation/toys", 8, ()),
    ("recreation/music", 8, ()), ("recreation/sports", 6, ()), ("buildings/homes", 8, ()),
    ("containers", 6, ()), ("office/telephone", 4, ()),
]
#: (output stem, loader, package file, subject, licence).
PHOTOS = [
    ("cat", "skimage", "chelsea.png", "cat", "CC0 (skimage.data.chelsea)"),
    ("coffee", "skimage", "coffee.png", "coffee cup", "CC0 (skimage.data.coffee)"),
    ("astronaut", "skimage", "astronaut.png", "astronaut", "public domain, NASA"),
    ("rocket", "skimage", "rocket.jpg", "rocket", "public domain, SpaceX Photos"),
    ("grace_hopper", "matplotlib", "grace_hopper.jpg", "woman in uniform", "public domain, US Navy"),
    ("china_temple", "sklearn", "china.jpg", "temple", "CC BY 2.0, danielbuechele (Flickr)"),
    ("flower", "sklearn", "flower.jpg", "flower", "CC BY 2.0, vultilion (Flickr)"),
    ("hubble", "skimage", "hubble_deep_field.jpg", "galaxies", "public domain, NASA"),
    ("retina", "skimage", "retina.jpg", "retina", "CC0 (skimage.data.retina)"),
    ("ihc", "skimage", "ihc.png", "tissue", "no known copyright restrictions (skimage)"),
    ("camera", "skimage", "camera.png", "cameraman", "CC0, Lav Varshney (skimage.data.camera)"),
    ("coins", "skimage", "coins.png", "coins", "no known copyright restrictions (skimage)"),
]
#: Photos that also get "bw" and "night" variants (colour photos with a clear subject).
VARIANT_PHOTOS = ("cat", "coffee", "astronaut", "rocket", "grace_hopper", "china_temple", "flower")


def package_file(loader: str, name: str) -> Path:
    """Path of a sample file inside an installed package."""
    if loader == "skimage":
        import skimage
        return Path(os.path.dirname(skimage.__file__)) / "data" / name
    if loader == "sklearn":
        import sklearn
        return Path(os.path.dirname(sklearn.__file__)) / "datasets" / "images" / name
    import matplotlib
    return Path(matplotlib.get_data_path()) / "sample_data" / name


def on_white(img: Image.Image) -> Image.Image:
    """RGB copy with transparency composited onto white."""
    rgba = img.convert("RGBA")
    base = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(base, rgba).convert("RGB")


def shrink(img: Image.Image, side: int = SIDE) -> Image.Image:
    img = img.copy()
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    return img


def black_and_white(img: Image.Image) -> Image.Image:
    """Grayscale (ITU-R 601 luma), stored as RGB."""
    return ImageOps.grayscale(img).convert("RGB")


def night(img: Image.Image) -> Image.Image:
    """Darken to ~30 % (gamma 1.6) and tint blue: a simple day-for-night filter."""
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = 0.35 * x ** 1.6 * np.array([0.75, 0.85, 1.25], dtype=np.float32)
    return Image.fromarray((x.clip(0, 1) * 255).round().astype(np.uint8))


def clipart_files(folder: str, n: int, exclude: tuple[str, ...], rng: random.Random,
                  seen: set[str]) -> list[Path]:
    files = sorted(p for p in (CLIPART / folder).glob("*.png")
                   if not any(w in p.name.lower() for w in exclude))
    rng.shuffle(files)
    picked = []
    for p in files:
        if len(picked) == n:
            break
        try:
            img = Image.open(p)
            if min(img.size) < 32 or img.size[0] * img.size[1] > 20_000_000:
                continue  # too small, or a huge poster render (slow, bomb-sized)
            img.load()
        except OSError:
            continue
        digest = hashlib.sha256(np.asarray(shrink(on_white(img), 64)).tobytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        picked.append(p)
    return picked


def main() -> None:
    if not CLIPART.is_dir():
        raise SystemExit(f"{CLIPART} not found: apt-get install openclipart-png")
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.jpg"):
        old.unlink()
    rows = []
    rng, seen = random.Random(0), set()
    for folder, n, exclude in CLIPART_PICKS:
        for p in clipart_files(folder, n, exclude, rng, seen):
            stem = "clip_" + "_".join(folder.split("/")[-1:] + [p.stem])[:60]
            name = f"{stem}.jpg"
            shrink(on_white(Image.open(p))).save(OUT / name, quality=85)
            rows.append({"file": name, "subject": p.stem.replace("_", " "), "variant": "original",
                         "origin": f"openclipart-png:{p.relative_to(CLIPART)}",
                         "licence": CLIPART_LICENCE})
    for stem, loader, fname, subject, licence in PHOTOS:
        src = package_file(loader, fname)
        img = shrink(Image.open(src).convert("RGB"), 2 * SIDE // 1)
        variants = {"original": img}
        if stem in VARIANT_PHOTOS:
            variants.update(bw=black_and_white(img), night=night(img))
        for variant, v in variants.items():
            name = f"photo_{stem}.jpg" if variant == "original" else f"photo_{stem}_{variant}.jpg"
            shrink(v).save(OUT / name, quality=85)
            rows.append({"file": name, "subject": subject, "variant": variant,
                         "origin": f"{loader}:{fname}" + ("" if variant == "original"
                                                          else f" ({variant} variant)"),
                         "licence": licence})
    with open(OUT / "SOURCES.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "subject", "variant", "origin", "licence"])
        writer.writeheader()
        writer.writerows(rows)
    size = sum(f.stat().st_size for f in OUT.glob("*.jpg"))
    print(f"wrote {len(rows)} images ({size / 2**20:.1f} MB) to {OUT}")


if __name__ == "__main__":
    main()
