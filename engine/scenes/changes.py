"""Scene pairs for change captioning (CLEVR-Change) and (before, instruction, after) edits.

**CLEVR-Change pairs** (Park et al., "Robust Change Captioning", ICCV 2019): a "before" scene
and an "after" scene that differ by one *semantic* change of an object -- its colour, its
material, an object added, dropped or moved -- or by none (a *distractor* pair). As in
CLEVR-Change, every after scene is also seen from a slightly moved camera under slightly changed
lights (the distractors, ``jitter=True``), so a model must tell a real change from a viewpoint or
illumination change. Each pair carries its captions (four templates per type, CLEVR-Change's
wording style: "the red cube changed to blue", "the small sphere has disappeared", "no change
was made") and, through :meth:`ChangePair.render`, the changed object's mask in both images.
:func:`sample_multi_change_pair` makes pairs with 1-3 changes to distinct objects, captioned
by joining the changes' captions with "and".

**Edit triplets** (for text-guided generation, editing and composed retrieval, as i-CLEVR and
CSS use them): a scene, an instruction ("add a small red metal cube left of the blue sphere",
"make the large cylinder yellow", "remove the gray cube") and the scene it asks for, with the
same camera and lights.

Everything is drawn from a seed: the same seed gives the same pair. Both kinds of sample keep
CLEVR's rules in both scenes (:mod:`engine.scenes.sampling`), every object visible, and name
objects with referring expressions that are unique in the scene they refer to.

    >>> from engine.scenes.changes import sample_change_pair, sample_edit
    >>> pair = sample_change_pair(3, "color")
    >>> pair.captions[0]                    # 'the large cylinder changed to purple'
    >>> r = pair.render(128)                # r.before.image, r.after.image, r.before_masks[0]
    >>> sample_edit(3, "add").instruction   # 'add a small brown rubber cube behind the red sphere'
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from engine.scenes.language import (RELATION_PHRASES, is_related, object_phrase,
                                    referring_expression, unique_attributes)
from engine.scenes.render import Rendering, render
from engine.scenes.sampling import (SamplingRules, all_visible, as_rng, place, placement_ok,
                                    random_attributes, sample_scene)
from engine.scenes.scene import (COLOR_NAMES, MATERIALS, SHAPES, SIZE_NAMES, Scene,
                                 SceneObject)

#: Semantic change types of CLEVR-Change ("material" is the paper's "texture").
CHANGE_TYPES = ("color", "material", "add", "drop", "move")
#: Pair types: the semantic changes and the distractor-only pair.
PAIR_TYPES = CHANGE_TYPES + ("distractor",)
#: Edit operations of :func:`sample_edit`.
EDIT_OPS = ("add", "color", "material", "shape", "size", "remove")
#: Least distance an object moves in a "move" change (scene units).
MIN_MOVE = 1.0
#: Camera jitter (scene units per axis, CLEVR's ``camera_jitter``) and key-light jitter of
#: the after scene.
CAMERA_JITTER = 0.5
LIGHT_JITTER = 1.0

#: Caption templates per change type; ``{obj}`` is a referring expression ("the red cube"),
#: ``{new}`` the new value, ``{a_obj}`` an indefinite phrase ("a small cyan sphere").
CAPTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "color": ("{obj} changed to {new}", "{obj} turned {new}", "{obj} became {new}",
              "{obj} has been painted {new}"),
    "material": ("{obj} changed to {new}", "{obj} turned {new}", "{obj} became {new}",
                 "{obj} is now made of {new}"),
    "add": ("{a_obj} has been added", "someone added {a_obj}", "{a_obj} appeared",
            "there is a new {noun}"),
    "drop": ("{obj} has disappeared", "{obj} is missing", "{obj} was removed",
             "someone removed {obj}"),
    "move": ("{obj} moved", "{obj} changed its location", "{obj} was moved",
             "{obj} is in a different location"),
    "distractor": ("no change was made", "there is no change", "the scene is the same as before",
                   "nothing has changed"),
}
#: Instruction templates per edit operation (``{obj}`` names the object to edit; for "add",
#: ``{a_obj}`` is the new object, ``{where}`` "left of the red sphere").
INSTRUCTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "add": ("add {a_obj} {where}", "put {a_obj} {where}", "place {a_obj} {where}"),
    "color": ("make {obj} {new}", "change the color of {obj} to {new}", "paint {obj} {new}"),
    "material": ("make {obj} {new}", "change {obj} to {new}", "turn {obj} into {new}"),
    "shape": ("turn {obj} into a {new}", "change {obj} into a {new}",
              "replace {obj} with a {new}"),
    "size": ("make {obj} {new}", "change {obj} to {new}", "resize {obj} to {new}"),
    "remove": ("remove {obj}", "delete {obj}", "take away {obj}"),
}


@dataclass(frozen=True)
class Change:
    """One semantic change between a before and an after scene.

    Attributes:
        type: one of :data:`CHANGE_TYPES` (or an edit's "shape" / "size").
        before_index: the object's index in the before scene (None for "add").
        after_index: its index in the after scene (None for "drop").
        before_object, after_object: the object as it was / is (None where absent).
        captions: this change's caption in every template of its type.
    """

    type: str
    before_index: int | None
    after_index: int | None
    before_object: SceneObject | None
    after_object: SceneObject | None
    captions: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"type": self.type, "before_index": self.before_index,
                "after_index": self.after_index,
                "before_object": None if self.before_object is None else
                self.before_object.attributes() | {"x": self.before_object.x,
                                                   "y": self.before_object.y},
                "after_object": None if self.after_object is None else
                self.after_object.attributes() | {"x": self.after_object.x,
                                                  "y": self.after_object.y},
                "captions": list(self.captions)}


@dataclass(frozen=True)
class PairRendering:
    """Both images of a pair and the changed objects' masks.

    Attributes:
        before, after: the :class:`~engine.scenes.render.Rendering` of each scene.
        before_masks, after_masks: (C, H, W) bool, one per change: the changed object's
            visible pixels in that image (all False where it is absent: "add" before, "drop"
            after). C = 0 for a distractor pair.
    """

    before: Rendering
    after: Rendering
    before_masks: np.ndarray
    after_masks: np.ndarray


@dataclass(frozen=True)
class ChangePair:
    """A CLEVR-Change pair.

    Attributes:
        before, after: the scenes (``after`` with jittered camera and lights unless the pair
            was drawn with ``jitter=False``).
        changes: the semantic changes (empty for a distractor pair).
        captions: reference captions, one per template (the first is the canonical one).
        seed: the seed it was drawn from (None if built by hand).
    """

    before: Scene
    after: Scene
    changes: tuple[Change, ...]
    captions: tuple[str, ...]
    seed: int | None = None

    @property
    def type(self) -> str:
        """"distractor", a change type, or the types joined by "+" for several changes."""
        return "+".join(c.type for c in self.changes) or "distractor"

    def render(self, size: int | tuple[int, int] = 128, supersample: int = 2) -> PairRendering:
        """Render both scenes and cut out each changed object's mask (see :class:`PairRendering`)."""
        rb, ra = render(self.before, size, supersample), render(self.after, size, supersample)
        h, w = rb.ids.shape
        mb = np.zeros((len(self.changes), h, w), bool)
        ma = np.zeros_like(mb)
        for k, c in enumerate(self.changes):
            if c.before_index is not None:
                mb[k] = rb.masks[c.before_index]
            if c.after_index is not None:
                ma[k] = ra.masks[c.after_index]
        return PairRendering(rb, ra, mb, ma)

    def to_dict(self) -> dict:
        return {"type": self.type, "seed": self.seed, "captions": list(self.captions),
                "changes": [c.to_dict() for c in self.changes],
                "before": self.before.to_dict(), "after": self.after.to_dict()}


@dataclass(frozen=True)
class EditTriplet:
    """A (before, instruction, after) edit.

    Attributes:
        before, after: the scenes (same camera and lights).
        op: one of :data:`EDIT_OPS`.
        instruction: the instruction (one template, drawn from the seed).
        instructions: the same edit in every template of its operation.
        change: the change it makes (type "add", "color", ..., "drop" for "remove").
        anchor: for "add", the index of the object the new one is placed relative to.
        direction: for "add", where it goes relative to the anchor ("left", ...).
        seed: the seed it was drawn from.
    """

    before: Scene
    after: Scene
    op: str
    instruction: str
    instructions: tuple[str, ...]
    change: Change
    anchor: int | None = None
    direction: str | None = None
    seed: int | None = None

    def to_dict(self) -> dict:
        return {"op": self.op, "instruction": self.instruction,
                "instructions": list(self.instructions), "change": self.change.to_dict(),
                "anchor": self.anchor, "direction": self.direction, "seed": self.seed,
                "before": self.before.to_dict(), "after": self.after.to_dict()}


# --- one change ------------------------------------------------------------------------------

def _other(values: tuple[str, ...], old: str, rng: np.random.Generator) -> str:
    choices = [v for v in values if v != old]
    return choices[int(rng.integers(len(choices)))]


_VALUES = {"color": COLOR_NAMES, "material": MATERIALS, "shape": SHAPES, "size": SIZE_NAMES}


def _modify(objs: list, kind: str, target: int, rng: np.random.Generator, camera,
            rules: SamplingRules) -> SceneObject | None:
    """The target object after a change of ``kind`` (None if no valid one was found)."""
    old = objs[target]
    others = [o for i, o in enumerate(objs) if o is not None and i != target]
    if kind in _VALUES:
        new = replace(old, **{kind: _other(_VALUES[kind], getattr(old, kind), rng)})
        return new if kind in ("color", "material") or placement_ok(new, others, camera, rules) \
            else None
    if kind == "move":
        far = lambda x, y: np.hypot(x - old.x, y - old.y) >= MIN_MOVE  # noqa: E731
        moved = place(old.attributes(), others, camera, rng, rules, region=far)
        return None if moved is None else replace(moved, rotation=old.rotation)
    raise ValueError(f"unknown change {kind!r}")


def _apply(before: Scene, kinds: list[str], rng: np.random.Generator, rules: SamplingRules,
           targets: list[int | None] | None = None, region=None):
    """Apply changes of ``kinds`` to distinct objects; returns (after objects, changes
    without captions) or None when one cannot be made."""
    objs: list[SceneObject | None] = list(before.objects)
    added: list[SceneObject] = []
    raw = []  # (kind, before index or None, new object or None)
    free = list(range(len(objs)))
    for n, kind in enumerate(kinds):
        if kind == "add":
            present = [o for o in objs if o is not None] + added
            obj = place(random_attributes(rng), present, before.camera, rng, rules, region)
            if obj is None:
                return None
            added.append(obj)
            raw.append(("add", None, obj))
            continue
        if not free:
            return None
        target = targets[n] if targets and targets[n] is not None else \
            free[int(rng.integers(len(free)))]
        free.remove(target)
        if kind in ("drop", "remove"):
            objs[target] = None
            raw.append(("drop", target, None))
            continue
        new = _modify(objs + added, kind, target, rng, before.camera, rules)
        if new is None:
            return None
        objs[target] = new
        raw.append((kind, target, new))
    kept = [i for i, o in enumerate(objs) if o is not None]
    after_index = {i: k for k, i in enumerate(kept)}
    after_objs = [objs[i] for i in kept] + added
    changes, n_added = [], 0
    for kind, bi, new in raw:
        if kind == "add":
            ai = len(kept) + n_added
            n_added += 1
        else:
            ai = after_index.get(bi)
        changes.append(Change(kind, bi, ai, None if bi is None else before.objects[bi],
                              None if ai is None else after_objs[ai]))
    return after_objs, changes


def _captions(change: Change, before: Scene, after: Scene) -> tuple[str, ...] | None:
    """The change's caption in every template (None if the object cannot be named uniquely)."""
    templates = CAPTION_TEMPLATES[change.type]
    if change.type == "add":
        attrs = unique_attributes(after, change.after_index)
        if attrs is None:
            return None
        a_obj = object_phrase(change.after_object, attrs, "a")
        noun = object_phrase(change.after_object, attrs, "")
        return tuple(t.format(a_obj=a_obj, noun=noun) for t in templates)
    obj = referring_expression(before, change.before_index)
    if obj is None:
        return None
    new = getattr(change.after_object, change.type) if change.type in ("color", "material") \
        else ""
    return tuple(t.format(obj=obj, new=new) for t in templates)


def _visible(scene: Scene, rules: SamplingRules) -> bool:
    return rules.min_objects - 1 <= len(scene) <= rules.max_objects + 1 and \
        all_visible(scene, rules)


def _pair(seed, kinds: list[str], rules: SamplingRules, jitter: bool,
          base: Scene | None) -> ChangePair:
    rng = as_rng(seed)
    before = base if base is not None else sample_scene(rng, rules)
    for attempt in range(2000):
        if attempt and attempt % 200 == 0 and base is None:
            before = sample_scene(rng, rules)  # 200 misses: this scene admits no such change
        if "drop" in kinds and len(before) - kinds.count("drop") < rules.min_objects:
            before = sample_scene(rng, rules)
            continue
        if len(before) + kinds.count("add") > rules.max_objects:
            before = sample_scene(rng, rules)
            continue
        made = _apply(before, kinds, rng, rules)
        if made is None:
            continue
        after_objs, changes = made
        after = Scene(tuple(after_objs), before.camera, before.lighting)
        if jitter:
            after = replace(after, camera=before.camera.jittered(rng, CAMERA_JITTER),
                            lighting=before.lighting.jittered(rng, LIGHT_JITTER))
        if not _visible(after, rules):
            continue
        captioned = []
        for c in changes:
            caps = _captions(c, before, after)
            if caps is None:
                break
            captioned.append(replace(c, captions=caps))
        if len(captioned) < len(changes):
            continue
        if captioned:
            captions = tuple(" and ".join(c.captions[k] for c in captioned)
                             for k in range(len(captioned[0].captions)))
        else:
            captions = CAPTION_TEMPLATES["distractor"]
        return ChangePair(before, after, tuple(captioned), captions,
                          seed if isinstance(seed, (int, np.integer)) else None)
    raise RuntimeError(f"no valid {'+'.join(kinds) or 'distractor'} pair after 2000 tries")


def sample_change_pair(seed: int | np.random.Generator, change_type: str | None = None,
                       rules: SamplingRules = SamplingRules(), jitter: bool = True,
                       base: Scene | None = None) -> ChangePair:
    """A CLEVR-Change pair with one change (or none for "distractor").

    Args:
        seed: int (the same int gives the same pair) or numpy Generator.
        change_type: one of :data:`PAIR_TYPES`; None draws one uniformly.
        rules: scene rules (both scenes keep them; "drop" needs 4+ objects, "add" 9-).
        jitter: move the after camera and lights (CLEVR-Change's distractors).
        base: the before scene (default: :func:`~engine.scenes.sampling.sample_scene`).

    Raises:
        ValueError: unknown change type.
    """
    rng = as_rng(seed)
    if change_type is None:
        change_type = PAIR_TYPES[int(rng.integers(len(PAIR_TYPES)))]
    if change_type not in PAIR_TYPES:
        raise ValueError(f"unknown change type {change_type!r}; valid: {', '.join(PAIR_TYPES)}")
    kinds = [] if change_type == "distractor" else [change_type]
    pair = _pair(rng, kinds, rules, jitter, base)
    return replace(pair, seed=int(seed) if isinstance(seed, (int, np.integer)) else None)


def sample_multi_change_pair(seed: int | np.random.Generator, n_changes: int | None = None,
                             rules: SamplingRules = SamplingRules(), jitter: bool = True,
                             base: Scene | None = None) -> ChangePair:
    """A pair with ``n_changes`` (default: uniform 1-3) semantic changes of random types,
    each to a different object; captions join the changes' captions with "and".

    Raises:
        ValueError: ``n_changes`` outside 1..3.
    """
    rng = as_rng(seed)
    n = int(rng.integers(1, 4)) if n_changes is None else int(n_changes)
    if not 1 <= n <= 3:
        raise ValueError(f"n_changes must be 1..3, got {n_changes!r}")
    kinds = [CHANGE_TYPES[int(rng.integers(len(CHANGE_TYPES)))] for _ in range(n)]
    pair = _pair(rng, kinds, rules, jitter, base)
    return replace(pair, seed=int(seed) if isinstance(seed, (int, np.integer)) else None)


# --- edits -----------------------------------------------------------------------------------

def sample_edit(seed: int | np.random.Generator, op: str | None = None,
                rules: SamplingRules = SamplingRules(), base: Scene | None = None) -> EditTriplet:
    """A (before, instruction, after) edit; camera and lights stay the same.

    Args:
        op: one of :data:`EDIT_OPS` ("add" at a place relative to a named object; "color",
            "material", "shape", "size" of a named object; "remove" a named object); None
            draws one uniformly.

    Raises:
        ValueError: unknown operation.
    """
    rng = as_rng(seed)
    if op is None:
        op = EDIT_OPS[int(rng.integers(len(EDIT_OPS)))]
    if op not in EDIT_OPS:
        raise ValueError(f"unknown edit {op!r}; valid: {', '.join(EDIT_OPS)}")
    before = base if base is not None else sample_scene(rng, rules)
    for _ in range(200):
        if (op == "remove" and len(before) <= rules.min_objects) or \
                (op == "add" and len(before) >= rules.max_objects):
            before = sample_scene(rng, rules)
            continue
        anchor = direction = region = None
        if op == "add":
            anchor = int(rng.integers(len(before)))
            direction = ("left", "right", "front", "behind")[int(rng.integers(4))]
            v = before.camera.directions()[direction]
            a = before.objects[anchor]
            region = lambda x, y: (x - a.x) * v[0] + (y - a.y) * v[1] > rules.margin  # noqa
        made = _apply(before, ["drop" if op == "remove" else op], rng, rules, region=region)
        if made is None:
            continue
        after = Scene(tuple(made[0]), before.camera, before.lighting)
        change = made[1][0]
        if not all_visible(after, rules):
            continue
        if op == "add":
            where_ref = referring_expression(before, anchor)
            attrs = unique_attributes(after, change.after_index)
            if where_ref is None or attrs is None or \
                    not is_related(after, change.after_index, direction, anchor):
                continue
            fill = {"a_obj": object_phrase(change.after_object, determiner="a"),
                    "where": f"{RELATION_PHRASES[direction]} {where_ref}"}
        else:
            ref = referring_expression(before, change.before_index)
            if ref is None:
                continue
            new = "" if op == "remove" else getattr(change.after_object, op)
            fill = {"obj": ref, "new": new}
        texts = tuple(t.format(**fill) for t in INSTRUCTION_TEMPLATES[op])
        return EditTriplet(before, after, op, texts[int(rng.integers(len(texts)))], texts,
                           change, anchor, direction,
                           int(seed) if isinstance(seed, (int, np.integer)) else None)
    raise RuntimeError(f"no valid {op} edit after 200 tries")


__all__ = ["CAPTION_TEMPLATES", "CHANGE_TYPES", "Change", "ChangePair", "EDIT_OPS",
           "EditTriplet", "INSTRUCTION_TEMPLATES", "PAIR_TYPES", "PairRendering",
           "sample_change_pair", "sample_edit", "sample_multi_change_pair"]
