"""Write the change-captioning evaluation set: before/after pairs with one known change each (or
none), made from OTHER photos and objects than the tab's bundled pairs.

    python assets/make_change_eval.py                      # writes assets/change_eval/ (seed 0)
    python assets/make_change_eval.py --split dev --out /tmp/change_dev   # calibration set

Two splits that share no photo and no object:

* ``eval`` (committed, ``assets/change_eval/``): backgrounds are textures and photos the bundled
  examples do not use (scikit-image's brick, grass and gravel textures, tinted; camera, ihc,
  retina, hubble_deep_field, motorcycle_left; matplotlib's grace_hopper); objects are the
  clip-art drawings 4-6 of each class of the segmentation evaluation set (cut out with their
  exact masks, ``assets/segmentation/eval``) and two photo cut-outs (a coin from scikit-image's
  coins, the motorcycle of motorcycle_right).
* ``dev`` (not committed; for choosing thresholds): the bundled example photos as backgrounds
  (astronaut, coffee, rocket, china_temple, cat, flower) and the clip-art drawings 1-3 plus the
  cup and the dahlia of the bundled pairs as objects.

Each split holds 48 pairs (320 x 240 JPEGs, quality 80): 8 added, 8 removed (an added pair
reversed), 10 moved (5 near: the two places overlap, as a car between two video frames; 5 far;
the background behind the object differs between its two places), 8 replaced (another class's
object, same size, same place), 6 recoloured (the object's hue turned by 90-270 degrees),
8 no change (a camera shift of 2-8 px or a 1-2 degree rotation, plus a gain/offset lighting
change, with or without a static object). Object sizes: long side 18-55 % of the image height.
The list with the expected type, the objects, places and sources is ``pairs.csv``; licences of
every source are in ``SOURCES.md`` there. Deterministic for a given seed and split.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent
SEG = ROOT / "segmentation" / "eval"
EXAMPLES = ROOT / "examples"
OUT = ROOT / "change_eval"
#: (width, height) of every pair.
SIZE = (320, 240)
#: expected type -> number of pairs per split.
COUNTS = {"added": 8, "removed": 8, "moved": 10, "replaced": 8, "recoloured": 6, "none": 8}
CLASSES = ("cat", "horse", "bird", "fish", "vehicle", "fruit")


def _package_file(loader: str, name: str) -> Path:
    if loader == "skimage":
        import skimage
        return Path(os.path.dirname(skimage.__file__)) / "data" / name
    if loader == "matplotlib":
        import matplotlib
        return Path(matplotlib.get_data_path()) / "sample_data" / name
    return EXAMPLES / name  # "examples": the bundled example photos


#: split -> [(loader, file, tint RGB or None)]; grey textures are tinted to give them colour.
BACKGROUNDS = {
    "eval": [("skimage", "brick.png", (1.0, 0.62, 0.5)), ("skimage", "grass.png", (0.55, 0.9, 0.45)),
             ("skimage", "gravel.png", None), ("skimage", "camera.png", None),
             ("skimage", "ihc.png", None), ("skimage", "retina.jpg", None),
             ("skimage", "hubble_deep_field.jpg", None), ("skimage", "motorcycle_left.png", None),
             ("matplotlib", "grace_hopper.jpg", None)],
    "dev": [("examples", n, None) for n in ("astronaut.jpg", "coffee.jpg", "rocket.jpg",
                                            "china_temple.jpg", "cat.jpg", "flower.jpg")],
}
#: split -> segmentation-eval drawing numbers used as objects.
DRAWINGS = {"eval": (4, 5, 6), "dev": (1, 2, 3)}
#: split -> photo cut-outs: (name, loader, file, box (x0, y0, x1, y1)), cut as the box's ellipse.
PHOTO_OBJECTS = {
    "eval": [("coin", "skimage", "coins.png", (188, 166, 239, 217)),
             ("motorcycle", "skimage", "motorcycle_right.png", (50, 95, 650, 455))],
    "dev": [("cup", "examples", "coffee.jpg", (165, 15, 415, 265)),
            ("dahlia", "examples", "flower.jpg", (164, 84, 444, 364))],
}
LICENCES = """# Change-captioning evaluation pairs: sources and licences

Written by `python assets/make_change_eval.py` (seed 0, split `eval`); `pairs.csv` lists every
pair with its expected change type, objects, places and background.

- Backgrounds: scikit-image `data/` brick.png, grass.png, gravel.png (CC0, CC0Textures /
  scikit-image), camera.png (CC0, scikit-image), ihc.png (public domain, Paul Hooper /
  scikit-image docstring), retina.jpg (CC BY 4.0, Hacks, Wikimedia Commons, per scikit-image's
  docstring), hubble_deep_field.jpg (public domain, NASA), motorcycle_left.png (Middlebury
  stereo 2014, scikit-image docstring); matplotlib `sample_data/grace_hopper.jpg` (public
  domain, US Navy).
- Objects: clip-art drawings 4-6 of each class of `assets/segmentation/eval` (Public Domain,
  Open Clip Art Library via Debian openclipart-png; see `assets/segmentation/eval/SOURCES.csv`),
  cut out with their exact masks; a coin from scikit-image `coins.png` (public domain, Walters
  Art Museum); the motorcycle of scikit-image `motorcycle_right.png` (Middlebury stereo 2014).
"""


def _rgb(img: Image.Image, tint) -> Image.Image:
    if tint is None:
        return img.convert("RGB")
    g = np.asarray(img.convert("L"), np.float32)[..., None]
    return Image.fromarray((g * np.asarray(tint, np.float32)).clip(0, 255).astype(np.uint8))


def load_backgrounds(split: str) -> list[tuple[str, Image.Image]]:
    return [(f"{loader}:{name}", _rgb(Image.open(_package_file(loader, name)), tint))
            for loader, name, tint in BACKGROUNDS[split]]


def load_objects(split: str) -> list[tuple[str, str, Image.Image, Image.Image]]:
    """(name, class, RGB patch, L alpha) of every object, cropped to the object's box."""
    out = []
    for cls in CLASSES:
        for k in DRAWINGS[split]:
            img = Image.open(SEG / cls / f"{cls}_{k}.jpg").convert("RGB")
            mask = Image.open(SEG / cls / f"{cls}_{k}_mask.png").convert("L")
            box = mask.getbbox()
            out.append((f"{cls}_{k}", cls, img.crop(box), mask.crop(box)))
    for name, loader, file, box in PHOTO_OBJECTS[split]:
        patch = Image.open(_package_file(loader, file)).convert("RGB").crop(box)
        alpha = Image.new("L", patch.size, 0)
        ImageDraw.Draw(alpha).ellipse((2, 2, patch.width - 3, patch.height - 3), fill=255)
        out.append((name, name, patch, alpha))
    return out


def background(rng: random.Random, photo: Image.Image) -> Image.Image:
    """A random SIZE crop of ``photo`` at a random scale (at least SIZE)."""
    w0, h0 = SIZE
    scale = rng.uniform(max(w0 / photo.width, h0 / photo.height), 1.0) if (
        photo.width >= w0 and photo.height >= h0) else max(w0 / photo.width, h0 / photo.height)
    w, h = max(w0, round(photo.width * scale)), max(h0, round(photo.height * scale))
    photo = photo.resize((w, h), Image.Resampling.BICUBIC)
    x, y = rng.randrange(w - w0 + 1), rng.randrange(h - h0 + 1)
    return photo.crop((x, y, x + w0, y + h0))


def sized(obj, long_side: int):
    """The object (patch, alpha) resized so its long side is ``long_side`` pixels."""
    _, _, patch, alpha = obj
    s = long_side / max(patch.size)
    size = (max(4, round(patch.width * s)), max(4, round(patch.height * s)))
    return (patch.resize(size, Image.Resampling.LANCZOS),
            alpha.resize(size, Image.Resampling.LANCZOS).filter(ImageFilter.GaussianBlur(0.7)))


def paste(bg: Image.Image, obj, xy: tuple[int, int]) -> Image.Image:
    out = bg.copy()
    out.paste(obj[0], xy, obj[1])
    return out


def recolour(obj, turn: float):
    """The object with its hue turned by ``turn`` (fraction of a full turn)."""
    patch, alpha = obj
    hsv = np.asarray(patch.convert("HSV")).copy()
    hsv[..., 0] = ((hsv[..., 0].astype(int) + round(256 * turn)) % 256).astype(np.uint8)
    return Image.fromarray(hsv, "HSV").convert("RGB"), alpha


def saturation(obj) -> float:
    """Mean HSV saturation (0..255) of the object's opaque pixels."""
    _, _, patch, alpha = obj
    s = np.asarray(patch.convert("HSV"))[..., 1]
    return float(s[np.asarray(alpha) > 128].mean())


def place(rng: random.Random, size: tuple[int, int]) -> tuple[int, int]:
    return rng.randrange(SIZE[0] - size[0] + 1), rng.randrange(SIZE[1] - size[1] + 1)


def camera(img: Image.Image, rng: random.Random) -> tuple[Image.Image, Image.Image, str]:
    """Two views of ``img``: a shift of 2-8 px or a 1-2 degree turn, the second re-lit."""
    gain, offset = rng.uniform(0.82, 1.18), rng.uniform(-8, 8)
    big = img.resize((SIZE[0] + 24, SIZE[1] + 18), Image.Resampling.BICUBIC)
    if rng.random() < 0.7:
        dx, dy = rng.randint(2, 8) * rng.choice((-1, 1)), rng.randint(2, 6) * rng.choice((-1, 1))
        b = big.crop((12, 9, 12 + SIZE[0], 9 + SIZE[1]))
        a = big.crop((12 + dx, 9 + dy, 12 + dx + SIZE[0], 9 + dy + SIZE[1]))
        how = f"shift ({dx}, {dy}) px"
    else:
        deg = rng.uniform(1.0, 2.0) * rng.choice((-1, 1))
        b = big.crop((12, 9, 12 + SIZE[0], 9 + SIZE[1]))
        a = big.rotate(deg, resample=Image.Resampling.BICUBIC).crop(
            (12, 9, 12 + SIZE[0], 9 + SIZE[1]))
        how = f"rotation {deg:+.1f} deg"
    arr = np.asarray(a, np.float32) * gain + offset
    return b, Image.fromarray(arr.round().clip(0, 255).astype(np.uint8)), (
        f"{how}, gain {gain:.2f}, offset {offset:+.1f}")


def make_pairs(split: str = "eval", seed: int = 0) -> list[dict]:
    """Every pair of ``split``: dicts with name, type, before, after (RGB images) and how."""
    rng = random.Random(seed)
    bgs, objs = load_backgrounds(split), load_objects(split)
    rows = []

    def scene():
        k = rng.randrange(len(bgs))
        return bgs[k][0], background(rng, bgs[k][1])

    def size():
        return round(SIZE[1] * rng.uniform(0.18, 0.55))

    for kind, count in COUNTS.items():
        for i in range(count):
            src, bg = scene()
            o = objs[rng.randrange(len(objs))]
            long_side = size()
            obj = sized(o, long_side)
            if kind in ("added", "removed"):
                xy = place(rng, obj[0].size)
                b, a = bg, paste(bg, obj, xy)
                b, a = (b, a) if kind == "added" else (a, b)
                how = f"{o[0]} ({long_side} px) at {xy}"
            elif kind == "moved":
                w, h = obj[0].size
                near = i % 2 == 0
                for _ in range(200):
                    p1, p2 = place(rng, (w, h)), place(rng, (w, h))
                    d = np.hypot(p1[0] - p2[0], p1[1] - p2[1]) / max(w, h)
                    if (0.3 <= d <= 0.8) if near else d >= 1.3:
                        break
                b, a = paste(bg, obj, p1), paste(bg, obj, p2)
                how = f"{o[0]} ({long_side} px) {'near' if near else 'far'}: {p1} -> {p2}"
            elif kind == "replaced":
                o2 = rng.choice([x for x in objs if x[1] != o[1]])
                obj2 = sized(o2, long_side)
                xy = place(rng, obj[0].size)
                c = (xy[0] + obj[0].width // 2, xy[1] + obj[0].height // 2)
                xy2 = (min(max(0, c[0] - obj2[0].width // 2), SIZE[0] - obj2[0].width),
                       min(max(0, c[1] - obj2[0].height // 2), SIZE[1] - obj2[0].height))
                b, a = paste(bg, obj, xy), paste(bg, obj2, xy2)
                how = f"{o[0]} -> {o2[0]} ({long_side} px) at {xy}"
            elif kind == "recoloured":
                o = rng.choice([x for x in objs if saturation(x) > 60])
                obj = sized(o, long_side)
                xy = place(rng, obj[0].size)
                turn = rng.uniform(0.25, 0.75)
                b, a = paste(bg, obj, xy), paste(bg, recolour(obj, turn), xy)
                how = f"{o[0]} ({long_side} px) at {xy}, hue turned {360 * turn:.0f} deg"
            else:  # none
                static = rng.random() < 0.5
                img = paste(bg, obj, place(rng, obj[0].size)) if static else bg
                b, a, how = camera(img, rng)
                how = (f"static {o[0]}, " if static else "") + how
            rows.append({"name": f"{kind}_{i + 1}", "type": kind, "background": src,
                         "how": how, "before": b, "after": a})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("eval", "dev"), default="eval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = make_pairs(args.split, args.seed)
    for r in rows:
        r.pop("before").save(args.out / f"{r['name']}_before.jpg", quality=80)
        r.pop("after").save(args.out / f"{r['name']}_after.jpg", quality=80)
    with open(args.out / "pairs.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["name", "type", "background", "how"])
        writer.writeheader()
        writer.writerows(rows)
    if args.split == "eval":
        (args.out / "SOURCES.md").write_text(LICENCES)
    print(f"wrote {len(rows)} {args.split} pairs to {args.out}")


if __name__ == "__main__":
    main()
