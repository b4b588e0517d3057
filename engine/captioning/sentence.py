"""A sentence written from object tags (the VIVO / Oscar idea: tags name the objects, including
ones a caption corpus never paired with text; Hu et al., AAAI 2021; Li et al., ECCV 2020).

The sentence names the leading object, hedged when its probability is low, and, when a second
object is confidently elsewhere in the image, where it is relative to the first.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Tag:
    """An object tag: a group of near-synonymous ImageNet classes.

    Attributes:
        name: the group's most probable class name.
        probability: summed softmax probability of the group's classes, in [0, 1].
        members: class names in the group, most probable first.
        center: (x, y) of the CAM peak, as fractions of width and height in [0, 1].
    """

    name: str
    probability: float
    members: list[str]
    center: tuple[float, float]


def article(word: str) -> str:
    """The indefinite article of ``word``: "an" before a vowel letter, else "a"."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _relation(a: tuple[float, float], b: tuple[float, float]) -> str:
    """Where point b is relative to point a (both (x, y) fractions, y down), in words."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    if abs(dx) >= abs(dy):
        return "to the right of" if dx > 0 else "to the left of"
    return "below" if dy > 0 else "above"


def sentence_from_tags(tags: list[Tag], min_second: float = 0.1,
                       min_distance: float = 0.3) -> str:
    """Write one sentence from tags.

    Args:
        tags: object tags, most probable first (at least one).
        min_second: probability a second object needs to be mentioned.
        min_distance: CAM peaks closer than this (fraction of the image) are one object.

    Returns:
        A sentence such as "a photo of a tabby cat." or "a photo of a laptop to the left of a
        coffee mug."; hedged ("what looks like", "might show") when the top tag is uncertain.

    Raises:
        ValueError: no tags (a programming error: the tagger always gives at least one).
    """
    if not tags:
        raise ValueError("no tags to write a sentence from")
    first = tags[0]
    if first.probability >= 0.5:
        head = f"a photo of {article(first.name)} {first.name}"
    elif first.probability >= 0.2:
        head = f"a photo of what looks like {article(first.name)} {first.name}"
    else:
        head = f"a photo that might show {article(first.name)} {first.name}"
    for other in tags[1:]:
        dist = float(np.hypot(other.center[0] - first.center[0],
                              other.center[1] - first.center[1]))
        if other.probability >= min_second and dist >= min_distance:
            return (f"{head} {_relation(other.center, first.center)} "
                    f"{article(other.name)} {other.name}.")
    return head + "."
