"""Omniglot (Lake, Salakhutdinov & Tenenbaum, Science 2015): reading, splitting, episodes, runs.

Only the two "background small" archives are on hand (8 alphabets, 242 characters, 20 drawers;
``../shared/data/omniglot/README.md``). They are extracted at run time into a cache directory
(``$OMNIGLOT_CACHE``, default ``~/.cache/vl-demo/omniglot``), never into the repository.

Split by whole alphabets (:data:`SPLITS`):

* train (5 alphabets, 161 characters; x4 with 90/180/270 degree rotations as new classes = 644)
* val   (Greek, 24 characters)
* test  (Korean + Tagalog, 57 characters)

Every image, from the dataset or from a user's sketchpad, goes through
:func:`preprocess_drawing`: a dark canvas is inverted (:func:`drawing_gray`; no Omniglot image
is), ink becomes 1 on a 0 background, the ink's bounding box is padded to a square with a
margin, the stroke width is normalised, and the result is area-resized to 28x28.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from engine.errors import UserInputError
from engine.inputs.files import class_folders, is_skipped
from engine.inputs.images import to_rgb

SIZE = 28
SPLITS = {
    "train": ("Balinese", "Early_Aramaic", "Japanese_(katakana)", "Latin", "Sanskrit"),
    "val": ("Greek",),
    "test": ("Korean", "Tagalog"),
}
ZIPS = ("images_background_small1.zip", "images_background_small2.zip")
#: Stroke width the drawings are brought to, as a fraction of the padded square's side.
STROKE_FRACTION = 0.05
MARGIN = 0.1
_CACHE_VERSION = "v1"


def source_dir() -> Path:
    """Folder holding the Omniglot zips: $OMNIGLOT_DIR, else ``$SHARED_DIR/data/omniglot``
    (the tests' shared folder), else ``<repo>/../shared/data/omniglot``."""
    shared = Path(os.environ.get("SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
    return Path(os.environ.get("OMNIGLOT_DIR", shared / "data" / "omniglot"))


def cache_dir() -> Path:
    """Writable cache for the extracted images ($OMNIGLOT_CACHE, default
    ~/.cache/vl-demo/omniglot)."""
    return Path(os.environ.get("OMNIGLOT_CACHE", Path.home() / ".cache" / "vl-demo" / "omniglot"))


#: What the user is told when a drawing's colours were inverted before use.
INVERTED_NOTE = "the drawing was inverted (light strokes on a dark background)"


def drawing_gray(image: Image.Image) -> tuple[np.ndarray, bool]:
    """A drawing as dark strokes on a light background, the way Omniglot draws them.

    A drawing whose canvas is dark (more than half of its pixels have a gray level below 128:
    light strokes on a dark background, as a tablet's dark mode or chalk on a blackboard draws)
    is inverted; strokes cover far less than half of any drawing, so the majority colour is the
    canvas.

    Args:
        image: PIL image of any mode and size; transparency is composited onto white.

    Returns:
        ((H, W) uint8 gray levels, dark strokes on a light background; True if inverted).
    """
    gray = np.asarray(to_rgb(image).convert("L"), dtype=np.uint8)
    if (gray < 128).mean() > 0.5:
        return 255 - gray, True
    return gray, False


def preprocess_drawing(image: Image.Image, size: int = SIZE) -> torch.Tensor:
    """Turn a drawing into Omniglot's model input.

    The drawing is brought to dark strokes on a light background first (:func:`drawing_gray`:
    transparency composited onto white, a dark canvas inverted). The ink (gray level below
    128) is cropped to its bounding box, padded to a centred square with a 10% margin,
    thickened or thinned so the stroke width is :data:`STROKE_FRACTION` of the side, and
    area-averaged down to ``size`` x ``size``.

    Args:
        image: PIL image of any mode and size (RGB, L, 1, RGBA, ...).
        size: output side in pixels.

    Returns:
        (1, size, size) float32 in [0, 1], ink = 1, background = 0.

    Raises:
        UserInputError: the image has no stroke (a blank drawing, light or dark).
    """
    gray, inverted = drawing_gray(image)
    ink = gray < 128  # (H, W) bool
    if not ink.any():
        stroke = "light stroke on its dark canvas" if inverted else "dark stroke"
        raise UserInputError(f"the drawing ({image.size[0]}x{image.size[1]} px) is blank: "
                             f"no {stroke} was found")
    rows, cols = np.nonzero(ink.any(1))[0], np.nonzero(ink.any(0))[0]
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = ink.shape
    side = int(np.ceil(max(h, w) * (1 + 2 * MARGIN))) + 2
    canvas = np.zeros((side, side), dtype=bool)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w] = ink
    canvas = _normalise_stroke(canvas, STROKE_FRACTION * side)
    x = torch.from_numpy(canvas.astype(np.float32))[None, None]  # (1, 1, side, side)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="area")
    return x[0].clamp_(0, 1)  # (1, size, size)


def _normalise_stroke(mask: np.ndarray, target: float) -> np.ndarray:
    """Dilate or erode a binary ink mask so its mean stroke width is about ``target`` pixels.

    The width is estimated as 2 * area / perimeter (a stroke of length L and width w has area
    L*w and a perimeter of about 2L).
    """
    area = mask.sum()
    perimeter = (mask & ~ndimage.binary_erosion(mask)).sum()
    width = 2.0 * area / max(perimeter, 1)
    radius = int(round((target - width) / 2))
    if radius > 0:
        return ndimage.binary_dilation(mask, ndimage.generate_binary_structure(2, 1),
                                       iterations=radius)
    if radius < 0:
        thinned = ndimage.binary_erosion(mask, iterations=-radius)
        return thinned if thinned.sum() > 0.2 * area else mask
    return mask


def extract(force: bool = False) -> Path:
    """Extract both zips into ``cache_dir()/raw`` once; returns that folder."""
    raw = cache_dir() / "raw"
    marker = raw / ".complete"
    if marker.exists() and not force:
        return raw
    raw.mkdir(parents=True, exist_ok=True)
    for name in ZIPS:
        path = source_dir() / name
        if not path.is_file():
            raise FileNotFoundError(f"Omniglot archive {path} is missing (set $OMNIGLOT_DIR)")
        with zipfile.ZipFile(path) as zf:
            zf.extractall(raw)
    marker.write_text("ok\n")
    return raw


def character_files() -> dict[str, list[Path]]:
    """``"Alphabet/characterNN"`` -> its 20 image paths sorted by drawer, both archives merged."""
    raw = extract()
    chars: dict[str, list[Path]] = {}
    for set_dir in class_folders(raw):  # __MACOSX/ and hidden folders skipped
        for char_dir in sorted(set_dir.glob("*/character*")):
            key = f"{char_dir.parent.name}/{char_dir.name}"
            if key not in chars:  # Greek and Latin are in both archives
                chars[key] = sorted((p for p in char_dir.glob("*.png") if not is_skipped(p.name)),
                                    key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    return chars


@dataclass(frozen=True)
class OmniglotSplit:
    """Preprocessed images of one split.

    Attributes:
        images: (C, D, 28, 28) uint8, ink 255 on 0, C characters x D drawers.
        characters: C names "Alphabet/characterNN".
    """

    images: torch.Tensor
    characters: tuple[str, ...]

    def float_images(self) -> torch.Tensor:
        """(C, D, 1, 28, 28) float32 in [0, 1]."""
        return self.images.float().div_(255).unsqueeze(2)


def load_split(split: str) -> OmniglotSplit:
    """Load (and cache as .npz after the first call) the preprocessed images of a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    path = cache_dir() / f"omniglot{SIZE}_{_CACHE_VERSION}.npz"
    if not path.exists():
        chars = character_files()
        names = sorted(chars)
        arr = np.stack([np.stack([
            (preprocess_drawing(Image.open(p))[0].numpy() * 255).round().astype(np.uint8)
            for p in chars[n]]) for n in names])  # (242, 20, 28, 28)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, images=arr, names=np.array(names))
        tmp.replace(path)
    data = np.load(path)
    keep = [i for i, n in enumerate(data["names"]) if str(n).split("/")[0] in SPLITS[split]]
    return OmniglotSplit(torch.from_numpy(data["images"][keep]),
                         tuple(str(data["names"][i]) for i in keep))


def with_rotations(images: torch.Tensor) -> torch.Tensor:
    """(C, D, H, W) -> (4C, D, H, W): rotations by 0/90/180/270 degrees as new classes."""
    C, D, H, W = images.shape
    rot = torch.stack([torch.rot90(images, k, dims=(2, 3)) for k in range(4)], 1)  # (C, 4, D, H, W)
    return rot.reshape(4 * C, D, H, W)


class EpisodeSampler:
    """N-way K-shot episodes with Q queries per class, drawn with a seeded generator.

    Args:
        images: (C, D, ...) tensor: C classes with D examples each (images or features).
        way, shot, query: N classes, K support and Q query examples per class.
        seed: seeds this sampler's own ``torch.Generator``.

    Raises:
        UserInputError: N, K or Q impossible for ``images`` (e.g. --way larger than the split).
    """

    def __init__(self, images: torch.Tensor, way: int, shot: int, query: int, seed: int = 0):
        C, D = images.shape[:2]
        if way < 2 or way > C:
            raise UserInputError(f"way must be in [2, {C}] for this split, got {way}")
        if shot < 1 or query < 1 or shot + query > D:
            raise UserInputError(f"shot ({shot}) + query ({query}) must be in [2, {D}]")
        self.images, self.way, self.shot, self.query = images, way, shot, query
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One episode.

        Returns:
            support (N*K, ...), support labels (N*K,) int64, query (N*Q, ...), query labels
            (N*Q,) int64; labels in [0, N), grouped by class.
        """
        C, D = self.images.shape[:2]
        N, K, Q = self.way, self.shot, self.query
        classes = torch.randperm(C, generator=self.generator)[:N]  # (N,)
        drawers = torch.argsort(torch.rand(N, D, generator=self.generator), 1)[:, :K + Q]
        x = self.images[classes[:, None], drawers]  # (N, K+Q, ...)
        rest = x.shape[2:]
        support = x[:, :K].reshape(N * K, *rest)
        query = x[:, K:].reshape(N * Q, *rest)
        return (support, torch.arange(N).repeat_interleave(K), query,
                torch.arange(N).repeat_interleave(Q))


@dataclass(frozen=True)
class Run:
    """One of Lake et al.'s one-shot runs: support paths (one per class) and labelled queries."""

    name: str
    support: tuple[Path, ...]
    queries: tuple[Path, ...]
    query_labels: tuple[int, ...]  # index into ``support``


def read_runs(root: str | os.PathLike) -> list[Run]:
    """Read a folder of runs in Lake et al.'s layout (``runNN/class_labels.txt``, ``training/``,
    ``test/``). Paths in class_labels.txt are relative to ``root`` (or to the run folder).

    Raises:
        FileNotFoundError: no run folder, or a listed image is missing.
        UserInputError: a malformed class_labels.txt line.
    """
    root = Path(root)
    run_dirs = sorted(p for p in root.glob("run*") if (p / "class_labels.txt").is_file())
    if not run_dirs:
        raise FileNotFoundError(f"no runNN/class_labels.txt folders under {root}")
    runs = []
    for run_dir in run_dirs:
        support = tuple(sorted(p for p in (run_dir / "training").glob("*.png")
                               if not is_skipped(p.name)))  # no ._* AppleDouble files
        index = {p.resolve(): i for i, p in enumerate(support)}
        queries, labels = [], []
        for n, line in enumerate((run_dir / "class_labels.txt").read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise UserInputError(f"{run_dir.name}/class_labels.txt line {n}: expected "
                                 f"'test/itemKK.png training/classMM.png', got {line!r}")
            q, s = (_resolve(root, run_dir, part) for part in parts)
            if s.resolve() not in index:
                raise FileNotFoundError(f"{run_dir.name}: support image {parts[1]} not found")
            queries.append(q)
            labels.append(index[s.resolve()])
        runs.append(Run(run_dir.name, support, tuple(queries), tuple(labels)))
    return runs


def _resolve(root: Path, run_dir: Path, rel: str) -> Path:
    for base in (root, run_dir):
        if (base / rel).is_file():
            return base / rel
    raise FileNotFoundError(f"{run_dir.name}: image {rel} not found")


def write_runs(out: str | os.PathLike, split: str = "test", n_runs: int = 20, way: int = 20,
               seed: int = 0) -> Path:
    """Write one-shot runs in Lake et al.'s layout from the original 105x105 images of a split.

    As in Lake et al., each run takes ``way`` characters of one alphabet (an alphabet with at
    least ``way`` characters; else the whole split's pool) and two drawers: one drawer's image of
    each character is the support, the other drawer's image the query.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    files = {k: v for k, v in character_files().items() if k.split("/")[0] in SPLITS[split]}
    alphabets = sorted({k.split("/")[0] for k in files})
    gen = np.random.default_rng(seed)
    out = Path(out)
    for r in range(1, n_runs + 1):
        big = [a for a in alphabets if sum(k.startswith(a + "/") for k in files) >= way]
        pool = sorted(files)
        if big:
            alphabet = big[gen.integers(len(big))]
            pool = [k for k in pool if k.startswith(alphabet + "/")]
        if len(pool) < way:
            raise UserInputError(f"split {split!r} has {len(pool)} characters, fewer than "
                                 f"way={way}")
        chars = [pool[i] for i in gen.permutation(len(pool))[:way]]
        d_support, d_query = gen.permutation(len(files[chars[0]]))[:2]
        run = out / f"run{r:02d}"
        (run / "training").mkdir(parents=True, exist_ok=True)
        (run / "test").mkdir(parents=True, exist_ok=True)
        order = gen.permutation(way)  # queries listed in a shuffled order
        lines = []
        for c, char in enumerate(chars):
            Image.open(files[char][d_support]).save(run / "training" / f"class{c + 1:02d}.png")
        for k, c in enumerate(order):
            Image.open(files[chars[c]][d_query]).save(run / "test" / f"item{k + 1:02d}.png")
            lines.append(f"run{r:02d}/test/item{k + 1:02d}.png "
                         f"run{r:02d}/training/class{c + 1:02d}.png")
        (run / "class_labels.txt").write_text("\n".join(lines) + "\n")
    return out
