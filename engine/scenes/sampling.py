"""Random scenes by CLEVR's rules (``render_images.py`` of ``clevr-dataset-gen``), seeded.

A scene has 3-10 objects with uniformly drawn attributes, each at a uniform position in
``[-3, 3]^2`` with a uniform rotation, such that

* footprints keep ``min_dist`` (0.25) apart: ``|p_i - p_j| - r_i - r_j >= min_dist`` (CLEVR
  uses a cube's shrunken ``r / sqrt(2)`` here and so lets cube corners touch; we use the
  footprint radius ``r`` of every shape, so objects never intersect);
* along the camera's left/right and front/behind axes every pair is at least ``margin`` (0.4)
  apart, so "left of" / "behind" (decided with ``eps`` 0.2, :mod:`engine.scenes.language`)
  are never borderline;
* every object shows at least ``min_pixels`` pixels in a 128x128 id render (CLEVR asks 200 of
  480x320; the same share is 21 of 128x128); otherwise the whole scene is drawn again, as
  CLEVR does.

Placing an object tries ``max_retries`` positions; when they all fail the scene starts over.

    >>> from engine.scenes.sampling import sample_scene
    >>> scene = sample_scene(7)         # the same scene for the same seed, always
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from engine.scenes.render import object_ids
from engine.scenes.scene import (ATTRIBUTES, COLOR_NAMES, MATERIALS, SHAPES, SIZE_NAMES, Camera,
                                 Lighting, Scene, SceneObject)


@dataclass(frozen=True)
class SamplingRules:
    """CLEVR's scene rules (``render_images.py`` defaults) and our visibility check.

    Attributes:
        min_objects, max_objects: object count range (inclusive).
        extent: positions are drawn in ``[-extent, extent]^2``.
        min_dist: least gap between two footprints (scene units).
        margin: least separation of two objects along each camera axis on the ground.
        min_pixels: least visible pixels per object in the ``check_size`` id render.
        check_size: size of that render (independent of the size scenes are drawn at, so a
            seed gives the same scene at any resolution).
        max_retries: positions tried per object before the scene starts over.
    """

    min_objects: int = 3
    max_objects: int = 10
    extent: float = 3.0
    min_dist: float = 0.25
    margin: float = 0.4
    min_pixels: int = 20
    check_size: int = 128
    max_retries: int = 50

    def __post_init__(self):
        if not 1 <= self.min_objects <= self.max_objects <= 20:
            raise ValueError(f"need 1 <= min_objects <= max_objects <= 20, got "
                             f"{self.min_objects}, {self.max_objects}")


def as_rng(seed: int | np.random.Generator) -> np.random.Generator:
    """A numpy Generator from a seed (or the Generator itself)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(int(seed))


def random_attributes(rng: np.random.Generator) -> dict[str, str]:
    """Uniformly drawn ``shape, color, size, material``."""
    return {"shape": SHAPES[rng.integers(len(SHAPES))],
            "color": COLOR_NAMES[rng.integers(len(COLOR_NAMES))],
            "size": SIZE_NAMES[rng.integers(len(SIZE_NAMES))],
            "material": MATERIALS[rng.integers(len(MATERIALS))]}


def placement_ok(obj: SceneObject, others: Sequence[SceneObject], camera: Camera,
                 rules: SamplingRules = SamplingRules()) -> bool:
    """Whether ``obj`` keeps CLEVR's distance and margin rules to every one of ``others``."""
    dirs = camera.directions()
    axes = (dirs["right"][:2], dirs["behind"][:2])
    for other in others:
        dx, dy = obj.x - other.x, obj.y - other.y
        if np.hypot(dx, dy) - obj.radius - other.radius < rules.min_dist:
            return False
        for a in axes:
            if abs(dx * a[0] + dy * a[1]) < rules.margin:
                return False
    return True


def place(attributes: dict[str, str], others: Sequence[SceneObject], camera: Camera,
          rng: np.random.Generator, rules: SamplingRules = SamplingRules(),
          region=None) -> SceneObject | None:
    """An object with ``attributes`` at a random position keeping the rules to ``others``.

    Args:
        region: optional callable ``(x, y) -> bool``: only positions where it is true (e.g.
            "left of the red cube" for an edit).

    Returns:
        The placed object, or None after ``rules.max_retries`` failed positions.
    """
    for _ in range(rules.max_retries):
        x, y = rng.uniform(-rules.extent, rules.extent, 2)
        obj = SceneObject(**attributes, x=float(x), y=float(y),
                          rotation=float(rng.uniform(0, 360)))
        if (region is None or region(obj.x, obj.y)) and placement_ok(obj, others, camera, rules):
            return obj
    return None


def visible_counts(scene: Scene, rules: SamplingRules = SamplingRules()) -> np.ndarray:
    """(K,) visible pixels of each object in the ``rules.check_size`` id render."""
    ids = object_ids(scene, rules.check_size)
    return np.bincount(ids.ravel() + 1, minlength=len(scene) + 1)[1:]


def all_visible(scene: Scene, rules: SamplingRules = SamplingRules()) -> bool:
    """Whether every object shows at least ``rules.min_pixels`` pixels."""
    return bool((visible_counts(scene, rules) >= rules.min_pixels).all())


def rule_violations(scene: Scene, rules: SamplingRules = SamplingRules(),
                    margin_camera: Camera | None = None) -> list[str]:
    """Every broken rule, one line each (empty for a valid scene).

    Args:
        margin_camera: the camera whose axes the margins are measured on (default the
            scene's; a CLEVR-Change after scene keeps the margins of the before camera it was
            placed with, while its visibility is checked from its own, moved camera).
    """
    out = []
    axes_camera = margin_camera or scene.camera
    if not rules.min_objects <= len(scene) <= rules.max_objects:
        out.append(f"{len(scene)} objects, not {rules.min_objects}-{rules.max_objects}")
    for i, o in enumerate(scene.objects):
        if max(abs(o.x), abs(o.y)) > rules.extent:
            out.append(f"object {i} outside the [-{rules.extent}, {rules.extent}]^2 region")
        for j in range(i):
            if not placement_ok(o, [scene.objects[j]], axes_camera, rules):
                out.append(f"objects {j} and {i} too close (distance or margin)")
    counts = visible_counts(scene, rules)
    out += [f"object {i} shows {c} pixels < {rules.min_pixels}"
            for i, c in enumerate(counts) if c < rules.min_pixels]
    return out


def sample_scene(seed: int | np.random.Generator, rules: SamplingRules = SamplingRules(),
                 camera: Camera | None = None, lighting: Lighting | None = None,
                 n_objects: int | None = None) -> Scene:
    """A random scene by CLEVR's rules.

    Args:
        seed: an int (the same int always gives the same scene) or a numpy Generator.
        rules: the rules (CLEVR's by default).
        camera, lighting: default CLEVR-like ones when None.
        n_objects: a fixed object count instead of a uniform one in the rules' range.

    Returns:
        A :class:`Scene` whose objects all keep the rules and are all visible.
    """
    rng = as_rng(seed)
    camera = camera or Camera()
    lighting = lighting or Lighting()
    while True:
        n = n_objects or int(rng.integers(rules.min_objects, rules.max_objects + 1))
        objects: list[SceneObject] = []
        for _ in range(n):
            obj = place(random_attributes(rng), objects, camera, rng, rules)
            if obj is None:
                break
            objects.append(obj)
        if len(objects) < n:
            continue
        scene = Scene(tuple(objects), camera, lighting)
        if all_visible(scene, rules):
            return scene


__all__ = ["ATTRIBUTES", "SamplingRules", "all_visible", "as_rng", "place", "placement_ok",
           "random_attributes", "rule_violations", "sample_scene", "visible_counts"]
