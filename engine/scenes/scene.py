"""What a scene is: CLEVR's objects on a ground plane, the camera that sees them and the lights.

The vocabulary and sizes are CLEVR's (Johnson et al., CVPR 2017, ``properties.json`` of
``clevr-dataset-gen``): three shapes, eight colours with their RGB values, two sizes, two
materials. Coordinates are CLEVR's too: the ground is the plane ``z = 0``, ``x, y`` are in
scene units (objects are placed in ``[-3, 3]^2``), ``z`` points up; an object's ``rotation`` is
about the vertical axis, in degrees (it only shows on cubes).

An object of size radius ``r`` (0.7 large, 0.35 small) is, as in CLEVR's Blender scene:

* sphere: radius ``r``, centre at height ``r``;
* cylinder: radius ``r``, height ``2 r``, standing on the ground;
* cube: side ``2 r / sqrt(2)`` (CLEVR shrinks cubes by sqrt(2) so that their footprint's
  half-diagonal is ``r``), standing on the ground.

So every object's footprint on the ground fits in a disc of radius ``r`` around ``(x, y)``.

Everything here is plain data with JSON round-trips (``Scene.to_dict`` / ``Scene.from_dict``,
``to_json`` / ``from_json``); sampling is in :mod:`engine.scenes.sampling`, drawing in
:mod:`engine.scenes.render`.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

SHAPES = ("cube", "sphere", "cylinder")
#: CLEVR's colours and their RGB values (0-255), in CLEVR's order.
COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87), "red": (173, 35, 35), "blue": (42, 75, 215), "green": (29, 105, 20),
    "brown": (129, 74, 25), "purple": (129, 38, 192), "cyan": (41, 208, 208),
    "yellow": (255, 238, 51)}
COLOR_NAMES = tuple(COLORS)
#: Size name -> radius ``r`` in scene units (CLEVR's values).
SIZES: dict[str, float] = {"large": 0.7, "small": 0.35}
SIZE_NAMES = tuple(SIZES)
MATERIALS = ("rubber", "metal")
#: Attribute name -> its values, in the order the parser's classifiers use.
ATTRIBUTES: dict[str, tuple[str, ...]] = {"shape": SHAPES, "color": COLOR_NAMES,
                                          "size": SIZE_NAMES, "material": MATERIALS}


def _check(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class SceneObject:
    """One CLEVR object.

    Attributes:
        shape: "cube", "sphere" or "cylinder".
        color: one of :data:`COLOR_NAMES`.
        size: "large" or "small".
        material: "rubber" or "metal".
        x, y: centre of its footprint on the ground plane, scene units.
        rotation: about the vertical axis, degrees in [0, 360).

    Raises:
        ValueError: an attribute value outside CLEVR's vocabulary, or a non-finite position.
    """

    shape: str
    color: str
    size: str
    material: str
    x: float = 0.0
    y: float = 0.0
    rotation: float = 0.0

    def __post_init__(self):
        for name, valid in ATTRIBUTES.items():
            _check(name, getattr(self, name), valid)
        if not all(math.isfinite(v) for v in (self.x, self.y, self.rotation)):
            raise ValueError(f"object position/rotation must be finite, got "
                             f"({self.x}, {self.y}, {self.rotation})")

    @property
    def radius(self) -> float:
        """``r``: the radius of the disc holding its footprint (0.7 or 0.35)."""
        return SIZES[self.size]

    @property
    def half_height(self) -> float:
        """Half its height: ``r`` (sphere, cylinder) or ``r / sqrt(2)`` (cube)."""
        return self.radius / math.sqrt(2) if self.shape == "cube" else self.radius

    @property
    def center(self) -> np.ndarray:
        """(3,) float64: its 3-D centre ``(x, y, half_height)``."""
        return np.array([self.x, self.y, self.half_height])

    @property
    def rgb(self) -> tuple[int, int, int]:
        """Its colour's CLEVR RGB value (0-255)."""
        return COLORS[self.color]

    def attributes(self) -> dict[str, str]:
        """``{"shape", "color", "size", "material"}`` -> value."""
        return {k: getattr(self, k) for k in ATTRIBUTES}

    def name(self) -> str:
        """CLEVR's word order: "large red metal cube"."""
        return f"{self.size} {self.color} {self.material} {self.shape}"

    def moved(self, x: float, y: float) -> SceneObject:
        return replace(self, x=float(x), y=float(y))


@functools.lru_cache(maxsize=64)
def _basis(position: tuple, look_at: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = np.subtract(look_at, position).astype(np.float64)
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    for v in (f, r, u):
        v.setflags(write=False)
    return f, r, u


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking at ``look_at`` with the world's ``z`` axis up.

    The default is CLEVR's camera (``base_scene.blend``: at (7.36, -6.93, 4.96), looking at the
    origin, 26 degrees down). CLEVR renders 480x320 with a 49-degree horizontal field of view;
    we render square images with a 43.6-degree field of view (``tan_half_fov`` 0.4), which
    frames the same ``[-3, 3]^2`` region with a little more floor above and below.

    Attributes:
        position: camera centre (x, y, z), scene units.
        look_at: the point at the image centre.
        tan_half_fov: tangent of half the field of view (both axes; pixels are square).
    """

    position: tuple[float, float, float] = (7.3589, -6.9258, 4.9583)
    look_at: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tan_half_fov: float = 0.4

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit (3,) vectors ``forward, right, up`` of the image plane."""
        return _basis(self.position, self.look_at)

    def ray_directions(self, height: int, width: int) -> np.ndarray:
        """(height, width, 3) float64 unit directions through the pixel centres.

        Pixel ``(row, col)`` covers ``[col, col + 1) x [row, row + 1)``; the image spans
        ``tan_half_fov`` horizontally (and ``tan_half_fov * height / width`` vertically).
        """
        f, r, u = self.basis()
        t = self.tan_half_fov
        xs = ((np.arange(width) + 0.5) / width * 2 - 1) * t
        ys = (1 - (np.arange(height) + 0.5) / height * 2) * t * height / width
        d = f + xs[None, :, None] * r + ys[:, None, None] * u
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def project(self, points: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates of 3-D points.

        Args:
            points: (N, 3) scene coordinates.
            height, width: image size in pixels.

        Returns:
            ``(uv, depth)``: (N, 2) float64 ``(col, row)`` in pixels (continuous, 0 at the
            image's left/top edge) and (N,) distance along the view axis (> 0 in front).
        """
        f, r, u = self.basis()
        d = np.asarray(points, np.float64) - np.asarray(self.position)
        z = d @ f
        t = self.tan_half_fov
        col = ((d @ r) / z / t + 1) / 2 * width
        row = (1 - (d @ u) / z / (t * height / width)) / 2 * height
        return np.stack([col, row], -1), z

    def ground_point(self, uv: np.ndarray, height: int, width: int,
                     z: float | np.ndarray = 0.0) -> np.ndarray:
        """Where the rays through pixel coordinates ``uv`` meet the plane at height ``z``.

        The inverse of :meth:`project` for points of known height (an object's centre height).

        Args:
            uv: (N, 2) ``(col, row)`` pixel coordinates.
            z: plane height, scalar or (N,).

        Returns:
            (N, 3) scene points (NaN where the ray does not go down to the plane).
        """
        f, r, u = self.basis()
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        t = self.tan_half_fov
        xs = (uv[:, 0] / width * 2 - 1) * t
        ys = (1 - uv[:, 1] / height * 2) * t * height / width
        d = f + xs[:, None] * r + ys[:, None] * u
        o = np.asarray(self.position)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (np.asarray(z) - o[2]) / d[:, 2]
        p = o + s[:, None] * d
        p[~(s > 0)] = np.nan
        return p

    def directions(self) -> dict[str, np.ndarray]:
        """CLEVR's ground-plane directions seen from this camera: "left", "right", "front",
        "behind" -> unit (3,) vectors with z = 0 ("behind" points away from the camera)."""
        f, r, _ = self.basis()
        behind = np.array([f[0], f[1], 0.0])
        behind /= np.linalg.norm(behind)
        right = np.array([r[0], r[1], 0.0])
        right /= np.linalg.norm(right)
        return {"behind": behind, "front": -behind, "right": right, "left": -right}

    def jittered(self, rng: np.random.Generator, amount: float = 0.5) -> Camera:
        """A copy moved by up to ``amount`` scene units per axis (CLEVR's ``camera_jitter``),
        still looking at the same point."""
        shift = rng.uniform(-amount, amount, 3)
        return replace(self, position=tuple(float(v) for v in np.add(self.position, shift)))


@dataclass(frozen=True)
class Lighting:
    """The three lights of CLEVR's scene and the ambient (sky) term.

    Attributes:
        key_position: the key light (casts the shadows), a disc light of radius ``key_radius``
            facing the scene, at this point (scene units).
        key_intensity: its strength (about 1 for CLEVR's look).
        key_radius: radius of the key light (the shadows' softness), scene units.
        fill_direction, fill_intensity: a directional fill light (no shadows), from where it
            shines (unit vector towards the light).
        back_direction, back_intensity: a directional rim light from behind the objects.
        ambient: sky light reaching every point.
    """

    key_position: tuple[float, float, float] = (9.0, -3.5, 6.0)
    key_intensity: float = 0.6
    key_radius: float = 1.0
    fill_direction: tuple[float, float, float] = (-0.35, -0.85, 0.4)
    fill_intensity: float = 0.15
    back_direction: tuple[float, float, float] = (-0.5, 0.6, 0.6)
    back_intensity: float = 0.15
    ambient: float = 0.18

    def jittered(self, rng: np.random.Generator, amount: float = 1.0) -> Lighting:
        """A copy with the key light moved by up to ``amount`` per axis (CLEVR's
        ``key_light_jitter``) and every intensity scaled by a factor in [0.75, 1.25]."""
        s = rng.uniform(0.75, 1.25, 4)
        return replace(
            self, key_position=tuple(float(v) for v in np.add(self.key_position,
                                                               rng.uniform(-amount, amount, 3))),
            key_intensity=self.key_intensity * float(s[0]),
            fill_intensity=self.fill_intensity * float(s[1]),
            back_intensity=self.back_intensity * float(s[2]), ambient=self.ambient * float(s[3]))


@dataclass(frozen=True)
class Scene:
    """Objects on the ground, seen by ``camera`` under ``lighting``.

    Attributes:
        objects: the objects (a tuple; their index is the object id used by masks).
        camera: the camera (CLEVR's by default).
        lighting: the lights (CLEVR-like by default).
    """

    objects: tuple[SceneObject, ...]
    camera: Camera = field(default_factory=Camera)
    lighting: Lighting = field(default_factory=Lighting)

    def __post_init__(self):
        object.__setattr__(self, "objects", tuple(self.objects))

    def __len__(self) -> int:
        return len(self.objects)

    def replace_object(self, index: int, obj: SceneObject | None) -> Scene:
        """A copy with object ``index`` replaced (or removed when ``obj`` is None)."""
        objs = list(self.objects)
        if obj is None:
            objs.pop(index)
        else:
            objs[index] = obj
        return replace(self, objects=tuple(objs))

    def with_object(self, obj: SceneObject) -> Scene:
        """A copy with ``obj`` appended (its id is ``len(self)``)."""
        return replace(self, objects=self.objects + (obj,))

    def to_dict(self) -> dict:
        """JSON-ready dict: ``{"objects": [...], "camera": {...}, "lighting": {...}}``."""
        return {"objects": [asdict(o) for o in self.objects], "camera": asdict(self.camera),
                "lighting": asdict(self.lighting)}

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        """Inverse of :meth:`to_dict` (camera and lighting may be left out: defaults).

        Raises:
            ValueError: an unknown attribute value or a malformed entry.
        """
        try:
            objects = tuple(SceneObject(**o) for o in d["objects"])
            camera = Camera(**{k: tuple(v) if isinstance(v, list) else v
                               for k, v in d.get("camera", {}).items()})
            lighting = Lighting(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in d.get("lighting", {}).items()})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a scene dict: {exc}") from None
        return cls(objects, camera, lighting)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Scene:
        return cls.from_dict(json.loads(text))
