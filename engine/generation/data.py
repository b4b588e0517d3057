"""Training and held-out data of the scene generator: scenes of 1-3 objects (CLEVR's rules,
:func:`engine.scenes.sampling.sample_scene`), rendered at the generator's side with the default
camera and lights, each with :data:`N_DESCRIPTIONS` descriptions
(:func:`engine.scenes.language.describe_scene` with relation choices seeded 0-4).

Splits use the scene world's seed ranges (train from 0, validation from 1,000,000, test from
2,000,000), so no held-out description's scene is ever trained on. Cached as ``.npz`` shards
of 1,000 items under ``data/generation/`` (gitignored), written atomically: an interrupted
build keeps its finished shards.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from engine.scenes.dataset import SPLIT_SEEDS
from engine.scenes.language import describe_scene
from engine.scenes.render import render
from engine.scenes.sampling import SamplingRules, sample_scene
from engine.scenes.scene import Scene

#: Object counts of the generator's scenes (the issue's "1-3 object prompts").
RULES = SamplingRules(min_objects=1, max_objects=3)
#: Descriptions per scene (relation choices seeded 0..N-1).
N_DESCRIPTIONS = 5
SHARD = 1000


def default_data_dir() -> Path:
    """``$GENERATION_DATA_DIR`` or ``<repository>/data/generation``."""
    env = os.environ.get("GENERATION_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data" / "generation"


def item(split: str, i: int) -> tuple[Scene, list[str]]:
    """Scene ``i`` of ``split`` and its :data:`N_DESCRIPTIONS` descriptions."""
    scene = sample_scene(SPLIT_SEEDS[split] + int(i), RULES)
    return scene, [describe_scene(scene, np.random.default_rng(k)) for k in range(N_DESCRIPTIONS)]


def _shard(split: str, lo: int, hi: int, size: int) -> dict[str, np.ndarray]:
    images, texts, scenes = [], [], []
    for i in range(lo, hi):
        scene, descriptions = item(split, i)
        images.append(render(scene, size).image)
        texts.append(json.dumps(descriptions))
        scenes.append(scene.to_json())
    return {"images": np.stack(images), "texts": np.array(texts), "scenes": np.array(scenes)}


def load(split: str, n: int, size: int, data_dir: str | Path | None = None,
         progress: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """The first ``n`` items of ``split`` at ``size`` pixels, rendering missing shards first.

    Returns:
        ``images`` (n, size, size, 3) uint8, ``texts`` (n,) JSON lists of descriptions,
        ``scenes`` (n,) scene JSON.
    """
    folder = Path(data_dir or default_data_dir()) / f"{split}-{size}px"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for k, lo in enumerate(range(0, n, SHARD)):
        hi = lo + SHARD
        path = folder / f"shard-{k:05d}.npz"
        if not path.exists():
            arrays = _shard(split, lo, hi, size)
            tmp = path.with_name(path.stem + ".tmp.npz")
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, path)
            if progress:
                progress(f"rendered {split} items {lo}-{hi - 1} at {size}px")
        with np.load(path) as z:
            parts.append({key: z[key] for key in z.files})
    return {key: np.concatenate([p[key] for p in parts])[:n] for key in parts[0]}
