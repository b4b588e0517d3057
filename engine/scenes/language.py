"""Words for scenes: object phrases, CLEVR's spatial relations, unique referring expressions
and scene descriptions.

Relations are CLEVR's (``compute_all_relationships`` of ``clevr-dataset-gen``): seen from the
scene's camera, object ``a`` is *left of* object ``b`` when ``(p_a - p_b) . left > eps``, with
``left`` the camera's left axis on the ground (likewise "right", "front" = towards the camera,
"behind") and ``eps`` = 0.2 scene units. The sampler keeps every pair 0.4 apart on both axes,
so in a sampled scene every pair is related on both axes.

A referring expression names one object so that no other object in the scene fits it: the
fewest attributes that do, always with the shape noun ("the cube", "the red cube", "the large
metal cube"); when even all four attributes fit two objects (CLEVR allows identical twins) a
relation to a uniquely named anchor is added ("the small gray rubber cube that is left of the
red sphere").

    >>> from engine.scenes.language import referring_expression, describe_scene
    >>> referring_expression(scene, 0)        # 'the red cube'
    >>> describe_scene(scene)                  # 'a large red metal cube is left of ...'
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from engine.scenes.scene import ATTRIBUTES, Scene, SceneObject

DIRECTIONS = ("left", "right", "front", "behind")
#: CLEVR's threshold for a relation (scene units).
RELATION_EPS = 0.2
#: How each direction reads in a sentence ("X is <phrase> Y").
RELATION_PHRASES = {"left": "left of", "right": "right of", "front": "in front of",
                    "behind": "behind"}
#: Attribute order in a phrase (CLEVR's): size, colour, material, then the shape noun.
PHRASE_ORDER = ("size", "color", "material", "shape")


def is_related(scene: Scene, a: int, direction: str, b: int, eps: float = RELATION_EPS) -> bool:
    """Whether object ``a`` is ``direction`` of object ``b`` ("a is left of b").

    Raises:
        ValueError: unknown direction.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
    v = scene.camera.directions()[direction]
    oa, ob = scene.objects[a], scene.objects[b]
    return bool((oa.x - ob.x) * v[0] + (oa.y - ob.y) * v[1] > eps)


def relations(scene: Scene, eps: float = RELATION_EPS) -> dict[str, list[list[int]]]:
    """CLEVR's ``relationships`` table: ``relations[d][i]`` lists the objects that are ``d``
    of object ``i`` (e.g. ``relations["left"][0]``: the objects left of object 0)."""
    n = len(scene)
    return {d: [[j for j in range(n) if j != i and is_related(scene, j, d, i, eps)]
                for i in range(n)] for d in DIRECTIONS}


def article(word: str) -> str:
    """"a" or "an" for the word that follows."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def object_phrase(obj: SceneObject, attributes: tuple[str, ...] | None = None,
                  determiner: str = "the") -> str:
    """"the large red metal cube" (or with only some ``attributes``; the shape noun always).

    Args:
        determiner: "the", "a" (a/an chosen by the next word) or "" for none.
    """
    keep = set(attributes or PHRASE_ORDER) | {"shape"}
    words = [getattr(obj, a) for a in PHRASE_ORDER if a in keep]
    text = " ".join(words)
    if determiner == "a":
        return f"{article(text)} {text}"
    return f"{determiner} {text}" if determiner else text


def _matches(obj: SceneObject, ref: SceneObject, attributes: tuple[str, ...]) -> bool:
    return all(getattr(obj, a) == getattr(ref, a) for a in attributes)


def unique_attributes(scene: Scene, index: int) -> tuple[str, ...] | None:
    """The fewest attributes (shape always among them) that only object ``index`` has, in
    :data:`PHRASE_ORDER`; None when another object has all four of its attributes."""
    target = scene.objects[index]
    others = [o for i, o in enumerate(scene.objects) if i != index]
    rest = ("color", "size", "material")
    for k in range(len(rest) + 1):
        for extra in combinations(rest, k):
            attrs = tuple(a for a in PHRASE_ORDER if a in extra or a == "shape")
            if not any(_matches(o, target, attrs) for o in others):
                return attrs
    return None


def referring_expression(scene: Scene, index: int) -> str | None:
    """A phrase naming object ``index`` and no other ("the red cube"), or None when even a
    relation to a uniquely named object cannot single it out."""
    attrs = unique_attributes(scene, index)
    target = scene.objects[index]
    if attrs is not None:
        return object_phrase(target, attrs)
    full = tuple(PHRASE_ORDER)
    twins = [i for i, o in enumerate(scene.objects) if i != index and _matches(o, target, full)]
    for anchor in range(len(scene)):
        if anchor == index or anchor in twins:
            continue
        anchor_attrs = unique_attributes(scene, anchor)
        if anchor_attrs is None:
            continue
        for d in DIRECTIONS:
            if is_related(scene, index, d, anchor) and \
                    not any(is_related(scene, t, d, anchor) for t in twins):
                return (f"{object_phrase(target)} that is {RELATION_PHRASES[d]} "
                        f"{object_phrase(scene.objects[anchor], anchor_attrs)}")
    return None


def relation_sentence(scene: Scene, a: int, direction: str, b: int) -> str:
    """"a large red metal cube is left of a small cyan rubber sphere" (whether true or not:
    check with :func:`is_related`)."""
    return (f"{object_phrase(scene.objects[a], determiner='a')} is {RELATION_PHRASES[direction]} "
            f"{object_phrase(scene.objects[b], determiner='a')}")


def left_to_right(scene: Scene) -> list[int]:
    """Object indices ordered from the image's left to its right (by the camera's axis)."""
    v = scene.camera.directions()["right"]
    return sorted(range(len(scene)), key=lambda i: scene.objects[i].x * v[0] +
                  scene.objects[i].y * v[1])


def describe_scene(scene: Scene, rng: np.random.Generator | None = None) -> str:
    """One sentence per object from left to right, each tied to the next object by a true
    relation: "a large red metal cube is left of a small cyan rubber sphere. ...".

    Without ``rng`` the relation is always "left of" (then "in front of"/"behind" if the pair
    is not separated left-right); with ``rng`` a random true relation is chosen per pair.
    A scene of one object gives "there is a ..."; an empty scene "there is nothing".
    """
    order = left_to_right(scene)
    if not order:
        return "there is nothing."
    if len(order) == 1:
        return f"there is {object_phrase(scene.objects[order[0]], determiner='a')}."
    sentences = []
    for a, b in zip(order, order[1:]):
        true = [d for d in DIRECTIONS if is_related(scene, a, d, b)]
        if not true:
            sentences.append(f"{object_phrase(scene.objects[a], determiner='a')} is next to "
                             f"{object_phrase(scene.objects[b], determiner='a')}")
            continue
        d = true[int(rng.integers(len(true)))] if rng is not None else true[0]
        sentences.append(relation_sentence(scene, a, d, b))
    return ". ".join(sentences) + "."


__all__ = ["ATTRIBUTES", "DIRECTIONS", "RELATION_EPS", "RELATION_PHRASES", "article",
           "describe_scene", "is_related", "left_to_right", "object_phrase",
           "referring_expression", "relation_sentence", "relations", "unique_attributes"]
