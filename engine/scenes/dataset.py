"""Deterministic datasets of the scene world, cached on disk as ``.npz`` shards.

Every item is drawn from its own seed, and the splits use disjoint seed ranges (train from 0,
val from 1,000,000, test from 2,000,000), so item ``i`` of a split is always the same scene
wherever and whenever it is built, and no test scene is ever a training scene.

Kinds:

* ``"scenes"``: :func:`~engine.scenes.sampling.sample_scene`; every other item (odd index) is
  lit by jittered lights, so models see CLEVR-Change's illumination range. Arrays:
  ``images`` (N, H, W, 3) uint8, ``ids`` (N, H, W) int8 (object index per pixel, -1 ground),
  ``scenes`` (N,) JSON strings (:meth:`Scene.to_json`), ``seeds`` (N,) int64.
* ``"changes"``: CLEVR-Change pairs, as in the paper one distractor pair per semantic pair:
  even items are distractor pairs, odd items cycle through colour, material, add, drop, move.
  Arrays ``before``, ``after`` (N, H, W, 3) uint8, ``before_ids``, ``after_ids`` (N, H, W)
  int8, ``pairs`` (N,) JSON strings (:meth:`ChangePair.to_dict`), ``types`` (N,) str, ``seeds``.
* ``"multichanges"``: :func:`~engine.scenes.changes.sample_multi_change_pair` (1-3 changes),
  same arrays as "changes".
* ``"edits"``: :func:`~engine.scenes.changes.sample_edit`, operations cycling through
  :data:`~engine.scenes.changes.EDIT_OPS`; arrays ``before``, ``after``, ``before_ids``,
  ``after_ids``, ``edits`` (JSON), ``ops``, ``instructions``, ``seeds``.

Shards (``shard-00000.npz`` ...) are written atomically (to a temporary name, then renamed), so
an interrupted build resumes where it stopped: :func:`build_dataset` skips shards that exist.
The default data folder is ``$SCENES_DATA_DIR`` or ``data/scenes`` in the repository (not
committed).

    >>> from engine.scenes.dataset import DatasetSpec, build_dataset, load_dataset
    >>> spec = DatasetSpec("scenes", "train", 2000)
    >>> build_dataset(spec)                  # renders what is missing
    >>> data = load_dataset(spec)            # dict of arrays, all shards concatenated
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from engine.scenes.changes import (CHANGE_TYPES, EDIT_OPS, sample_change_pair, sample_edit,
                                   sample_multi_change_pair)
from engine.scenes.render import render
from engine.scenes.sampling import sample_scene
from engine.scenes.scene import Scene

KINDS = ("scenes", "changes", "multichanges", "edits")
#: First seed of each split (disjoint ranges of one million seeds).
SPLIT_SEEDS = {"train": 0, "val": 1_000_000, "test": 2_000_000}
#: Key-light jitter of the odd items of "scenes" (scene units per axis).
SCENE_LIGHT_JITTER = 1.0


def default_data_dir() -> Path:
    """``$SCENES_DATA_DIR`` or ``<repository>/data/scenes``."""
    env = os.environ.get("SCENES_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data" / "scenes"


@dataclass(frozen=True)
class DatasetSpec:
    """Which items a dataset holds.

    Attributes:
        kind: one of :data:`KINDS`.
        split: "train", "val" or "test".
        n: number of items (item ``i`` is drawn from seed ``SPLIT_SEEDS[split] + i``).
        size: image side in pixels.
        supersample: the renderer's anti-aliasing factor.
        shard_size: items per shard file.

    Raises:
        ValueError: unknown kind or split, or a non-positive count.
    """

    kind: str
    split: str
    n: int
    size: int = 128
    supersample: int = 2
    shard_size: int = 500

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown dataset kind {self.kind!r}; valid: {', '.join(KINDS)}")
        if self.split not in SPLIT_SEEDS:
            raise ValueError(f"unknown split {self.split!r}; valid: {', '.join(SPLIT_SEEDS)}")
        if self.n < 1 or self.shard_size < 1:
            raise ValueError(f"n and shard_size must be >= 1, got {self.n}, {self.shard_size}")

    def seed(self, i: int) -> int:
        return SPLIT_SEEDS[self.split] + int(i)

    def folder(self, data_dir: str | Path | None = None) -> Path:
        """``<data_dir>/<kind>-<size>px-ss<supersample>/<split>``."""
        root = Path(data_dir) if data_dir else default_data_dir()
        return root / f"{self.kind}-{self.size}px-ss{self.supersample}" / self.split

    def shards(self) -> list[tuple[int, int]]:
        """``(first item, end item)`` of every shard."""
        return [(a, min(a + self.shard_size, self.n)) for a in range(0, self.n, self.shard_size)]


def scene_item(spec: DatasetSpec, i: int) -> tuple[Scene, int]:
    """Item ``i`` of a "scenes" dataset: (scene, seed)."""
    seed = spec.seed(i)
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng)
    if i % 2 == 1:
        scene = Scene(scene.objects, scene.camera, scene.lighting.jittered(rng, SCENE_LIGHT_JITTER))
    return scene, seed


def _scenes(spec: DatasetSpec, lo: int, hi: int) -> dict[str, np.ndarray]:
    images, ids, jsons, seeds = [], [], [], []
    for i in range(lo, hi):
        scene, seed = scene_item(spec, i)
        r = render(scene, spec.size, spec.supersample)
        images.append(r.image)
        ids.append(r.ids.astype(np.int8))
        jsons.append(scene.to_json())
        seeds.append(seed)
    return {"images": np.stack(images), "ids": np.stack(ids), "scenes": np.array(jsons),
            "seeds": np.array(seeds, np.int64)}


def _pairs(spec: DatasetSpec, lo: int, hi: int) -> dict[str, np.ndarray]:
    out: dict[str, list] = {k: [] for k in ("before", "after", "before_ids", "after_ids", "seeds")}
    extra: dict[str, list] = {}
    for i in range(lo, hi):
        seed = spec.seed(i)
        if spec.kind == "changes":
            kind = "distractor" if i % 2 == 0 else CHANGE_TYPES[(i // 2) % len(CHANGE_TYPES)]
            item = sample_change_pair(seed, kind)
            fields = {"pairs": json.dumps(item.to_dict()), "types": item.type}
        elif spec.kind == "multichanges":
            item = sample_multi_change_pair(seed)
            fields = {"pairs": json.dumps(item.to_dict()), "types": item.type}
        else:
            item = sample_edit(seed, EDIT_OPS[i % len(EDIT_OPS)])
            fields = {"edits": json.dumps(item.to_dict()), "ops": item.op,
                      "instructions": item.instruction}
        rb = render(item.before, spec.size, spec.supersample)
        ra = render(item.after, spec.size, spec.supersample)
        out["before"].append(rb.image)
        out["after"].append(ra.image)
        out["before_ids"].append(rb.ids.astype(np.int8))
        out["after_ids"].append(ra.ids.astype(np.int8))
        out["seeds"].append(seed)
        for k, v in fields.items():
            extra.setdefault(k, []).append(v)
    arrays = {k: np.stack(v) if k != "seeds" else np.array(v, np.int64) for k, v in out.items()}
    arrays.update({k: np.array(v) for k, v in extra.items()})
    return arrays


def _shard_len(path: Path) -> int:
    with np.load(path) as z:
        return len(z["seeds"])


def build_dataset(spec: DatasetSpec, data_dir: str | Path | None = None,
                  progress: Callable[[str], None] | None = None) -> Path:
    """Render every missing shard of ``spec`` (resumable; existing shards are kept).

    Returns:
        The dataset's folder.
    """
    folder = spec.folder(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(json.dumps(spec.__dict__))
    make = _scenes if spec.kind == "scenes" else _pairs
    for k, (lo, hi) in enumerate(spec.shards()):
        path = folder / f"shard-{k:05d}.npz"
        if path.exists() and _shard_len(path) >= hi - lo:
            continue  # built before (possibly for a larger n: its first items are these)
        t0 = time.perf_counter()
        arrays = make(spec, lo, hi)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
        if progress:
            progress(f"{spec.kind}/{spec.split} items {lo}-{hi - 1}: "
                     f"{(hi - lo) / (time.perf_counter() - t0):.1f} items/s")
    return folder


def load_dataset(spec: DatasetSpec, data_dir: str | Path | None = None,
                 build: bool = True) -> dict[str, np.ndarray]:
    """All arrays of ``spec``, shards concatenated (building missing shards first if
    ``build``).

    Raises:
        FileNotFoundError: a shard is missing and ``build`` is False.
    """
    folder = build_dataset(spec, data_dir) if build else spec.folder(data_dir)
    parts = []
    for k, (lo, hi) in enumerate(spec.shards()):
        path = folder / f"shard-{k:05d}.npz"
        if not path.exists() or _shard_len(path) < hi - lo:
            raise FileNotFoundError(f"dataset shard {path} is missing (build it first)")
        with np.load(path) as z:
            parts.append({key: z[key][:hi - lo] for key in z.files})
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


__all__ = ["DatasetSpec", "KINDS", "SPLIT_SEEDS", "build_dataset", "default_data_dir",
           "load_dataset", "scene_item"]
