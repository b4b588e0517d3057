"""The scene world: CLEVR-style scenes (objects with shape, colour, size, material on a ground
plane), a numpy ray caster that renders them with per-object masks, the language that describes
them, generators of CLEVR-Change pairs and edit triplets, cached datasets, and the scene parser
that reads scenes back from images (see docs/scenes.md).

Modules, each usable on its own:

* :mod:`~engine.scenes.scene`: ``SceneObject``, ``Scene``, ``Camera``, ``Lighting`` (data, JSON);
* :mod:`~engine.scenes.sampling`: ``sample_scene(seed)`` by CLEVR's rules, ``rule_violations``;
* :mod:`~engine.scenes.render`: ``render(scene, size) -> Rendering`` (image, ids, masks, boxes);
* :mod:`~engine.scenes.language`: relations, ``referring_expression``, ``describe_scene``;
* :mod:`~engine.scenes.changes`: ``sample_change_pair``, ``sample_multi_change_pair``,
  ``sample_edit``;
* :mod:`~engine.scenes.dataset`: ``DatasetSpec``, ``build_dataset``, ``load_dataset``;
* :mod:`~engine.scenes.parser` (torch): ``SceneParser``, ``score_parses``; trained by
  :mod:`~engine.scenes.train_parser`; the shipped one is ``engine.factory.scene_parser()``.

The names below are re-exported here (the parser's are not, to keep this import torch-free).
"""
from engine.scenes.changes import (CAPTION_TEMPLATES, CHANGE_TYPES, EDIT_OPS, PAIR_TYPES, Change,
                                   ChangePair, EditTriplet, PairRendering, sample_change_pair,
                                   sample_edit, sample_multi_change_pair)
from engine.scenes.dataset import DatasetSpec, build_dataset, load_dataset
from engine.scenes.language import (describe_scene, is_related, object_phrase,
                                    referring_expression, relations)
from engine.scenes.render import Rendering, object_ids, render
from engine.scenes.sampling import SamplingRules, rule_violations, sample_scene
from engine.scenes.scene import (ATTRIBUTES, COLORS, MATERIALS, SHAPES, SIZES, Camera, Lighting,
                                 Scene, SceneObject)

__all__ = ["ATTRIBUTES", "CAPTION_TEMPLATES", "CHANGE_TYPES", "COLORS", "Camera", "Change",
           "ChangePair", "DatasetSpec", "EDIT_OPS", "EditTriplet", "Lighting", "MATERIALS",
           "PAIR_TYPES", "PairRendering", "Rendering", "SHAPES", "SIZES", "SamplingRules", "Scene",
           "SceneObject", "build_dataset", "describe_scene", "is_related", "load_dataset",
           "object_ids", "object_phrase", "referring_expression", "relations", "render",
           "rule_violations", "sample_change_pair", "sample_edit", "sample_multi_change_pair",
           "sample_scene"]
