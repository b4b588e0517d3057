"""Reading scenes back from images: the scene parser's targets, decoding and metric.

The network (:class:`engine.models.scene_parser.SceneParserNet`, CenterNet-style) predicts on
a stride-4 grid an object-centre heatmap, the centre's sub-cell offset and the four attribute
classifiers. Here:

* :func:`encode_targets` turns scenes into its training targets: a Gaussian peak at each
  object's projected 3-D centre (Zhou et al., 2019), the offset there, and the attribute
  labels on the 3x3 cells around the centre (nearer objects win shared cells);
* :func:`parser_loss`: CenterNet's penalty-reduced focal loss on the heatmap + L1 on the offsets
  + cross-entropy of the attributes;
* :func:`decode`: peaks of the heatmap (3x3 max-pool, threshold) -> objects. Each object's
  ground position comes from geometry, not regression: the camera ray through its centre
  pixel meets the plane at the centre height its predicted shape and size imply;
* :func:`match_objects` / :func:`score_parses`: object-level precision, recall and F1. A
  predicted object matches a true one when all four attributes agree and its ground position
  is within ``tol`` (0.5 scene units; the closest two objects of a scene are 0.95 apart);
  predictions and truths are paired by Hungarian matching on distance
  (``scipy.optimize.linear_sum_assignment``).

:class:`SceneParser` wraps a trained network: ``SceneParser(net)(images)`` -> objects.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from engine.scenes.scene import ATTRIBUTES, SIZES, Camera, Scene, SceneObject

#: Default ground-position tolerance of a match (scene units).
MATCH_TOL = 0.5
#: Default heatmap threshold of a detection.
THRESHOLD = 0.3
ATTR_NAMES = tuple(ATTRIBUTES)


def _centre_height(shape: str, size: str) -> float:
    r = SIZES[size]
    return r / np.sqrt(2) if shape == "cube" else r


# --- targets and loss --------------------------------------------------------------------------

@dataclass
class Targets:
    """Training targets of a batch of scenes on an (h, w) grid.

    Attributes:
        heatmap: (N, h, w) float32 in [0, 1], 1 at object centres.
        offset: (N, 2, h, w) float32 centre minus cell corner (cells), at centre cells.
        center: (N, h, w) bool: cells holding an object centre.
        labels: (N, 4, h, w) int64 class index per attribute (:data:`ATTR_NAMES` order),
            -1 where no object is.
        weight: (N, h, w) float32 weight of the attribute loss (1 at centres, 0.5 around).
    """

    heatmap: np.ndarray
    offset: np.ndarray
    center: np.ndarray
    labels: np.ndarray
    weight: np.ndarray

    def __getitem__(self, idx) -> Targets:
        return Targets(self.heatmap[idx], self.offset[idx], self.center[idx], self.labels[idx],
                       self.weight[idx])

    def torch(self) -> dict[str, torch.Tensor]:
        return {"heatmap": torch.from_numpy(self.heatmap).float(),
                "offset": torch.from_numpy(self.offset).float(),
                "center": torch.from_numpy(self.center),
                "labels": torch.from_numpy(self.labels).long(),
                "weight": torch.from_numpy(self.weight).float()}


def encode_targets(scenes: list[Scene], size: int = 128, stride: int = 4) -> Targets:
    """CenterNet targets for ``scenes`` rendered at ``size`` x ``size``.

    The Gaussian's sigma is a third of the object's apparent radius (in cells), at least 0.7.
    """
    g = size // stride
    n = len(scenes)
    heat = np.zeros((n, g, g), np.float32)
    offset = np.zeros((n, 2, g, g), np.float32)
    center = np.zeros((n, g, g), bool)
    labels = np.full((n, 4, g, g), -1, np.int64)
    weight = np.zeros((n, g, g), np.float32)
    yy, xx = np.mgrid[0:g, 0:g].astype(np.float32)
    for b, scene in enumerate(scenes):
        if not len(scene):
            continue
        cam = scene.camera
        uv, depth = cam.project(np.array([o.center for o in scene.objects]), size, size)
        focal = size / (2 * cam.tan_half_fov)
        for k in np.argsort(-depth):  # far to near: nearer objects overwrite shared cells
            o = scene.objects[k]
            cx, cy = uv[k] / stride
            ix, iy = int(np.clip(np.floor(cx), 0, g - 1)), int(np.clip(np.floor(cy), 0, g - 1))
            sigma = max(0.7, o.radius * focal / depth[k] / stride / 3)
            gauss = np.exp(-((xx - cx + 0.5) ** 2 + (yy - cy + 0.5) ** 2) / (2 * sigma ** 2))
            heat[b] = np.maximum(heat[b], gauss)
            heat[b, iy, ix] = 1.0
            center[b, iy, ix] = True
            offset[b, :, iy, ix] = cx - ix, cy - iy
            y0, y1, x0, x1 = max(iy - 1, 0), min(iy + 2, g), max(ix - 1, 0), min(ix + 2, g)
            for a, name in enumerate(ATTR_NAMES):
                labels[b, a, y0:y1, x0:x1] = ATTRIBUTES[name].index(getattr(o, name))
            weight[b, y0:y1, x0:x1] = 0.5
            weight[b, iy, ix] = 1.0
    return Targets(heat, offset, center, labels, weight)


def parser_loss(maps: dict[str, torch.Tensor], t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CenterNet's losses.

    Args:
        maps: the network's output (:class:`~engine.models.scene_parser.SceneParserNet`).
        t: :meth:`Targets.torch` of the batch.

    Returns:
        dict with "heatmap" (focal, alpha 2, beta 4, per object), "offset" (L1 at centres),
        "attributes" (weighted cross-entropy, summed over the four) and their sum "total".
    """
    logits = maps["heatmap"][:, 0]
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    gt = t["heatmap"]
    pos = t["center"].float()
    n_obj = pos.sum().clamp(min=1)
    focal = -(pos * (1 - p) ** 2 * torch.log(p) +
              (1 - pos) * (1 - gt) ** 4 * p ** 2 * torch.log(1 - p)).sum() / n_obj
    off = (F.l1_loss(maps["offset"], t["offset"], reduction="none").sum(1) * pos).sum() / n_obj
    w = t["weight"]
    attr = logits.new_zeros(())
    for a, name in enumerate(ATTR_NAMES):
        ce = F.cross_entropy(maps[name], t["labels"][:, a].clamp(min=0), reduction="none")
        attr = attr + (ce * w).sum() / w.sum().clamp(min=1)
    return {"heatmap": focal, "offset": off, "attributes": attr, "total": focal + off + attr}


# --- decoding ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParsedObject:
    """One object read from an image.

    Attributes:
        object: its attributes and ground position (rotation 0: not predicted).
        score: heatmap confidence in [0, 1].
        uv: (col, row) of its centre in the image, pixels.
    """

    object: SceneObject
    score: float
    uv: tuple[float, float]

    def to_dict(self) -> dict:
        o = self.object
        return {**o.attributes(), "x": round(o.x, 3), "y": round(o.y, 3),
                "score": round(self.score, 3), "uv": [round(v, 1) for v in self.uv]}


@torch.no_grad()
def decode(maps: dict[str, torch.Tensor], image_size: tuple[int, int], camera: Camera = Camera(),
           threshold: float = THRESHOLD, max_objects: int = 16) -> list[list[ParsedObject]]:
    """Objects of every image of a batch from the network's maps.

    Args:
        maps: the network's output for (B, 3, H, W) images.
        image_size: (H, W) the maps' images had, pixels.
        camera: the camera the images were taken with (positions are found through it).
        threshold: least heatmap probability of a detection.
        max_objects: most objects per image.

    Returns:
        B lists of :class:`ParsedObject`, highest score first.
    """
    heat = torch.sigmoid(maps["heatmap"][:, 0])
    peak = heat == F.max_pool2d(heat[:, None], 3, 1, 1)[:, 0]
    heat = heat * peak
    b, g_h, g_w = heat.shape
    h, w = image_size
    sy, sx = h / g_h, w / g_w
    out = []
    for i in range(b):
        scores, idx = heat[i].flatten().topk(min(max_objects, g_h * g_w))
        keep = scores >= threshold
        scores, idx = scores[keep].numpy(), idx[keep].numpy()
        iy, ix = np.divmod(idx, g_w)
        off = maps["offset"][i, :, iy, ix].numpy()                      # (2, n)
        uv = np.stack([(ix + off[0]) * sx, (iy + off[1]) * sy], -1)     # (n, 2) pixels
        attrs = {name: maps[name][i, :, iy, ix].argmax(0).numpy() for name in ATTR_NAMES}
        objs = []
        for k in range(len(idx)):
            values = {name: ATTRIBUTES[name][int(attrs[name][k])] for name in ATTR_NAMES}
            z = _centre_height(values["shape"], values["size"])
            p = camera.ground_point(uv[k:k + 1], h, w, z)[0]
            if not np.isfinite(p).all():
                continue
            objs.append(ParsedObject(SceneObject(**values, x=float(p[0]), y=float(p[1])),
                                     float(scores[k]), (float(uv[k, 0]), float(uv[k, 1]))))
        out.append(objs)
    return out


class SceneParser:
    """A trained scene parser: images -> objects (read-only; safe to share between threads).

    Args:
        net: a :class:`~engine.models.scene_parser.SceneParserNet` (eval mode).
        camera: the camera the images are taken with (CLEVR's default camera).
        threshold: heatmap threshold of a detection.
        size: the side images are resized to (the training resolution).
    """

    def __init__(self, net, camera: Camera = Camera(), threshold: float = THRESHOLD,
                 size: int = 128):
        self.net, self.camera, self.threshold, self.size = net.eval(), camera, threshold, size

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        from PIL import Image
        arr = np.asarray(images)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"expected (B, H, W, 3) or (H, W, 3) uint8 images, got "
                             f"{arr.dtype} {arr.shape}")
        if arr.shape[1:3] != (self.size, self.size):
            arr = np.stack([np.asarray(Image.fromarray(a).resize(
                (self.size, self.size), Image.Resampling.BILINEAR)) for a in arr])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0

    @torch.no_grad()
    def __call__(self, images: np.ndarray, batch_size: int = 64) -> list[list[ParsedObject]]:
        """Parse images.

        Args:
            images: (B, H, W, 3) or (H, W, 3) uint8 RGB renders of the scene world (any size;
                resized to ``size``; square images, as rendered).

        Returns:
            One list of :class:`ParsedObject` per image.

        Raises:
            ValueError: not uint8 RGB images.
        """
        x = self._tensor(images)
        out = []
        for a in range(0, len(x), batch_size):
            out += decode(self.net(x[a:a + batch_size]), (self.size, self.size), self.camera,
                          self.threshold)
        return out

    def parse_scene(self, image: np.ndarray) -> Scene:
        """The scene one image shows (objects only; default lights)."""
        return Scene(tuple(p.object for p in self(image)[0]), self.camera)


# --- metric ------------------------------------------------------------------------------------

def _distances(pred: list[SceneObject], true: list[SceneObject]) -> np.ndarray:
    if not pred or not true:
        return np.zeros((len(pred), len(true)))
    a = np.array([[o.x, o.y] for o in pred])
    b = np.array([[o.x, o.y] for o in true])
    return np.linalg.norm(a[:, None] - b[None], axis=-1)


def match_objects(pred: list[SceneObject], true: list[SceneObject], tol: float = MATCH_TOL,
                  attributes: bool = True) -> list[tuple[int, int]]:
    """Pairs (pred index, true index) of matched objects, by Hungarian matching on ground
    distance among the pairs within ``tol`` (and, if ``attributes``, agreeing on all four)."""
    from scipy.optimize import linear_sum_assignment
    d = _distances(pred, true)
    if d.size == 0:
        return []
    ok = d <= tol
    if attributes:
        same = np.array([[p.attributes() == t.attributes() for t in true] for p in pred])
        ok &= same
    cost = np.where(ok, d, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if ok[r, c]]


@dataclass(frozen=True)
class ParseScore:
    """Object-level scores over a set of images.

    Attributes:
        tp, n_pred, n_true: matched objects, predicted objects, true objects.
        precision, recall, f1: ``tp / n_pred``, ``tp / n_true``, their harmonic mean.
        position_error: mean ground distance of the matched pairs (scene units).
        attribute_accuracy: per attribute, accuracy over the pairs matched by position only.
        exact_scenes: share of images whose objects are all found and none extra.
    """

    tp: int
    n_pred: int
    n_true: int
    precision: float
    recall: float
    f1: float
    position_error: float
    attribute_accuracy: dict[str, float]
    exact_scenes: float

    def as_dict(self) -> dict:
        return {"tp": self.tp, "n_pred": self.n_pred, "n_true": self.n_true,
                "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "position_error": round(self.position_error, 4),
                "attribute_accuracy": {k: round(v, 4) for k, v in self.attribute_accuracy.items()},
                "exact_scenes": round(self.exact_scenes, 4)}


def score_parses(preds: list[list[SceneObject]], trues: list[list[SceneObject]],
                 tol: float = MATCH_TOL) -> ParseScore:
    """Micro-averaged object precision/recall/F1 of predicted scenes against true ones.

    Raises:
        ValueError: the two lists differ in length.
    """
    if len(preds) != len(trues):
        raise ValueError(f"{len(preds)} predicted scenes but {len(trues)} true ones")
    tp = n_pred = n_true = exact = 0
    dist_sum = 0.0
    attr_ok = {a: 0 for a in ATTR_NAMES}
    n_pos = 0
    for pred, true in zip(preds, trues):
        pred, true = list(pred), list(true)
        pairs = match_objects(pred, true, tol)
        tp += len(pairs)
        n_pred += len(pred)
        n_true += len(true)
        exact += len(pairs) == len(pred) == len(true)
        d = _distances(pred, true)
        dist_sum += sum(d[i, j] for i, j in pairs)
        for i, j in match_objects(pred, true, tol, attributes=False):
            n_pos += 1
            for a in ATTR_NAMES:
                attr_ok[a] += getattr(pred[i], a) == getattr(true[j], a)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ParseScore(tp, n_pred, n_true, precision, recall, f1,
                      dist_sum / tp if tp else float("nan"),
                      {a: attr_ok[a] / n_pos if n_pos else float("nan") for a in ATTR_NAMES},
                      exact / len(preds) if preds else 0.0)


__all__ = ["ATTR_NAMES", "MATCH_TOL", "ParseScore", "ParsedObject", "SceneParser", "THRESHOLD",
           "Targets", "decode", "encode_targets", "match_objects", "parser_loss", "score_parses"]
