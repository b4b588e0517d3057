"""Measuring generated images like GeNeVA (El-Nouby et al., ICCV 2019) does: an object
reader looks at each generated image and its objects are compared with the objects the text
asked for. GeNeVA's reader is an object detector trained on i-CLEVR; ours is the scene world's
parser (:func:`engine.factory.scene_parser`, object F1 0.977 on 128x128 renders,
docs/scenes.md).

Per held-out description (test split, seeds 2,000,000+; scenes of 1-3 objects; the first of
the scene's descriptions):

* **object precision / recall / F1** (GeNeVA's metric): an object the parser reads counts as
  right when the text asked for an object with the same four attributes (shape, colour, size,
  material); multisets, micro-averaged over all images. Position is not compared (the text
  fixes only relations). ``f1_shape_colour`` counts an object right when shape and colour
  agree: GeNeVA's i-CLEVR detector has 24 classes (3 shapes x 8 colours, README of
  Maluuba/GeNeVA), size and material are not part of its objects.
* **attribute accuracy on the objects found**: parsed and asked-for objects are paired by
  Hungarian matching on the number of agreeing attributes; the share of pairs that agree, per
  attribute.
* **relation accuracy**: for each relation the text states ("A is left of B") whose two
  objects the parser found with all four attributes, whether their parsed ground positions
  keep it (sign along the camera's axis; GeNeVA's rsim compares relation graphs likewise).
* **seconds per image** at the given steps (wall and CPU time of this process).

The same metrics on the real renders at the generator's resolution (the "renders" row) are
the ceiling this ruler allows: the parser was trained at 128x128 and reads a 32x32 image
upsampled.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from engine.scenes.language import DIRECTIONS
from engine.scenes.scene import SceneObject

ATTRS = ("size", "color", "material", "shape")


@dataclass(frozen=True)
class Phrase:
    """An object a description asks for (the four attributes; missing ones are None)."""

    size: str | None = None
    color: str | None = None
    material: str | None = None
    shape: str | None = None

    def key(self) -> tuple:
        return tuple(getattr(self, a) for a in ATTRS)

    def matches(self, obj: SceneObject) -> bool:
        return all(getattr(self, a) in (None, getattr(obj, a)) for a in ATTRS)


def read_description(words: tuple[str, ...] | list[str]) -> tuple[list[Phrase], list[tuple]]:
    """The objects and relations of a tokenised description (words as
    :func:`engine.generation.text.tokenize` keeps them: "large blue metal sphere left small
    yellow cube . ...").

    Returns:
        (objects, relations): each distinct object phrase once, in order; relations as
        ``(phrase a, direction, phrase b)`` with direction in left/right/front/behind.
    """
    from engine.models.scene_generator import WORDS
    kinds = {w: "shape" for w in WORDS[0:3]}
    kinds.update({w: "color" for w in WORDS[3:11]})
    kinds.update({w: "size" for w in WORDS[11:13]})
    kinds.update({w: "material" for w in WORDS[13:15]})
    objects: list[Phrase] = []
    relations: list[tuple] = []
    for sentence in " ".join(words).split("."):
        current: dict = {}
        phrases: list[Phrase] = []
        direction = None
        for w in sentence.split():
            if w in DIRECTIONS:
                direction = w
            elif w in kinds:
                current[kinds[w]] = w
                if kinds[w] == "shape":
                    phrases.append(Phrase(**current))
                    current = {}
        for p in phrases:
            if p not in objects:
                objects.append(p)
        if direction and len(phrases) == 2:
            relations.append((phrases[0], direction, phrases[1]))
    return objects, relations


def _holds(a: SceneObject, direction: str, b: SceneObject, camera) -> bool:
    v = camera.directions()[direction]
    return float((a.x - b.x) * v[0] + (a.y - b.y) * v[1]) > 0.0


def score_images(parsed: list[list[SceneObject]], wanted: list[list[SceneObject]],
                 relations: list[list[tuple]], camera=None) -> dict:
    """GeNeVA-style scores of parsed images against the asked-for objects and relations.

    Args:
        parsed: per image, the objects the parser read.
        wanted: per image, the objects the text asked for (all four attributes).
        relations: per image, ``(Phrase, direction, Phrase)`` triples the text states.

    Returns:
        precision, recall, f1 (all four attributes must agree), f1_shape_colour (only shape
        and colour, GeNeVA's 24 i-CLEVR classes), attribute_accuracy (per attribute), relation_accuracy,
        relations_checked, relations_stated, exact_images (share with every object right and
        none extra), counts.
    """
    from scipy.optimize import linear_sum_assignment
    from engine.scenes.scene import Camera
    camera = camera or Camera()
    tp = n_pred = n_true = exact = tp_sc = 0
    attr_ok, n_pairs = Counter(), 0
    rel_ok = rel_checked = rel_stated = 0
    for pred, true, rels in zip(parsed, wanted, relations):
        a = Counter(tuple(o.attributes().items()) for o in pred)
        b = Counter(tuple(o.attributes().items()) for o in true)
        hit = sum((a & b).values())
        tp, n_pred, n_true = tp + hit, n_pred + len(pred), n_true + len(true)
        exact += hit == len(pred) == len(true)
        tp_sc += sum((Counter((o.shape, o.color) for o in pred)
                      & Counter((o.shape, o.color) for o in true)).values())
        if pred and true:
            agree = np.array([[sum(getattr(p, k) == getattr(t, k) for k in ATTRS)
                               for t in true] for p in pred])
            rows, cols = linear_sum_assignment(-agree)
            for r, c in zip(rows, cols):
                n_pairs += 1
                for k in ATTRS:
                    attr_ok[k] += getattr(pred[r], k) == getattr(true[c], k)
        for pa, d, pb in rels:
            rel_stated += 1
            ca = [o for o in pred if pa.matches(o)]
            cb = [o for o in pred if pb.matches(o)]
            if not ca or not cb or (len(ca) == len(cb) == 1 and ca[0] is cb[0]):
                continue
            rel_checked += 1
            rel_ok += any(_holds(x, d, y, camera) for x in ca for y in cb if x is not y)
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    p_sc = tp_sc / n_pred if n_pred else 0.0
    r_sc = tp_sc / n_true if n_true else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "f1_shape_colour": round(2 * p_sc * r_sc / (p_sc + r_sc), 4) if p_sc + r_sc else 0.0,
            "attribute_accuracy": {k: round(attr_ok[k] / n_pairs, 4) if n_pairs else None
                                   for k in ATTRS},
            "relation_accuracy": round(rel_ok / rel_checked, 4) if rel_checked else None,
            "relations_checked": rel_checked, "relations_stated": rel_stated,
            "exact_images": round(exact / len(parsed), 4) if parsed else 0.0,
            "tp": tp, "n_pred": n_pred, "n_true": n_true, "images": len(parsed)}


def evaluate(pipe, parser, n: int = 200, steps: int | None = None, guidance: float | None = None,
             seed: int = 0, data_dir=None, log=None, renders: bool = True) -> dict:
    """Generate one image per held-out description (test scenes 0..n-1, image i with seed
    ``seed + i``), parse, score; also the real renders' scores (``renders``) and the speed.

    Returns:
        {"generated": scores, "renders": scores (ceiling), "seconds_per_image": ...,
         "cpu_seconds_per_image": ..., settings}.
    """
    import json
    from engine.generation import data as gdata
    from engine.generation.pipeline import DEFAULT_GUIDANCE, DEFAULT_STEPS
    from engine.scenes.scene import Scene
    steps = steps or DEFAULT_STEPS
    guidance = DEFAULT_GUIDANCE if guidance is None else guidance
    test = gdata.load("test", n, pipe.config.image_size, data_dir)
    images, wanted, rels = [], [], []
    wall = cpu = 0.0
    for i in range(n):
        text = json.loads(test["texts"][i])[0]
        scene = Scene.from_json(str(test["scenes"][i]))
        w0, c0 = time.perf_counter(), time.process_time()
        r = pipe(text, seed=seed + i, steps=steps, guidance=guidance)
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        images.append(r.image)
        wanted.append(list(scene.objects))
        rels.append(read_description(r.words)[1])
        if log and (i + 1) % 25 == 0:
            log(f"generated {i + 1}/{n} ({wall / (i + 1):.2f} s/image)")
    parsed = [[p.object for p in ps] for ps in parser(np.stack(images))]
    out = {"n": n, "steps": steps, "guidance": guidance, "seed": seed,
           "generated": score_images(parsed, wanted, rels),
           "seconds_per_image": round(wall / n, 3), "cpu_seconds_per_image": round(cpu / n, 3)}
    if renders:
        real = [[p.object for p in ps] for ps in parser(test["images"][:n])]
        out["renders"] = score_images(real, wanted, rels)
    return out


#: The sample grid's fixed prompts (one per row; seeds 0-3 across).
GRID_PROMPTS = (
    "a large blue metal sphere is left of a small yellow rubber cube.",
    "there is a large red rubber cylinder.",
    "a small green metal cube is in front of a large purple rubber sphere.",
    "a large cyan rubber cube is left of a small gray metal cylinder. a small gray metal "
    "cylinder is behind a large brown metal sphere.",
)


def sample_grid(pipe, prompts=GRID_PROMPTS, seeds=(0, 1, 2, 3), steps: int | None = None,
                guidance: float | None = None, cell: int = 96):
    """A PIL image: one row per prompt, one column per seed (each image upscaled to ``cell``
    pixels, nearest-neighbour, so the 32x32 pixels stay visible)."""
    from PIL import Image
    from engine.generation.pipeline import DEFAULT_GUIDANCE, DEFAULT_STEPS
    steps = steps or DEFAULT_STEPS
    guidance = DEFAULT_GUIDANCE if guidance is None else guidance
    grid = Image.new("RGB", (cell * len(seeds), cell * len(prompts)), "white")
    for r, text in enumerate(prompts):
        for c, s in enumerate(seeds):
            img = pipe(text, seed=s, steps=steps, guidance=guidance).image
            grid.paste(Image.fromarray(img).resize((cell, cell), Image.Resampling.NEAREST),
                       (c * cell, r * cell))
    return grid
