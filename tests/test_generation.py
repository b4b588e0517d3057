"""Text-to-image on the scene world (issue 11, part 1): tiny UNet + text encoder configs, one
training step, deterministic sampling per seed, guidance, user errors, the GeNeVA-style
metric against hand-built scenes, and the commands."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import UserInputError
from engine.generation.evaluate import Phrase, read_description, score_images
from engine.generation.pipeline import GeneratePipeline, check_settings
from engine.generation.text import null_ids, pad_batch, tokenize
from engine.generation.train import diffusion_loss, to_tensor
from engine.models.scene_generator import (ASSET, GeneratorConfig, SceneGeneratorNet,
                                           load_generator, make_scheduler, save_generator)
from engine.scenes.scene import SceneObject

ROOT = Path(__file__).resolve().parents[1]
TEXT = "a large blue metal sphere left of a small yellow cube"


def _tiny(seed: int = 0) -> SceneGeneratorNet:
    torch.manual_seed(seed)
    cfg = GeneratorConfig(image_size=16, block_out_channels=(8, 16, 16), attention_heads=2,
                          text_dim=16, text_layers=1, text_heads=2, num_train_timesteps=100)
    return SceneGeneratorNet(cfg).eval()


@pytest.fixture(scope="module")
def pipe():
    return GeneratePipeline(_tiny(), name="tiny")


# --- text -------------------------------------------------------------------------------------

def test_tokenize_keeps_the_world_words_and_maps_synonyms():
    cfg = GeneratorConfig()
    t = tokenize("A BIG blue shiny ball, left of a tiny yellow block.", cfg.vocab, cfg.max_tokens)
    assert t.words == ("large", "blue", "metal", "sphere", "left", "small", "yellow", "cube", ".")
    assert t.ids[0] == 1 and t.ids[-1] == 2 and len(t.ids) == len(t.words) + 2
    assert t.notes == ()


def test_unknown_words_are_skipped_with_a_note_and_unicode_is_kept():
    cfg = GeneratorConfig()
    t = tokenize("a red cube and a 🐱 חתול dog", cfg.vocab, cfg.max_tokens)
    assert t.words == ("red", "cube")
    assert len(t.notes) == 1 and "חתול" in t.notes[0] and "dog" in t.notes[0]


@pytest.mark.parametrize("text", ["", "   \n\t", "\x00\x01", "🐱🐶 dog cat", "12345678901234"])
def test_empty_or_worldless_text_is_a_user_error(text):
    cfg = GeneratorConfig()
    with pytest.raises(UserInputError):
        tokenize(text, cfg.vocab, cfg.max_tokens)


def test_too_long_text_is_cut_keeping_eos_and_the_user_is_told():
    cfg = GeneratorConfig()
    t = tokenize(" ".join(["large red metal cube left"] * 20), cfg.vocab, cfg.max_tokens)
    assert len(t.ids) == cfg.max_tokens and t.ids[-1] == 2
    assert any("cut" in n for n in t.notes)


def test_shared_text_cases_give_a_result_or_a_user_error(case_texts, pipe):
    for name, text in case_texts.items():
        try:
            r = pipe(text, seed=0, steps=2)
        except UserInputError as exc:
            assert str(exc).strip(), name
        else:
            assert r.image.shape == (16, 16, 3) and r.image.dtype == np.uint8, name


# --- network, training, sampling ---------------------------------------------------------------

def test_a_training_step_lowers_the_diffusion_loss():
    net = _tiny().train()
    sched = make_scheduler(net.config, "ddpm")
    g = torch.Generator().manual_seed(0)
    x0 = to_tensor(np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8))
    assert x0.shape == (4, 3, 16, 16) and -1 <= float(x0.min()) and float(x0.max()) <= 1
    cfg = net.config
    tokens = pad_batch([tokenize(TEXT, cfg.vocab, cfg.max_tokens).ids, null_ids()] * 2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def loss_at(seed):
        return diffusion_loss(net, sched, x0, tokens, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        first = float(loss_at(1))
    for k in range(15):
        loss = diffusion_loss(net, sched, x0, tokens, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = float(loss_at(1))
    assert last < first, (first, last)
    # the text encoder is trained with the UNet
    assert net.text_encoder.embed.weight.grad is not None


def test_sampling_is_deterministic_per_seed_and_seeds_differ(pipe):
    a = pipe(TEXT, seed=3, steps=4, guidance=3.0)
    b = pipe(TEXT, seed=3, steps=4, guidance=3.0)
    c = pipe(TEXT, seed=4, steps=4, guidance=3.0)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.image.tobytes() != c.image.tobytes()
    assert a.image.shape == (16, 16, 3) and a.image.dtype == np.uint8


def test_guidance_changes_the_output_and_zero_guidance_ignores_the_text(pipe):
    g1 = pipe(TEXT, seed=0, steps=3, guidance=1.0).image.astype(int)
    g5 = pipe(TEXT, seed=0, steps=3, guidance=5.0).image.astype(int)
    assert np.abs(g1 - g5).sum() > 0
    u1 = pipe(TEXT, seed=0, steps=3, guidance=0.0).image
    u2 = pipe("there is a small red rubber cylinder", seed=0, steps=3, guidance=0.0).image
    assert u1.tobytes() == u2.tobytes()


def test_the_strip_runs_from_noise_to_the_result_and_progress_counts_steps(pipe):
    seen = []
    r = pipe(TEXT, seed=1, steps=10, guidance=2.0, progress=lambda d, n: seen.append((d, n)))
    assert seen == [(k, 10) for k in range(1, 11)]
    assert r.frame_steps[0] == 0 and r.frame_steps[-1] == 10 and len(r.frames) == 8
    assert r.frame_steps == sorted(r.frame_steps)
    assert r.frames[-1].tobytes() == r.image.tobytes()
    x0 = torch.randn((1, 3, 16, 16), generator=torch.Generator().manual_seed(1))
    assert np.array_equal(r.frames[0], ((x0[0].clamp(-1, 1) + 1) * 127.5).round()
                          .to(torch.uint8).permute(1, 2, 0).numpy())


@pytest.mark.parametrize("seed,steps,guidance", [
    (-1, 10, 3.0), (0, 0, 3.0), (0, 201, 3.0), (0, 10, -0.5), (0, 10, float("nan")),
    (0, 10, 21.0), (None, 10, 3.0), (0, 2.5, 3.0), (0, "many", 3.0), (2**32, 10, 3.0)])
def test_bad_settings_are_user_errors(pipe, seed, steps, guidance):
    with pytest.raises(UserInputError):
        pipe(TEXT, seed=seed, steps=steps, guidance=guidance)


def test_settings_from_a_ui_are_coerced():
    assert check_settings(3.0, 25.0, 2) == (3, 25, 2.0)


def test_checkpoint_round_trip_keeps_the_samples(tmp_path):
    net = _tiny(1)
    path = save_generator(net, tmp_path / "g.safetensors", metadata={"steps_done": 0})
    again = load_generator(path)
    assert again.config == net.config
    a = GeneratePipeline(net)(TEXT, seed=0, steps=3).image
    b = GeneratePipeline(again)(TEXT, seed=0, steps=3).image
    assert a.tobytes() == b.tobytes()
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError):
        load_generator(tmp_path / "bad.safetensors")


# --- the GeNeVA-style metric --------------------------------------------------------------------

def _obj(size, color, material, shape, x, y):
    return SceneObject(shape=shape, color=color, size=size, material=material, x=x, y=y)


def test_read_description_finds_objects_and_relations():
    cfg = GeneratorConfig()
    words = tokenize("a large blue metal sphere is left of a small yellow rubber cube. a small "
                     "yellow rubber cube is behind a large red metal cylinder.",
                     cfg.vocab, cfg.max_tokens).words
    objects, rels = read_description(words)
    assert [o.key() for o in objects] == [("large", "blue", "metal", "sphere"),
                                          ("small", "yellow", "rubber", "cube"),
                                          ("large", "red", "metal", "cylinder")]
    assert [(a.shape, d, b.shape) for a, d, b in rels] == [("sphere", "left", "cube"),
                                                          ("cube", "behind", "cylinder")]


def test_object_f1_attribute_and_relation_accuracy_on_hand_built_scenes():
    from engine.scenes.scene import Camera
    left = Camera().directions()["left"]
    sphere = _obj("large", "blue", "metal", "sphere", 0.0, 0.0)
    cube = _obj("small", "yellow", "rubber", "cube", 0.0, 0.0)
    # image 1: sphere to the left of the cube (as asked), cube right; image 2: the cube came
    # out red and an extra cylinder appeared
    s1 = _obj("large", "blue", "metal", "sphere", 1.5 * left[0], 1.5 * left[1])
    c1 = _obj("small", "yellow", "rubber", "cube", -1.5 * left[0], -1.5 * left[1])
    s2 = _obj("large", "blue", "metal", "sphere", -1.5 * left[0], -1.5 * left[1])
    c2 = _obj("small", "red", "rubber", "cube", 1.5 * left[0], 1.5 * left[1])
    extra = _obj("small", "gray", "metal", "cylinder", 0.0, 2.0)
    rel = [(Phrase("large", "blue", "metal", "sphere"), "left",
            Phrase("small", "yellow", "rubber", "cube"))]
    out = score_images([[s1, c1], [s2, c2, extra]], [[sphere, cube], [sphere, cube]], [rel, rel])
    assert (out["tp"], out["n_pred"], out["n_true"]) == (3, 5, 4)
    assert out["precision"] == 0.6 and out["recall"] == 0.75
    assert out["f1"] == round(2 * 0.6 * 0.75 / 1.35, 4)
    # 4 matched pairs: colour wrong once
    assert out["attribute_accuracy"] == {"size": 1.0, "color": 0.75, "material": 1.0,
                                         "shape": 1.0}
    # image 2's cube is not yellow: only image 1's relation is checked, and it holds
    assert out["relations_checked"] == 1 and out["relation_accuracy"] == 1.0
    assert out["exact_images"] == 0.5
    # a wrong size counts against the full F1, not against GeNeVA's shape + colour F1
    big = _obj("large", "yellow", "rubber", "cube", -1.5 * left[0], -1.5 * left[1])
    sized = score_images([[s1, big]], [[sphere, cube]], [rel])
    assert sized["f1"] == 0.5 and sized["f1_shape_colour"] == 1.0
    assert sized["attribute_accuracy"]["size"] == 0.5
    flipped = score_images([[s2, _obj("small", "yellow", "rubber", "cube", 1.5 * left[0],
                                      1.5 * left[1])]], [[sphere, cube]], [rel])
    assert flipped["f1"] == 1.0 and flipped["relation_accuracy"] == 0.0


# --- the shipped model and the commands ----------------------------------------------------------

needs_asset = pytest.mark.skipif(not ASSET.is_file(), reason="no shipped generator")


@needs_asset
def test_generate_command_writes_an_image_and_a_json_line(tmp_path):
    out = tmp_path / "g.png"
    proc = subprocess.run([sys.executable, "-m", "engine", "generate", "--text", TEXT,
                           "--seed", "1", "--steps", "5", "--size", "64", "--out", str(out),
                           "--strip", str(tmp_path / "strip")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["words"][:4] == ["large", "blue", "metal", "sphere"] and line["steps"] == 5
    from PIL import Image
    assert Image.open(out).size == (64, 64)
    assert len(line["strip"]) == 6 and all(Path(p).is_file() for p in line["strip"])


@pytest.mark.parametrize("argv", [["--text", "   "], ["--text", TEXT, "--steps", "0"],
                                  ["--text", TEXT, "--guidance", "nan"],
                                  ["--text", TEXT, "--out", "x.txt"]])
def test_generate_command_user_errors_exit_2(argv, tmp_path):
    if "--out" not in argv:
        argv = argv + ["--out", str(tmp_path / "x.png")]
    proc = subprocess.run([sys.executable, "-m", "engine", "generate", *argv],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


class _OracleNet(torch.nn.Module):
    """Predicts the exact noise that separates x_t from a known clean image ``x0``."""

    def __init__(self, config, x0):
        super().__init__()
        self.config, self.x0 = config, x0
        self.abar = make_scheduler(config, "ddpm").alphas_cumprod

    def encode_text(self, tokens):
        return torch.zeros(tokens.shape[0], tokens.shape[1], self.config.text_dim)

    def denoise(self, noisy, t, states, tokens):
        a = self.abar[t].view(-1, 1, 1, 1)
        return (noisy - a.sqrt() * self.x0) / (1 - a).sqrt()


@pytest.mark.parametrize("steps", [1, 10, 50])
def test_ddim_with_an_oracle_noise_predictor_recovers_the_image(steps):
    cfg = GeneratorConfig(image_size=8, num_train_timesteps=1000)
    x0 = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    r = GeneratePipeline(_OracleNet(cfg, x0))(TEXT, seed=0, steps=steps, guidance=3.0)
    want = ((x0[0] + 1) * 127.5).round().permute(1, 2, 0).numpy()
    assert np.abs(r.image.astype(float) - want).max() <= 1.0
