"""Training of the scene generator (``python -m engine train-generator``): DDPM's noise
regression (Ho et al., 2020): for a training image ``x0`` in [-1, 1], a timestep ``t`` drawn
uniformly from the schedule and noise ``eps ~ N(0, I)``, minimise
``|| eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t, text) ||^2``. One of the
scene's descriptions is drawn per step; 10 % of the texts are replaced by the empty
description so the same network also predicts the unconditional noise (classifier-free
guidance, Ho & Salimans 2021). AdamW, linear warm-up, gradient clipping at 1, and an
exponential moving average of the weights (what is saved and sampled from).

Resumable: every ``checkpoint_minutes`` the full state (weights, EMA, optimiser, step, random
generators) goes to ``<out>.state.pt`` next to the data (``data/generation/runs/``); a new run
with the same ``out`` continues from it. Seeded: the same config gives the same weights on the
same machine and thread count.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from engine.generation import data as gdata
from engine.generation.text import null_ids, pad_batch, tokenize
from engine.models.scene_generator import (GeneratorConfig, SceneGeneratorNet, make_scheduler,
                                           save_generator)


@dataclass(frozen=True)
class GeneratorTrainConfig:
    """One training run.

    Attributes:
        n_train, n_val: scenes of the train and validation splits used.
        steps: optimiser steps (the run also stops after ``max_minutes``).
        batch_size, lr, warmup: AdamW batch size, peak learning rate, warm-up steps.
        drop_text: share of texts replaced by the empty description (classifier-free guidance).
        ema: EMA decay (with the 1+n / 10+n warm-up).
        image_size, block_out_channels, text_dim: model size (see
            :class:`engine.models.scene_generator.GeneratorConfig`).
        seed, threads: random seed, torch threads.
        checkpoint_minutes, max_minutes: how often the state is saved; wall-time budget.
        data_dir: rendered data folder (default ``data/generation``).
        out: the safetensors file written (EMA weights; card = same name with ``.md``).
        command: the command line, for the card.
    """

    n_train: int = 10000
    n_val: int = 256
    steps: int = 4000
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 50
    drop_text: float = 0.1
    ema: float = 0.999
    image_size: int = 32
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    text_dim: int = 64
    seed: int = 0
    threads: int = 1
    checkpoint_minutes: float = 3.0
    max_minutes: float = 40.0
    data_dir: str | None = None
    out: str = "assets/generation/scene_generator.safetensors"
    command: str = ""

    def __post_init__(self):
        if self.n_train < 1 or self.steps < 1 or self.batch_size < 1:
            raise ValueError("n-train, steps and batch-size must be >= 1")
        if not 0.0 <= self.drop_text < 1.0:
            raise ValueError(f"drop-text must be in [0, 1), got {self.drop_text}")
        if self.image_size % 4:
            raise ValueError(f"image size must be a multiple of 4, got {self.image_size}")


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def diffusion_loss(net: SceneGeneratorNet, scheduler, x0: torch.Tensor, tokens: torch.Tensor,
                   generator: torch.Generator) -> torch.Tensor:
    """DDPM's epsilon-MSE of ``net`` on clean images ``x0`` (B, 3, S, S) in [-1, 1] with text
    ``tokens`` (B, L); timesteps and noise drawn from ``generator``. Returns a scalar."""
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=generator)
    noisy = scheduler.add_noise(x0, noise, t)
    return F.mse_loss(net(noisy, t, tokens), noise)


def _token_table(texts: np.ndarray, cfg: GeneratorConfig) -> list[list[tuple[int, ...]]]:
    return [[tokenize(d, cfg.vocab, cfg.max_tokens).ids for d in json.loads(t)] for t in texts]


def train_generator(cfg: GeneratorTrainConfig, log: Callable[[str], None] = print) -> dict:
    """Train (or resume) and write ``cfg.out`` (EMA weights) and its card; returns the card's
    facts (steps done, wall time, validation loss, ...)."""
    from tqdm import tqdm
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    mcfg = GeneratorConfig(image_size=cfg.image_size, block_out_channels=cfg.block_out_channels,
                           text_dim=cfg.text_dim)
    train = gdata.load("train", cfg.n_train, cfg.image_size, cfg.data_dir, log)
    val = gdata.load("val", cfg.n_val, cfg.image_size, cfg.data_dir, log)
    train_x, val_x = to_tensor(train["images"]), to_tensor(val["images"])
    train_tok, val_tok = _token_table(train["texts"], mcfg), _token_table(val["texts"], mcfg)

    net = SceneGeneratorNet(mcfg).train()
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0)
    scheduler = make_scheduler(mcfg, "ddpm")
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    out = Path(cfg.out)
    runs = Path(cfg.data_dir or gdata.default_data_dir()) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    state_path = runs / (out.stem + ".state.pt")
    step, wall, history = 0, 0.0, []
    if state_path.exists():
        st = torch.load(state_path, weights_only=False)
        if st["train_config"] != {k: v for k, v in asdict(cfg).items() if k != "command"}:
            log(f"note: {state_path} was written by another config; resuming anyway")
        net.load_state_dict(st["net"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        rng.bit_generator.state = st["rng"]
        step, wall, history = st["step"], st["wall"], st["history"]
        log(f"resumed from {state_path} at step {step} ({wall / 60:.1f} min)")

    # a fixed validation batch: the same noise and timesteps every time
    vgen = torch.Generator().manual_seed(12345)
    vtok = pad_batch([t[0] for t in val_tok], mcfg.max_tokens)

    def val_loss(model) -> float:
        vgen.manual_seed(12345)
        with torch.no_grad():
            return float(diffusion_loss(model, scheduler, val_x, vtok, vgen))

    def save_state() -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"net": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "gen": gen.get_state(), "rng": rng.bit_generator.state, "step": step,
                    "wall": wall, "history": history,
                    "train_config": {k: v for k, v in asdict(cfg).items() if k != "command"}},
                   tmp)
        tmp.replace(state_path)  # atomic: an interrupted save keeps the previous state

    t_start, t_ckpt = time.perf_counter() - wall, time.perf_counter()
    cpu0 = time.process_time()
    bar = tqdm(total=cfg.steps, initial=step, desc="train-generator", mininterval=10)
    running = None
    while step < cfg.steps and (time.perf_counter() - t_start) < cfg.max_minutes * 60:
        idx = rng.integers(0, len(train_x), cfg.batch_size)
        seqs = []
        for i in idx:
            if rng.random() < cfg.drop_text:
                seqs.append(null_ids())
            else:
                choices = train_tok[i]
                seqs.append(choices[int(rng.integers(len(choices)))])
        tokens = pad_batch(seqs, mcfg.max_tokens)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup)
        loss = diffusion_loss(net, scheduler, train_x[idx], tokens, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        decay = min(cfg.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - decay)
        step += 1
        running = float(loss) if running is None else 0.98 * running + 0.02 * float(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}")
        if time.perf_counter() - t_ckpt > cfg.checkpoint_minutes * 60:
            wall = time.perf_counter() - t_start
            history.append({"step": step, "minutes": round(wall / 60, 2),
                            "train_loss": round(running, 5), "val_loss_ema": round(val_loss(ema), 5)})
            log(json.dumps(history[-1]))
            save_state()
            t_ckpt = time.perf_counter()
    bar.close()
    wall = time.perf_counter() - t_start
    final_val = val_loss(ema)
    history.append({"step": step, "minutes": round(wall / 60, 2),
                    "train_loss": round(running or float("nan"), 5),
                    "val_loss_ema": round(final_val, 5)})
    save_state()
    facts = {"steps_done": step, "train_wall_time_s": round(wall, 1),
             "cpu_time_s_this_session": round(time.process_time() - cpu0, 1),
             "val_loss_ema": round(final_val, 5), "history": history,
             "train_config": {k: v for k, v in asdict(cfg).items()}}
    save_generator(ema, out, metadata=facts)
    write_card(out.with_suffix(".md"), facts)
    return facts


def write_card(path: Path, facts: dict) -> None:
    """The model card: data, split, seed, command, wall time, losses (metrics are added by
    ``eval-generator``'s numbers in docs/generate.md)."""
    c = facts["train_config"]
    lines = [
        "# scene-generator: text-to-image diffusion on the scene world", "",
        "Trained here by `engine/generation/train.py`; network `engine/models/scene_generator.py`;"
        " documentation and measurements: [docs/generate.md](../../docs/generate.md).", "",
        f"- **Command**: `{c['command']}`",
        f"- **Data**: scenes {0}-{c['n_train'] - 1} of the train split (seeds 0+) of 1-3 objects, "
        f"rendered at {c['image_size']}x{c['image_size']} (default camera and lights), 5 "
        "descriptions each (`describe_scene`, relation choices seeded 0-4); validation loss on "
        f"{c['n_val']} scenes of seeds 1,000,000+; evaluation on seeds 2,000,000+.",
        f"- **Training**: {facts['steps_done']} steps of {c['batch_size']}, AdamW lr {c['lr']} "
        f"(warm-up {c['warmup']}), text dropped {c['drop_text']:.0%} of the time, EMA "
        f"{c['ema']}, seed {c['seed']}, {c['threads']} thread(s).",
        f"- **Wall time**: {facts['train_wall_time_s'] / 60:.1f} min (shared 2-core machine).",
        f"- **Validation loss (EMA weights, fixed noise)**: {facts['val_loss_ema']}",
        "", "| step | minutes | train loss (running) | validation loss (EMA) |",
        "| --- | --- | --- | --- |"]
    lines += [f"| {h['step']} | {h['minutes']} | {h['train_loss']} | {h['val_loss_ema']} |"
              for h in facts["history"]]
    path.write_text("\n".join(lines) + "\n")
