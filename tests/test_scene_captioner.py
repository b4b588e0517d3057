"""The learned scene captioner (issue 10, section 2): network, decoding, checkpoint, metrics of
hallucination, and its commands."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.models.scene_captioner import (ASSET, SceneCaptionerConfig, SceneCaptionerNet,
                                           detokenize, load_captioner, save_captioner, tokenize)
from engine.scenes.captioner import (CAPTION_WORDS, TAG_WORDS, caption_loss, encode_batch,
                                     hallucination, mentions, references, tag_loss, tags,
                                     without_shape)
from engine.scenes.render import render
from engine.scenes.sampling import sample_scene
from engine.scenes.scene import Scene, SceneObject

ROOT = Path(__file__).resolve().parents[1]
G = 8  # grid of the tiny model (64x64 input -> stride-4 map 16x16 -> pooled to 8x8)


def _tiny(seed: int = 0) -> SceneCaptionerNet:
    torch.manual_seed(seed)
    return SceneCaptionerNet(SceneCaptionerConfig(words=CAPTION_WORDS, d_model=32, heads=2,
                                                  layers=1, ff=64, grid=G, parser_width=8,
                                                  dropout=0.0)).eval()


@pytest.fixture(scope="module")
def batch():
    scenes = [sample_scene(s) for s in range(4)]
    x = torch.from_numpy(np.stack([render(s, 64, 1).image for s in scenes])
                         ).permute(0, 3, 1, 2).float() / 255.0
    return scenes, x


def test_a_training_step_lowers_the_caption_loss(batch):
    scenes, x = batch
    net = _tiny()
    feats = net.grid_features(x)
    assert feats.shape == (4, net.config.feature_channels, G, G)
    tokens = encode_batch(net, [references(s, 1)[0] for s in scenes])
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=3e-3)
    net.train()
    first = float(caption_loss(net, feats, tokens).detach())
    for _ in range(30):
        loss = caption_loss(net, feats, tokens)
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = float(caption_loss(net, feats, tokens).detach())
    assert last < 0.6 * first, (first, last)
    # the frozen encoder did not move
    assert all(p.grad is None for p in net.encoder.parameters())


def test_tag_pretraining_step_lowers_the_tag_loss(batch):
    scenes, x = batch
    net = _tiny()
    feats = net.grid_features(x)
    ids = torch.tensor([net.config.vocab.index(w) for w in TAG_WORDS])
    target = torch.tensor([[w in tags(s) for w in TAG_WORDS] for s in scenes], dtype=torch.float)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=3e-3)
    first = float(tag_loss(net, feats, target, ids).detach())
    for _ in range(30):
        loss = tag_loss(net, feats, target, ids)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(tag_loss(net, feats, target, ids).detach()) < 0.8 * first


def test_attention_maps_have_the_grid_shape_and_sum_to_one_per_word(batch):
    _, x = batch
    net = _tiny()
    feats = net.grid_features(x)
    tokens = encode_batch(net, ["a red cube is left of a blue sphere.", "there is nothing."])
    logits, att = net(feats[:2], tokens)
    assert logits.shape == (2, tokens.shape[1], len(net.config.vocab))
    assert att.shape == (2, tokens.shape[1], G * G)
    assert torch.allclose(att.sum(-1), torch.ones(2, tokens.shape[1]), atol=1e-5)
    words, maps = net.greedy(feats[:2], max_len=12)
    for w, m in zip(words, maps):
        assert m.shape == (len(w), G, G)
        assert torch.allclose(m.sum((1, 2)), torch.ones(len(w)), atol=1e-5)


def test_beam_search_with_beam_one_is_greedy_decoding(batch):
    _, x = batch
    net = _tiny(seed=3)
    feats = net.grid_features(x)
    for i in range(4):
        g_words, g_maps = net.greedy(feats[i:i + 1], max_len=20)
        b_words, b_maps = net.beam_search(feats[i:i + 1], beam=1, max_len=20)
        assert b_words == g_words[0]
        assert torch.allclose(b_maps, g_maps[0])
    words, maps = net.beam_search(feats[:1], beam=3, max_len=20)
    assert maps.shape == (len(words), G, G)


def test_beam_search_finds_a_sequence_at_least_as_likely_as_greedy(batch):
    _, x = batch
    net = _tiny(seed=5)
    feats = net.grid_features(x[:1])

    def logp(ids):
        eos = net.config.vocab.index("<eos>")
        tok = torch.tensor([[1] + ids + [eos]])
        lp = net(feats, tok[:, :-1])[0].log_softmax(-1)
        return float(lp[0].gather(-1, tok[0, 1:, None]).sum())
    g, _ = net.greedy(feats, max_len=10)
    b, _ = net.beam_search(feats, beam=4, max_len=10)
    if len(g[0]) < 9 and len(b) < 9:  # both finished within the length
        assert logp(b) >= logp(g[0]) - 1e-4


def test_nucleus_sampling_repeats_with_its_seed(batch):
    _, x = batch
    net = _tiny()
    feats = net.grid_features(x)
    a, _ = net.sample(feats, top_p=0.9, seed=7, max_len=15)
    b, _ = net.sample(feats, top_p=0.9, seed=7, max_len=15)
    c, _ = net.sample(feats, top_p=0.9, seed=8, max_len=15)
    assert a == b
    assert a != c  # an untrained model spreads its probability: other seed, other words
    with pytest.raises(ValueError):
        net.sample(feats, top_p=0.0)


def test_checkpoint_round_trip(tmp_path, batch):
    _, x = batch
    net = _tiny(seed=1)
    path = save_captioner(net, tmp_path / "cap.safetensors", {"card": {"steps": 3}})
    back = load_captioner(path)
    assert back.config == net.config
    for k, v in net.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
    feats = net.grid_features(x)
    assert net.greedy(feats, max_len=10)[0] == back.greedy(back.grid_features(x), max_len=10)[0]
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError):
        load_captioner(tmp_path / "bad.safetensors")
    with pytest.raises(FileNotFoundError):
        load_captioner(tmp_path / "missing.safetensors")


def test_tokens_round_trip_and_unknown_words():
    net = _tiny()
    text = "a large red metal cube is left of a small cyan rubber sphere."
    assert detokenize(net.decode_ids(net.encode_text(text))) == text
    assert net.decode_ids(net.encode_text("a zebra")) == ["a", "<unk>"]
    assert tokenize("A cube. A sphere") == ["a", "cube", ".", "a", "sphere"]


def _obj(shape, color, size="large", material="rubber", x=0.0, y=0.0):
    return SceneObject(shape=shape, color=color, size=size, material=material, x=x, y=y,
                       rotation=0.0)


def test_hallucination_against_hand_built_scenes():
    scene = Scene((_obj("cube", "red", x=-1), _obj("sphere", "blue", "small", "metal", x=1)))
    assert mentions("a large red rubber cube is left of a small blue metal sphere.") == [
        {"size": "large", "color": "red", "material": "rubber", "shape": "cube"},
        {"size": "small", "color": "blue", "material": "metal", "shape": "sphere"}]
    # everything named exists: 0 of 2
    s = hallucination(["a large red rubber cube is left of a small blue metal sphere."], [scene])
    assert (s.mentions, s.hallucinated, s.rate, s.objects_named) == (2, 0, 0.0, 2)
    # a green cube and a cylinder do not exist; "a red cube" does (partial mention)
    s = hallucination(["a green cube is left of a red cube. a cylinder is behind a sphere.",
                       "there is nothing."], [scene, scene])
    assert (s.mentions, s.hallucinated) == (4, 2)
    assert s.rate == 0.5
    assert (s.captions, s.captions_with_hallucination) == (2, 1)
    assert s.objects_named == 0  # no mention names all four attributes
    # an attribute bound to the wrong object is a hallucination
    s = hallucination(["a small red rubber cube is left of a large blue metal sphere."], [scene])
    assert s.hallucinated == 2
    with pytest.raises(ValueError):
        hallucination(["a cube"], [])


def test_references_leave_out_the_held_out_shape():
    scene = Scene((_obj("cube", "red", x=-1, y=-1), _obj("cylinder", "blue", x=0, y=0),
                   _obj("sphere", "gray", x=1, y=1)))
    refs = references(scene, 3, held_out="cylinder")
    assert len(refs) == 3 and all("cylinder" not in r for r in refs)
    assert all("cube" in r and "sphere" in r for r in refs)
    assert any("cylinder" in r for r in references(scene, 3))
    assert len(without_shape(scene, "cylinder").objects) == 2
    assert tags(scene) >= {"cylinder", "cube", "sphere", "red", "blue", "gray", "large"}


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**__import__("os").environ,
                                                       "OMP_NUM_THREADS": "1"})


def test_cli_caption_with_the_shipped_captioner(tmp_path):
    assert ASSET.is_file(), "assets/scenes/scene_captioner.safetensors ships with the repo"
    img = tmp_path / "scene.png"
    from PIL import Image
    Image.fromarray(render(sample_scene(2_000_123), 128).image).save(img)
    r = _cli("caption", "--model", "scene-captioner", str(img), "--attention-dir",
             str(tmp_path / "att"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["model"] == "scene-captioner" and out["caption"]
    assert len(out["attention"]) == len(out["words"]) > 0
    assert all(Path(p).is_file() for p in out["attention"])
    assert any(w in {"cube", "sphere", "cylinder"} for w in out["words"])


def test_cli_errors_are_one_line(tmp_path):
    r = _cli("eval-scene-captioner", "--split", "train")
    assert r.returncode == 2 and "val or test" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"nope")
    r = _cli("eval-scene-captioner", "--checkpoint", str(bad), "--n", "5")
    assert r.returncode == 2 and "not a scene captioner" in r.stderr
    r = _cli("train-scene-captioner", "--held-out", "pyramid")
    assert r.returncode == 2 and "held_out" in r.stderr
