"""CSS-style composed-retrieval triplets on the scene world, and their cached image features.

CSS (Vo et al., "Composing Text and Image for Image Retrieval - an Empirical Odyssey", CVPR
2019) renders CLEVR-style scenes and asks: given a reference scene and a modification text
("make the large cube purple"), find the target scene in a gallery. Here every *base* scene
(seed ``s`` of a split) gets up to one edit of each kind of :data:`EDIT_OPS` (add, colour,
material, shape, size, remove; :func:`engine.scenes.changes.sample_edit`), so a gallery holds
each base and its edited siblings: the reference's nearest images are its other edits, which
only the text can tell apart (an image-only ranking finds the right scene one time in six at
best). A group of one base and its edits is a *group*; its images are gallery items.

Splits use the scene world's disjoint seed ranges (:data:`engine.scenes.dataset.SPLIT_SEEDS`):
bases of "train" start at seed 0, "val" at 1,000,000, "test" at 2,000,000. A retrieved item is
a hit when its scene graph (every object's shape, colour, size, material and ground position,
rounded to 0.01 units: :func:`scene_key`) equals the target's.

Built by ``python -m engine build-scene-triplets --split test --bases 1450`` into
``data/scene_cir/<split>/`` (``$SCENES_DATA_DIR/../scene_cir``), resumable: one ``.npz`` per
chunk of 50 bases holding the 128x128 renders' EfficientNet-Lite0 pooled features (the
embedded network, frozen, run through ONNX Runtime in batches of 32 at 128x128), the scenes' JSON and
the triplets. Renders are not kept: any item can be drawn again from its scene.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.scenes.changes import EDIT_OPS, sample_edit
from engine.scenes.dataset import SPLIT_SEEDS, default_data_dir
from engine.scenes.render import render
from engine.scenes.sampling import sample_scene
from engine.scenes.scene import Scene

#: Bases per cache file.
CHUNK = 50
#: Render size (pixels), the renderer's anti-aliasing factor and the backbone's input size:
#: renders are fed as they are (128x128 gives a 4x4 grid of 1280-d cells), without
#: supersampling, which made building the 10,000-scene gallery 3x faster on the shared CPU.
RENDER_SIZE, SUPERSAMPLE, FEATURE_SIZE = 128, 1, 128


def triplet_dir(split: str, data_dir: str | Path | None = None) -> Path:
    """``<data_dir>/<split>``, default ``data/scene_cir/<split>`` next to the scene datasets."""
    root = Path(data_dir) if data_dir else default_data_dir().parent / "scene_cir"
    return root / split


def scene_key(scene: Scene) -> tuple:
    """The scene graph a hit must match: sorted (shape, colour, size, material, x, y) of every
    object, positions rounded to 0.01 scene units."""
    return tuple(sorted((o.shape, o.color, o.size, o.material, round(o.x, 2), round(o.y, 2))
                        for o in scene.objects))


@dataclass(frozen=True)
class Group:
    """A base scene and its edits.

    Attributes:
        seed: the base's seed.
        scenes: the base first, then each edit's target scene.
        ops: the operation of each edit (``len(scenes) - 1`` entries).
        instructions: per edit, the instruction drawn for it and every template's wording.
    """

    seed: int
    scenes: tuple[Scene, ...]
    ops: tuple[str, ...]
    instructions: tuple[tuple[str, ...], ...]


def make_group(seed: int) -> Group:
    """The base scene of ``seed`` and one edit per operation of :data:`EDIT_OPS` (an operation
    the base cannot take, e.g. "remove" with the fewest objects allowed or "add" with no free
    place, is left out)."""
    base = sample_scene(seed)
    scenes, ops, texts = [base], [], []
    for k, op in enumerate(EDIT_OPS):
        try:
            edit = sample_edit(np.random.default_rng((seed, k)), op, base=base)
        except RuntimeError:  # no valid edit of this kind (e.g. no free place to add)
            continue
        if edit.before is not base:  # sample_edit drew another base: this op does not fit
            continue
        scenes.append(edit.after)
        ops.append(op)
        texts.append((edit.instruction,) + tuple(t for t in edit.instructions
                                                 if t != edit.instruction))
    return Group(seed, tuple(scenes), tuple(ops), tuple(texts))


def _encode(backbone, images: list[np.ndarray], batch: int = 32) -> np.ndarray:
    """(N, 1280) float16 pooled EfficientNet-Lite0 features of (H, W, 3) uint8 renders,
    resized (bicubic, no crop) to :data:`FEATURE_SIZE` when they are another size."""
    import torch
    import torch.nn.functional as F
    pre = backbone.preprocess
    mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(pre.std).view(1, 3, 1, 1)
    out = []
    with torch.no_grad():
        for a in range(0, len(images), batch):
            x = torch.from_numpy(np.stack(images[a:a + batch])).permute(0, 3, 1, 2).float() / 255
            if x.shape[-1] != FEATURE_SIZE or x.shape[-2] != FEATURE_SIZE:
                x = F.interpolate(x, size=(FEATURE_SIZE, FEATURE_SIZE), mode="bicubic",
                                  align_corners=False).clamp(0, 1)
            out.append(backbone((x - mean) / std).pooled.numpy().astype(np.float16))
    return np.concatenate(out)


def encode_renders(backbone, images: list[np.ndarray], batch: int = 32) -> np.ndarray:
    """Public form of the feature step (what the app runs on a reference render).

    Args:
        backbone: :class:`engine.models.efficientnet.EfficientNetLite0`.
        images: N (H, W, 3) uint8 renders.

    Returns:
        (N, 1280) float16 pooled features (>= 0).
    """
    return _encode(backbone, images, batch)


def build_triplets(split: str, n_bases: int, backbone, data_dir: str | Path | None = None,
                   progress: Callable[[str], None] | None = None) -> Path:
    """Render and encode every missing chunk of ``n_bases`` groups of ``split`` (resumable).

    Raises:
        ValueError: unknown split or a non-positive count.
    """
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLIT_SEEDS)}")
    if n_bases < 1:
        raise ValueError(f"n_bases must be >= 1, got {n_bases}")
    folder = triplet_dir(split, data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for c, lo in enumerate(range(0, n_bases, CHUNK)):
        path = folder / f"chunk-{c:05d}.npz"
        if path.exists():
            continue
        t0 = time.perf_counter()
        images, jsons, group_of, refs, tgts, ops, texts = [], [], [], [], [], [], []
        for b in range(lo, min(lo + CHUNK, n_bases)):
            g = make_group(SPLIT_SEEDS[split] + b)
            first = len(jsons)
            for s in g.scenes:
                images.append(render(s, RENDER_SIZE, SUPERSAMPLE).image)
                jsons.append(s.to_json())
                group_of.append(g.seed)
            for k, op in enumerate(g.ops):
                refs.append(first)
                tgts.append(first + 1 + k)
                ops.append(op)
                texts.append(json.dumps(list(g.instructions[k])))
        feats = _encode(backbone, images)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(tmp, features=feats, scenes=np.array(jsons),
                            groups=np.array(group_of, np.int64), refs=np.array(refs, np.int64),
                            targets=np.array(tgts, np.int64), ops=np.array(ops),
                            texts=np.array(texts))
        os.replace(tmp, path)
        if progress:
            progress(f"{split} bases {lo}-{lo + CHUNK - 1}: {len(images)} items, "
                     f"{len(images) / (time.perf_counter() - t0):.1f} items/s")
    return folder


@dataclass
class TripletSet:
    """A split's gallery and queries.

    Attributes:
        features: (N, 1280) float32 pooled backbone features of the N gallery items.
        scenes: N scene JSON strings.
        groups: (N,) int64 base seed of each item.
        keys: N scene keys (:func:`scene_key`).
        refs, targets: (Q,) int64 gallery indices of each query's reference and target.
        ops: Q operation names.
        texts: Q tuples of wordings, the drawn instruction first.
    """

    features: np.ndarray
    scenes: list[str]
    groups: np.ndarray
    keys: list[tuple]
    refs: np.ndarray
    targets: np.ndarray
    ops: list[str]
    texts: list[tuple[str, ...]]

    def target_mask(self) -> np.ndarray:
        """(Q, N) bool: item n has query q's target scene graph (what counts as a hit)."""
        index: dict[tuple, list[int]] = {}
        for n, k in enumerate(self.keys):
            index.setdefault(k, []).append(n)
        mask = np.zeros((len(self.targets), len(self.keys)), bool)
        for q, t in enumerate(self.targets):
            mask[q, index[self.keys[t]]] = True
        return mask


def load_triplets(split: str, n_bases: int | None = None,
                  data_dir: str | Path | None = None) -> TripletSet:
    """Concatenate the cached chunks of ``split`` (the first ``n_bases`` bases, default all).

    Raises:
        FileNotFoundError: no chunk cached (build it first).
    """
    folder = triplet_dir(split, data_dir)
    paths = sorted(folder.glob("chunk-?????.npz"))
    if n_bases is not None:
        paths = paths[:(n_bases + CHUNK - 1) // CHUNK]
    if not paths:
        raise FileNotFoundError(f"no scene triplets in {folder}: run python -m engine "
                                f"build-scene-triplets --split {split}")
    feats, scenes, groups, refs, tgts, ops, texts = [], [], [], [], [], [], []
    offset = 0
    for p in paths:
        with np.load(p) as z:
            feats.append(z["features"].astype(np.float32))
            scenes += list(z["scenes"])
            groups.append(z["groups"])
            refs.append(z["refs"] + offset)
            tgts.append(z["targets"] + offset)
            ops += list(z["ops"])
            texts += [tuple(json.loads(t)) for t in z["texts"]]
            offset += len(z["groups"])
    keys = [scene_key(Scene.from_json(s)) for s in scenes]
    return TripletSet(np.concatenate(feats), scenes, np.concatenate(groups), keys,
                      np.concatenate(refs), np.concatenate(tgts), ops, texts)


__all__ = ["CHUNK", "Group", "TripletSet", "build_triplets", "encode_renders", "load_triplets",
           "make_group", "scene_key", "triplet_dir"]
