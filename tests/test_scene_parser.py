"""The scene parser (engine/scenes/parser.py, engine/models/scene_parser.py): metric against
hand-computed values, targets that decode back to the scene, a tiny training step, the shipped
checkpoint and the scene commands of the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.models.scene_parser import (ASSET, SceneParserConfig, SceneParserNet, load_parser,
                                        save_parser)
from engine.scenes.parser import (ATTR_NAMES, SceneParser, decode, encode_targets,
                                  match_objects, parser_loss, score_parses)
from engine.scenes.render import render
from engine.scenes.sampling import sample_scene
from engine.scenes.scene import ATTRIBUTES, Scene, SceneObject
from engine.scenes.train_parser import train_step


def obj(color="red", x=0.0, y=0.0, **kw) -> SceneObject:
    base = {"shape": "cube", "size": "small", "material": "rubber"}
    return SceneObject(**{**base, **kw}, color=color, x=x, y=y)


# --- metric ------------------------------------------------------------------------------------

def test_f1_counts_a_match_only_when_attributes_agree_and_the_position_is_close():
    true = [obj("red", 0, 0), obj("blue", 2, 0), obj("green", -2, 0)]
    pred = [obj("red", 0.1, 0.1),          # match (0.141 away)
            obj("cyan", 2, 0),             # right place, wrong colour
            obj("green", -2, 0.6)]         # right attributes, 0.6 away > 0.5
    s = score_parses([pred], [true])
    assert (s.tp, s.n_pred, s.n_true) == (1, 3, 3)
    assert s.precision == pytest.approx(1 / 3) and s.recall == pytest.approx(1 / 3)
    assert s.f1 == pytest.approx(1 / 3)
    assert s.position_error == pytest.approx(np.hypot(0.1, 0.1))
    # matched by position only (tol 0.5): red and the wrong-colour one; colour right 1 of 2
    assert s.attribute_accuracy["color"] == pytest.approx(0.5)
    assert s.attribute_accuracy["shape"] == 1.0 and s.exact_scenes == 0.0


def test_hungarian_matching_pairs_each_truth_once_and_prefers_the_closer_pairs():
    true = [obj("red", 0, 0), obj("red", 1, 0)]
    pred = [obj("red", 0.45, 0), obj("red", 0.9, 0)]
    # greedy by prediction order would give pred 0 -> true 0 (0.45) then pred 1 -> true 1;
    # both assignments are valid; the optimum has total distance 0.55
    pairs = match_objects(pred, true)
    assert sorted(pairs) == [(0, 0), (1, 1)]
    two_for_one = score_parses([[obj("red", 0, 0), obj("red", 0.1, 0)]], [[obj("red", 0, 0)]])
    assert (two_for_one.tp, two_for_one.precision, two_for_one.recall) == (1, 0.5, 1.0)
    assert two_for_one.f1 == pytest.approx(2 / 3)


def test_micro_averaged_scores_over_several_scenes():
    s = score_parses([[obj()], [], [obj("blue")]], [[obj()], [obj()], [obj("blue")]])
    assert (s.tp, s.n_pred, s.n_true) == (2, 2, 3)
    assert s.precision == 1.0 and s.recall == pytest.approx(2 / 3)
    assert s.exact_scenes == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 predicted scenes but 1"):
        score_parses([[], []], [[]])


# --- targets and decoding ----------------------------------------------------------------------

def _oracle_maps(t) -> dict[str, torch.Tensor]:
    """The maps a perfect network would output for targets ``t``."""
    maps = {"heatmap": torch.logit(torch.from_numpy(t.heatmap[:, None]).clamp(1e-4, 1 - 1e-4)),
            "offset": torch.from_numpy(t.offset)}
    for a, name in enumerate(ATTR_NAMES):
        lab = torch.from_numpy(t.labels[:, a]).clamp(min=0)
        maps[name] = torch.nn.functional.one_hot(lab, len(ATTRIBUTES[name])).permute(
            0, 3, 1, 2).float()
    return maps


def test_targets_decode_back_to_the_scene():
    scenes = [sample_scene(s) for s in range(6)]
    t = encode_targets(scenes, 128)
    assert t.heatmap.shape == (6, 32, 32) and t.center.sum() <= sum(map(len, scenes))
    parsed = decode(_oracle_maps(t), (128, 128))
    s = score_parses([[p.object for p in objs] for objs in parsed],
                     [list(sc.objects) for sc in scenes], tol=0.05)
    assert s.f1 >= 0.97 and s.position_error < 0.02


def test_a_tiny_parser_learns_a_batch():
    scenes = [sample_scene(s) for s in range(4)]
    x = torch.from_numpy(np.stack([render(s, 64).image for s in scenes])).permute(
        0, 3, 1, 2).float() / 255
    t = encode_targets(scenes, 64).torch()
    torch.manual_seed(0)
    net = SceneParserNet(SceneParserConfig(width=8))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = [train_step(net, opt, x, t)["total"] for _ in range(30)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.6 * losses[0]


def test_checkpoints_round_trip_and_foreign_files_are_refused(tmp_path):
    net = SceneParserNet(SceneParserConfig(width=4)).eval()
    path = save_parser(net, tmp_path / "p.safetensors", {"note": "test"})
    back = load_parser(path)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(x)["heatmap"], back(x)["heatmap"])
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a scene parser"):
        load_parser(tmp_path / "other.safetensors")


def test_the_parser_refuses_images_that_are_not_uint8_rgb():
    parser = SceneParser(SceneParserNet(SceneParserConfig(width=4)))
    with pytest.raises(ValueError, match="uint8"):
        parser(np.zeros((32, 32), np.uint8))
    out = parser(np.zeros((2, 64, 64, 3), np.uint8))  # resized to 128, two (empty) answers
    assert len(out) == 2


@pytest.mark.skipif(not ASSET.is_file(), reason="no shipped scene parser")
def test_the_shipped_parser_reads_held_out_scenes():
    from engine.factory import scene_parser
    parser = scene_parser()
    scenes = [sample_scene(3_000_000 + s) for s in range(12)]
    images = np.stack([render(s, 128).image for s in scenes])
    preds = [[p.object for p in objs] for objs in parser(images)]
    assert score_parses(preds, [list(s.objects) for s in scenes]).f1 >= 0.85


# --- CLI -----------------------------------------------------------------------------------------

def _cli(capsys, *args) -> tuple[int, list[dict], str]:
    from engine.cli import main
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def test_render_scene_writes_the_image_and_prints_the_scene(capsys, tmp_path):
    from PIL import Image
    code, (row,), _ = _cli(capsys, "render-scene", "--seed", "4", "--out",
                           str(tmp_path / "s.png"), "--size", "64", "--json",
                           str(tmp_path / "s.json"))
    assert code == 0 and Image.open(tmp_path / "s.png").size == (64, 64)
    scene = sample_scene(4)
    assert len(row["objects"]) == len(scene)
    assert row["scene"] == json.loads(json.dumps(scene.to_dict()))
    assert Scene.from_dict(json.loads((tmp_path / "s.json").read_text())) == scene
    assert all(o["refer"].startswith("the ") and o["pixels"] > 0 for o in row["objects"])


def test_render_change_prints_the_captions_and_the_changed_box(capsys, tmp_path):
    code, (row,), _ = _cli(capsys, "render-change", "--seed", "2", "--type", "drop",
                           "--out-before", str(tmp_path / "a.png"), "--out-after",
                           str(tmp_path / "b.png"), "--size", "64")
    assert code == 0 and row["type"] == "drop" and len(row["captions"]) == 4
    (change,) = row["changes"]
    assert change["after_box"] is None and change["before_box"][2] > change["before_box"][0]
    assert len(row["after"]) == len(row["before"]) - 1
    code, (row,), _ = _cli(capsys, "render-change", "--seed", "2", "--changes", "3",
                           "--out-before", str(tmp_path / "a.png"), "--out-after",
                           str(tmp_path / "b.png"), "--size", "64")
    assert code == 0 and len(row["changes"]) == 3


@pytest.mark.parametrize("args, message", [
    (["render-scene", "--seed", "-3", "--out", "x.png"], "--seed must be >= 0"),
    (["render-scene", "--seed", "1", "--out", "x.png", "--size", "5000"], "--size"),
    (["render-scene", "--seed", "1", "--out", "{tmp}/x.unknown"], "image extension"),
    (["render-scene", "--seed", "1", "--out", "/no/such/folder/x.png"], "does not exist"),
    (["render-change", "--seed", "1", "--type", "shape", "--out-before", "a.png",
      "--out-after", "b.png"], "unknown change type 'shape'"),
    (["render-change", "--seed", "1", "--changes", "4", "--out-before", "a.png",
      "--out-after", "b.png"], "--changes must be 1..3"),
    (["eval-scene-parser", "--split", "train"], "held-out"),
    (["build-scenes", "--kind", "cats", "--n", "3"], "unknown dataset kind"),
    (["eval-scene-parser", "--checkpoint", "{tmp}/none.safetensors"], "not found"),
    (["eval-scene-parser", "--checkpoint", "{root}/assets/omniglot/protonet.safetensors"],
     "not a scene parser checkpoint"),
])
def test_scene_commands_refuse_bad_options_in_one_line(capsys, tmp_path, args, message):
    root = ASSET.parents[2]
    code, rows, err = _cli(capsys, *[a.format(tmp=tmp_path, root=root) for a in args])
    assert code == 2 and rows == []
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_the_factory_refuses_an_unknown_scene_parser_naming_the_valid_ones():
    from engine.errors import UserInputError
    from engine.factory import scene_parser, scene_parser_models
    with pytest.raises(UserInputError, match="unknown scene parser 'resnet'") as info:
        scene_parser("resnet")
    for name in scene_parser_models():
        assert name in str(info.value)
