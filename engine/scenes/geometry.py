"""Ray geometry of the scene world: ray directions, the objects as ray-testable bodies
(analytic ray-sphere, ray-cylinder and ray-box intersection, bevel-rounded normals) and the
screen rectangles used to cull rays per object. Used by :mod:`engine.scenes.render`.

Vectors are (3, N) float32 arrays (rows x, y, z), which keeps numpy's element-wise work
contiguous.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from engine.scenes.scene import Camera, SceneObject

#: Least ray distance of a hit (scene units): a ray starting on a surface does not hit it.
EPS = 1e-3
#: Bevel radius of cubes and cylinders, as a fraction of their half-size.
BEVEL = 0.14
_F = np.float32


@functools.lru_cache(maxsize=16)
def rays(camera: Camera, height: int, width: int) -> np.ndarray:
    """(3, height * width) float32 unit ray directions (cached per camera and size)."""
    d = np.ascontiguousarray(camera.ray_directions(height, width).astype(_F).reshape(-1, 3).T)
    d.setflags(write=False)
    return d


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product of (3, N) arrays (or a (3,) / (3, 1) vector): (N,)."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def unit(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(3, N) unit vectors and (N,) lengths."""
    n = np.sqrt(dot(a, a))
    return a / np.maximum(n, 1e-12), n


# --- geometry --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Body:
    """An object's geometry, ready for ray tests. Vectors are (3, N) arrays (x, y, z rows)."""

    shape: str
    c: np.ndarray     # (3, 1) centre
    r: float          # radius (sphere, cylinder) or half-side (cube)
    h: float          # half height
    cos: float
    sin: float

    @classmethod
    def of(cls, obj: SceneObject) -> Body:
        a = np.deg2rad(obj.rotation)
        r = obj.half_height if obj.shape == "cube" else obj.radius
        return cls(obj.shape, obj.center.astype(_F).reshape(3, 1), r, obj.half_height,
                   float(np.cos(a)), float(np.sin(a)))

    @property
    def bound(self) -> float:
        """Radius of a sphere around the centre holding the object."""
        e = self.r * (np.sqrt(2) if self.shape == "cube" else 1.0)
        return float(np.sqrt(2 * e * e + self.h * self.h))

    def corners(self, grow: float = 0.0) -> np.ndarray:
        """(8, 3) corners of an axis-aligned box holding the object (grown sideways)."""
        if grow == 0.0:
            return self._corners
        return self._box(grow)

    @functools.cached_property
    def _corners(self) -> np.ndarray:
        return self._box(0.0)

    def _box(self, grow: float) -> np.ndarray:
        e = self.r * (np.sqrt(2) if self.shape == "cube" else 1.0) + grow
        xs, ys, zs = np.meshgrid([-e, e], [-e, e], [-self.h, self.h], indexing="ij")
        return self.c[:, 0] + np.stack([xs.ravel(), ys.ravel(), zs.ravel()], -1)

    def _local(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rotate world x, y into the object's frame (about z by -rotation)."""
        return self.cos * x + self.sin * y, -self.sin * x + self.cos * y

    def intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Distance along each ray to the first hit beyond EPS, ``inf`` for a miss.

        Args:
            o: (3, 1) or (3, N) float32 origins. d: (3, N) float32 unit directions.

        Returns:
            (N,) float32.
        """
        oc = o - self.c
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.shape == "sphere":
                b = dot(oc, d)
                disc = b * b - (dot(oc, oc) - self.r * self.r)
                t = -b - np.sqrt(np.maximum(disc, 0))
                return np.where((disc >= 0) & (t > EPS), t, np.inf).astype(_F)
            if self.shape == "cylinder":
                ox, oy, oz = oc
                dx, dy, dz = d
                a = dx * dx + dy * dy
                b = ox * dx + oy * dy
                disc = b * b - a * (ox * ox + oy * oy - self.r * self.r)
                ts = (-b - np.sqrt(np.maximum(disc, 0))) / a
                side = (disc >= 0) & (ts > EPS) & (np.abs(oz + ts * dz) <= self.h)
                tt = (self.h - oz) / dz
                px, py = ox + tt * dx, oy + tt * dy
                top = (tt > EPS) & (px * px + py * py <= self.r * self.r)
                return np.minimum(np.where(side, ts, np.inf), np.where(top, tt, np.inf)).astype(_F)
            ox, oy = self._local(oc[0], oc[1])
            dx, dy = self._local(d[0], d[1])
            tmin = np.full(d.shape[1], -np.inf, _F)
            tmax = np.full(d.shape[1], np.inf, _F)
            for oa, da in ((ox, dx), (oy, dy), (oc[2], d[2])):
                inv = 1.0 / np.where(np.abs(da) < 1e-9, 1e-9, da)
                t1, t2 = (-self.r - oa) * inv, (self.r - oa) * inv
                tmin = np.maximum(tmin, np.minimum(t1, t2))
                tmax = np.minimum(tmax, np.maximum(t1, t2))
            return np.where((tmax >= tmin) & (tmin > EPS), tmin, np.inf).astype(_F)

    def normal(self, p: np.ndarray) -> np.ndarray:
        """(3, N) unit normals at surface points ``p`` (3, N), bevelled edges rounded."""
        q = p - self.c
        if self.shape == "sphere":
            return q / self.r
        b = BEVEL * self.r
        if self.shape == "cylinder":
            rho = np.sqrt(q[0] ** 2 + q[1] ** 2) + 1e-9
            qr = np.maximum(rho - (self.r - b), 0) / rho
            n = np.stack([q[0] * qr, q[1] * qr, np.maximum(q[2] - (self.h - b), 0)])
        else:
            lx, ly = self._local(q[0], q[1])
            lim = self.r - b
            nx, ny = lx - np.clip(lx, -lim, lim), ly - np.clip(ly, -lim, lim)
            n = np.stack([self.cos * nx - self.sin * ny, self.sin * nx + self.cos * ny,
                          q[2] - np.clip(q[2], -lim, lim)])
        return unit(n)[0]


def screen_rect(points: np.ndarray, camera: Camera, h: int, w: int) -> tuple[int, int, int, int] | None:
    """Pixel rectangle ``(r0, r1, c0, c1)`` holding the projection of ``points`` (N, 3)."""
    uv, z = camera.project(points, h, w)
    if (z <= 1e-3).any():
        return 0, h, 0, w
    c0, r0 = np.floor(uv.min(0)).astype(int) - 1
    c1, r1 = np.ceil(uv.max(0)).astype(int) + 1
    r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
    return None if r0 >= r1 or c0 >= c1 else (r0, r1, c0, c1)


def flat_indices(rect: tuple[int, int, int, int], w: int) -> np.ndarray:
    r0, r1, c0, c1 = rect
    return (np.arange(r0, r1)[:, None] * w + np.arange(c0, c1)[None, :]).ravel()
