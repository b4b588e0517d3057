"""The scene world (engine/scenes): sampling rules, rendering, masks, relations, referring
expressions, CLEVR-Change pairs, edit triplets and datasets."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from engine.scenes.changes import (CHANGE_TYPES, EDIT_OPS, MIN_MOVE, PAIR_TYPES,
                                   sample_change_pair, sample_edit, sample_multi_change_pair)
from engine.scenes.dataset import DatasetSpec, build_dataset, load_dataset, scene_item
from engine.scenes.language import (describe_scene, is_related, referring_expression,
                                    relations, unique_attributes)
from engine.scenes.render import render
from engine.scenes.sampling import SamplingRules, rule_violations, sample_scene
from engine.scenes.scene import COLORS, Camera, Lighting, Scene, SceneObject

RIGHT, BEHIND = Camera().directions()["right"], Camera().directions()["behind"]


def at(right: float, behind: float, **attrs) -> SceneObject:
    """An object placed by camera axes: ``right`` units to the right, ``behind`` away."""
    p = right * RIGHT + behind * BEHIND
    base = {"shape": "cube", "color": "gray", "size": "small", "material": "rubber"}
    return SceneObject(**{**base, **attrs}, x=float(p[0]), y=float(p[1]))


# --- scenes and sampling -----------------------------------------------------------------------

def test_the_same_seed_gives_the_same_scene_and_pixels_and_another_seed_does_not():
    a, b, c = sample_scene(11), sample_scene(11), sample_scene(12)
    assert a == b and a != c
    ra, rb = render(a, 64), render(b, 64)
    assert np.array_equal(ra.image, rb.image) and np.array_equal(ra.ids, rb.ids)
    assert not np.array_equal(ra.image, render(c, 64).image)


def test_a_scene_survives_the_json_round_trip():
    scene = replace(sample_scene(3), lighting=Lighting().jittered(np.random.default_rng(0)))
    assert Scene.from_json(scene.to_json()) == scene
    assert Scene.from_dict(json.loads(json.dumps(scene.to_dict()))) == scene


def test_unknown_attribute_values_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="unknown color 'pink'.*gray"):
        SceneObject("cube", "pink", "small", "rubber")
    with pytest.raises(ValueError, match="not a scene dict"):
        Scene.from_dict({"objects": [{"shape": "cube"}]})


@pytest.mark.parametrize("seed", range(12))
def test_sampled_scenes_keep_clevrs_rules(seed):
    scene = sample_scene(seed)
    assert 3 <= len(scene) <= 10
    assert rule_violations(scene) == []
    d = Camera().directions()
    for i, a in enumerate(scene.objects):
        for b in scene.objects[:i]:
            gap = np.hypot(a.x - b.x, a.y - b.y) - a.radius - b.radius
            assert gap >= 0.25
            for axis in ("right", "behind"):
                assert abs((a.x - b.x) * d[axis][0] + (a.y - b.y) * d[axis][1]) >= 0.4


def test_the_rule_checker_reports_overlap_and_hidden_objects():
    front = at(0, -1, size="large")
    hidden = at(0, 0.6, size="small")  # right behind the large cube, and too close
    problems = rule_violations(Scene((front, hidden, at(2, 1))))
    assert any("too close" in p for p in problems)
    assert any("object 1 shows" in p for p in problems)
    assert any("objects" in p for p in rule_violations(Scene((front,))))


def test_object_counts_cover_three_to_ten():
    counts = {len(sample_scene(s)) for s in range(60)}
    assert min(counts) == 3 and max(counts) >= 9


# --- rendering ----------------------------------------------------------------------------------

def _nearest_colour(rgb: np.ndarray) -> str:
    """The CLEVR colour whose chromaticity (RGB / sum) is nearest."""
    chroma = lambda c: np.asarray(c, float) / max(sum(c), 1)  # noqa: E731
    return min(COLORS, key=lambda n: np.linalg.norm(chroma(rgb) - chroma(COLORS[n])))


@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_every_mask_shows_its_objects_colour_and_its_box_holds_it(seed):
    scene = sample_scene(seed)
    r = render(scene, 128)
    assert r.image.shape == (128, 128, 3) and r.image.dtype == np.uint8
    assert r.masks.shape == (len(scene), 128, 128)
    assert (r.masks.sum(0) <= 1).all()  # a pixel shows one object at most
    for k, obj in enumerate(scene.objects):
        m = r.masks[k]
        assert m.sum() >= 10
        rows, cols = np.nonzero(m)
        x0, y0, x1, y1 = r.boxes[k]
        assert x0 <= cols.min() and cols.max() < x1 and y0 <= rows.min() and rows.max() < y1
        assert (x1 - x0, y1 - y0) == (cols.max() - cols.min() + 1, rows.max() - rows.min() + 1)
        if obj.color != "gray":  # gray has no chromaticity to test
            assert _nearest_colour(np.median(r.image[m], 0)) == obj.color, (k, obj)


def test_an_object_behind_another_loses_the_pixels_it_hides_behind():
    back = at(0.5, 1.5, shape="sphere", color="red")
    front = at(0.3, 0.0, shape="cube", size="large", color="blue")
    alone = render(Scene((back,)), 128).masks[0].sum()
    both = render(Scene((back, front)), 128)
    assert 0 < both.masks[0].sum() < alone
    assert (both.ids[both.masks[1]] == 1).all()


def test_ground_points_in_an_objects_shadow_are_darker():
    """The key light is to the camera's right: the shadow falls to the object's left."""
    obj = at(0, 0, shape="cylinder", size="large", color="yellow")
    r, bare = render(Scene((obj,)), 128), render(Scene(()), 128)
    c, row = r.centers[0]
    left = (int(row) + 4, int(c) - 14)  # ground to the left of the cylinder's foot
    right = (int(row) + 4, int(c) + 14)
    assert r.ids[left] == -1 and r.ids[right] == -1
    assert r.image[left].mean() < bare.image[left].mean() - 15
    assert abs(int(r.image[right].mean()) - int(bare.image[right].mean())) < 6


def test_metal_has_a_highlight_rubber_has_not():
    spheres = [at(0, 0, shape="sphere", size="large", material=m) for m in ("metal", "rubber")]
    renders = [render(Scene((s,)), 128) for s in spheres]
    peaks = [int(r.image[r.masks[0]].max()) for r in renders]
    assert peaks[0] > 200 and peaks[0] > peaks[1] + 60


def test_camera_and_light_jitter_change_pixels_but_not_the_scene():
    scene = sample_scene(4)
    rng = np.random.default_rng(0)
    moved = replace(scene, camera=scene.camera.jittered(rng), lighting=scene.lighting.jittered(rng))
    assert moved.objects == scene.objects
    assert np.abs(render(moved, 64).image.astype(int) - render(scene, 64).image).mean() > 1


def test_projection_and_ground_point_invert_each_other():
    cam = Camera()
    pts = np.array([[1.0, -2.0, 0.35], [-2.5, 2.0, 0.7]])
    uv, depth = cam.project(pts, 128, 128)
    assert (depth > 0).all()
    back = cam.ground_point(uv, 128, 128, pts[:, 2])
    assert np.allclose(back, pts, atol=1e-6)


def test_bad_render_sizes_are_refused():
    with pytest.raises(ValueError, match="size"):
        render(Scene(()), 4)
    with pytest.raises(ValueError, match="supersample"):
        render(Scene(()), 32, supersample=9)


# --- language ------------------------------------------------------------------------------------

def test_relations_follow_the_camera_and_clevrs_threshold():
    a = at(-1.0, 0.0, color="red")     # left
    b = at(1.0, 1.5, color="blue")     # right, behind
    c = at(1.1, -1.5, color="green")   # 0.1 right of b: neither left nor right of b
    scene = Scene((a, b, c))
    assert is_related(scene, 0, "left", 1) and is_related(scene, 1, "right", 0)
    assert is_related(scene, 1, "behind", 0) and is_related(scene, 0, "front", 1)
    assert not is_related(scene, 2, "right", 1) and not is_related(scene, 2, "left", 1)
    assert is_related(scene, 2, "front", 1)
    rel = relations(scene)
    assert rel["left"][1] == [0] and sorted(rel["right"][0]) == [1, 2]
    assert rel["behind"][2] == [0, 1] and rel["front"][0] == [2]


def test_referring_expressions_use_the_fewest_attributes_that_single_the_object_out():
    scene = Scene((at(-2, 0, shape="sphere", color="red"),
                   at(0, 0, shape="cube", color="red"),
                   at(2, 0, shape="cube", color="blue", size="large")))
    assert referring_expression(scene, 0) == "the sphere"
    assert referring_expression(scene, 1) == "the red cube"
    assert referring_expression(scene, 2) == "the large blue cube"[:0] + "the blue cube"


def test_identical_twins_are_told_apart_by_a_relation():
    twin = {"shape": "cube", "color": "gray", "size": "small", "material": "rubber"}
    scene = Scene((at(-2, 0, **twin), at(2, 0, **twin), at(0, 1.5, shape="sphere")))
    assert unique_attributes(scene, 0) is None
    left, right = referring_expression(scene, 0), referring_expression(scene, 1)
    assert left == "the small gray rubber cube that is left of the sphere"
    assert right == "the small gray rubber cube that is right of the sphere"


def test_referring_expressions_of_sampled_scenes_fit_one_object():
    for seed in range(10):
        scene = sample_scene(seed)
        for i in range(len(scene)):
            attrs = unique_attributes(scene, i)
            if attrs is None:
                continue
            fits = [j for j, o in enumerate(scene.objects)
                    if all(getattr(o, a) == getattr(scene.objects[i], a) for a in attrs)]
            assert fits == [i]


def test_scene_descriptions_name_every_object_with_true_relations():
    scene = Scene((at(-1.5, 0, color="red", material="metal", size="large"),
                   at(1.5, 0.5, shape="sphere", color="cyan")))
    assert describe_scene(scene) == ("a large red metal cube is left of a small cyan rubber "
                                     "sphere.")
    assert describe_scene(Scene(())) == "there is nothing."


# --- CLEVR-Change pairs and edits ----------------------------------------------------------------

def _same(a: SceneObject, b: SceneObject) -> bool:
    return a == b


@pytest.mark.parametrize("kind", PAIR_TYPES)
def test_change_pairs_differ_exactly_as_labelled(kind):
    for seed in range(3):
        pair = sample_change_pair(seed, kind)
        before, after = pair.before.objects, pair.after.objects
        assert pair.type == kind and pair.captions
        assert pair.after.camera != pair.before.camera  # the distractors are always there
        assert pair.after.lighting != pair.before.lighting
        if kind == "distractor":
            assert pair.changes == () and before == after
            assert pair.captions[0] == "no change was made"
            continue
        (c,) = pair.changes
        if kind in ("color", "material", "move"):
            i = c.before_index
            assert c.after_index == i and len(before) == len(after)
            assert all(_same(before[j], after[j]) for j in range(len(before)) if j != i)
            diff = {k for k in ("shape", "color", "size", "material")
                    if getattr(before[i], k) != getattr(after[i], k)}
            if kind == "move":
                assert diff == set()
                assert np.hypot(before[i].x - after[i].x, before[i].y - after[i].y) >= MIN_MOVE
            else:
                assert diff == {kind}
                assert (before[i].x, before[i].y) == (after[i].x, after[i].y)
                assert getattr(after[i], kind) in pair.captions[0]
        elif kind == "add":
            assert after[:-1] == before and c.after_index == len(before)
        else:  # drop
            assert after == before[:c.before_index] + before[c.before_index + 1:]
        assert rule_violations(pair.before) == []
        # distances and margins as placed (before camera); visibility from the moved camera
        assert rule_violations(pair.after, margin_camera=pair.before.camera) == []


@pytest.mark.parametrize("kind", CHANGE_TYPES)
def test_change_masks_cover_the_changed_object_in_each_image(kind):
    pair = sample_change_pair(7, kind)
    r = pair.render(96)
    c = pair.changes[0]
    assert r.before_masks.shape == r.after_masks.shape == (1, 96, 96)
    if c.before_index is None:
        assert not r.before_masks[0].any()
    else:
        assert np.array_equal(r.before_masks[0], r.before.ids == c.before_index)
        assert r.before_masks[0].sum() > 0
    if c.after_index is None:
        assert not r.after_masks[0].any()
    else:
        assert np.array_equal(r.after_masks[0], r.after.ids == c.after_index)
        assert r.after_masks[0].sum() > 0


def test_pairs_are_deterministic_per_seed_and_vary_across_seeds():
    assert sample_change_pair(5) == sample_change_pair(5)
    assert len({sample_change_pair(s).type for s in range(30)}) == len(PAIR_TYPES)
    with pytest.raises(ValueError, match="unknown change type"):
        sample_change_pair(0, "size")


def test_multi_change_pairs_change_distinct_objects_and_join_their_captions():
    for seed in range(8):
        pair = sample_multi_change_pair(seed)
        n = len(pair.changes)
        assert 1 <= n <= 3
        touched = [c.before_index for c in pair.changes if c.before_index is not None]
        assert len(set(touched)) == len(touched)
        assert pair.captions[0].count(" and ") == n - 1
        assert len(pair.after) == len(pair.before) + sum(c.type == "add" for c in pair.changes) \
            - sum(c.type == "drop" for c in pair.changes)
    assert len(sample_multi_change_pair(1, 3).changes) == 3


@pytest.mark.parametrize("op", EDIT_OPS)
def test_edit_triplets_do_what_the_instruction_says(op):
    e = sample_edit(2, op)
    assert e.op == op and e.instruction in e.instructions
    assert e.after.camera == e.before.camera and e.after.lighting == e.before.lighting
    c = e.change
    if op == "add":
        assert len(e.after) == len(e.before) + 1 and e.after.objects[:-1] == e.before.objects
        assert is_related(e.after, c.after_index, e.direction, e.anchor)
        assert e.instruction.split()[0] in ("add", "put", "place")
    elif op == "remove":
        assert len(e.after) == len(e.before) - 1 and c.after_index is None
    else:
        assert getattr(c.after_object, op) != getattr(c.before_object, op)
        assert getattr(c.after_object, op) in e.instruction
    assert rule_violations(e.after) == []


# --- datasets --------------------------------------------------------------------------------------

def test_datasets_are_deterministic_resumable_and_match_the_renderer(tmp_path):
    spec = DatasetSpec("scenes", "val", 3, size=32, shard_size=2)
    folder = build_dataset(spec, tmp_path)
    first = load_dataset(spec, tmp_path, build=False)
    (folder / "shard-00001.npz").unlink()  # an interrupted build
    again = load_dataset(spec, tmp_path)
    for k in first:
        assert np.array_equal(first[k], again[k])
    scene, seed = scene_item(spec, 2)
    assert seed == 1_000_002 and Scene.from_json(str(first["scenes"][2])) == scene
    assert np.array_equal(first["images"][2], render(scene, 32).image)
    with pytest.raises(FileNotFoundError):
        load_dataset(DatasetSpec("scenes", "test", 1, size=32), tmp_path, build=False)
    # a smaller dataset of the same split reads the first items of the same shards
    two = load_dataset(DatasetSpec("scenes", "val", 2, size=32, shard_size=2), tmp_path,
                       build=False)
    assert len(two["images"]) == 2 and np.array_equal(two["images"], first["images"][:2])


def test_pair_datasets_hold_both_images_and_the_labels(tmp_path):
    data = load_dataset(DatasetSpec("changes", "train", 2, size=32), tmp_path)
    assert data["before"].shape == data["after"].shape == (2, 32, 32, 3)
    assert list(data["types"]) == ["distractor", "color"]
    pair = json.loads(str(data["pairs"][1]))
    assert pair["type"] == "color" and pair["captions"]


def test_sampling_rules_are_validated():
    with pytest.raises(ValueError, match="min_objects"):
        SamplingRules(min_objects=5, max_objects=2)
