"""Training and evaluating the scene parser (``python -m engine train-scene-parser`` /
``eval-scene-parser``).

Data: the "scenes" datasets of :mod:`engine.scenes.dataset` (train seeds from 0, validation
from 1,000,000, test from 2,000,000; built on first use). Optimiser: AdamW, linear warm-up then
cosine decay, batches drawn from ``seed + step`` so a resumed run sees the same batches. Every
``checkpoint_every`` steps the model, the optimiser and the step go to
``<work_dir>/scene_parser.ckpt.pt``; a run started with the same settings resumes from there.
The final weights go to ``out`` (safetensors, :func:`engine.models.scene_parser.save_parser`)
with the run's settings, wall time and validation scores in its metadata.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.models.scene_parser import SceneParserConfig, SceneParserNet, save_parser
from engine.scenes.dataset import DatasetSpec, default_data_dir, load_dataset
from engine.scenes.parser import (SceneParser, Targets, encode_targets, parser_loss,
                                  score_parses)
from engine.scenes.scene import Scene


@dataclass(frozen=True)
class ParserTrainConfig:
    """Settings of a training run (all recorded in the checkpoint's metadata).

    Attributes:
        n_train, n_val: scenes of the train / validation splits used.
        size: image side (pixels). width: the network's base width.
        steps, batch_size, lr, weight_decay, warmup: optimisation.
        seed: initialisation and batch order.
        threads: torch CPU threads.
        checkpoint_every: steps between resumable checkpoints (and validation checks).
        max_minutes: wall-time budget; training stops (and saves) when it is spent.
        out: the final safetensors file.
        data_dir: the datasets' folder (default :func:`default_data_dir`).
        work_dir: where the resumable checkpoint lives (default ``<data_dir>/runs``).
        command: the command line, for the card.
    """

    n_train: int = 8000
    n_val: int = 500
    size: int = 128
    width: int = 16
    steps: int = 2500
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 0
    threads: int = 1
    checkpoint_every: int = 250
    max_minutes: float = 100.0
    out: str = "assets/scenes/scene_parser.safetensors"
    data_dir: str | None = None
    work_dir: str | None = None
    command: str = ""

    def __post_init__(self):
        for name in ("n_train", "n_val", "steps", "batch_size", "threads", "checkpoint_every",
                     "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and self.max_minutes > 0):
            raise ValueError(f"lr and max_minutes must be > 0, got {self.lr}, {self.max_minutes}")
        if self.size % 16:
            raise ValueError(f"size must be a multiple of 16, got {self.size}")


def _scenes(data: dict[str, np.ndarray]) -> list[Scene]:
    return [Scene.from_json(str(s)) for s in data["scenes"]]


def _lr(cfg: ParserTrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + np.cos(np.pi * min(t, 1.0)))


def _batch(images: np.ndarray, targets: Targets, idx: np.ndarray):
    x = torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float() / 255.0
    return x, targets[idx].torch()


def evaluate(parser: SceneParser, images: np.ndarray, scenes: list[Scene], tol: float = 0.5):
    """:class:`~engine.scenes.parser.ParseScore` of ``parser`` on rendered ``images``."""
    preds = [[p.object for p in objs] for objs in parser(images)]
    return score_parses(preds, [list(s.objects) for s in scenes], tol)


def train_step(net: SceneParserNet, opt: torch.optim.Optimizer, x: torch.Tensor,
               t: dict[str, torch.Tensor]) -> dict[str, float]:
    """One optimisation step on a batch; returns the losses (floats)."""
    net.train()
    losses = parser_loss(net(x), t)
    opt.zero_grad(set_to_none=True)
    losses["total"].backward()
    opt.step()
    return {k: float(v.detach()) for k, v in losses.items()}


def train_scene_parser(cfg: ParserTrainConfig, log: Callable[[str], None] = print) -> dict:
    """Train (or resume), save ``cfg.out`` and return the card's facts."""
    torch.set_num_threads(cfg.threads)
    data_dir = Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    work = Path(cfg.work_dir) if cfg.work_dir else data_dir / "runs"
    work.mkdir(parents=True, exist_ok=True)
    ckpt_path = work / (Path(cfg.out).stem + ".ckpt.pt")
    t_data = time.perf_counter()
    train = load_dataset(DatasetSpec("scenes", "train", cfg.n_train, cfg.size), data_dir)
    val = load_dataset(DatasetSpec("scenes", "val", cfg.n_val, cfg.size), data_dir)
    targets = encode_targets(_scenes(train), cfg.size)
    val_scenes = _scenes(val)
    log(f"data ready in {time.perf_counter() - t_data:.0f}s: {cfg.n_train} train, "
        f"{cfg.n_val} val scenes")

    torch.manual_seed(cfg.seed)
    net = SceneParserNet(SceneParserConfig(width=cfg.width))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, wall, cpu = 0, 0.0, 0.0
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("command", "max_minutes")}
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        if ck["settings"] == settings:
            net.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            step, wall, cpu = ck["step"], ck["wall_time_s"], ck.get("cpu_time_s", 0.0)
            log(f"resumed at step {step} ({wall:.0f}s of training so far)")
        else:
            log(f"{ckpt_path} has other settings: starting afresh")
    history = []
    t0 = time.perf_counter() - wall
    c0 = time.process_time() - cpu
    running: dict[str, float] = {}
    while step < cfg.steps:
        rng = np.random.default_rng(cfg.seed * 1_000_003 + step)
        idx = np.sort(rng.choice(cfg.n_train, cfg.batch_size, replace=False))
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step)
        losses = train_step(net, opt, *_batch(train["images"], targets, idx))
        running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in losses.items()}
        step += 1
        elapsed = time.perf_counter() - t0
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or elapsed > cfg.max_minutes * 60:
            net.eval()
            score = evaluate(SceneParser(net), val["images"][:200], val_scenes[:200])
            history.append({"step": step, "wall_time_s": round(elapsed, 1),
                            "cpu_time_s": round(time.process_time() - c0, 1),
                            **{k: round(v, 4) for k, v in running.items()},
                            "val_f1_200": round(score.f1, 4)})
            log(json.dumps(history[-1]))
            torch.save({"settings": settings, "model": net.state_dict(),
                        "optimizer": opt.state_dict(), "step": step, "wall_time_s": elapsed,
                        "cpu_time_s": time.process_time() - c0},
                       ckpt_path)
            if elapsed > cfg.max_minutes * 60:
                log(f"wall-time budget of {cfg.max_minutes} min spent at step {step}")
                break
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    net.eval()
    score = evaluate(SceneParser(net), val["images"], val_scenes)
    card = {"config": settings, "command": cfg.command, "steps_done": step,
            "train_wall_time_s": round(wall, 1), "train_cpu_time_s": round(cpu, 1),
            "threads": cfg.threads,
            "validation": score.as_dict(), "history": history}
    save_parser(net, cfg.out, {"card": card})
    log(json.dumps({"validation": score.as_dict(), "train_wall_time_s": round(wall, 1)}))
    return card


__all__ = ["ParserTrainConfig", "evaluate", "train_scene_parser", "train_step"]
