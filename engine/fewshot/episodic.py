"""One episodic meta-trainer for every few-shot method (Vinyals et al., 2016: "test and train
conditions must match"), on Omniglot's training alphabets with rotations as new classes.

    python -m engine train-fewshot --method protonet --way 20 --shot 1 --episodes 3000 \
        --seed 0 --out assets/omniglot/protonet.safetensors

Each episode: N-way K-shot support, Q queries per class; loss = the method's ``episode_loss``
(cross-entropy on the logits by default; MSE for Relation Networks, pairwise BCE for the siamese
net). Adam; the learning rate is halved at 50% and 75% of the run, progress being the larger of
the episode fraction and the wall-time fraction. Training stops at ``episodes`` or at
``max_minutes`` of wall time, whichever comes first; the weights kept are those of the best
validation check (on the validation alphabet). Each method's Conv-4 configuration, constructor
arguments and trainer come from its class (``train_setup``, a
:class:`~engine.fewshot.methods.base.TrainSetup`).
"""
from __future__ import annotations

import copy
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from engine.errors import UserInputError, unknown_name_message
from engine.fewshot.evaluate import evaluate_episodes
from engine.fewshot.methods import list_methods, method_class
from engine.fewshot.omniglot import SPLITS, EpisodeSampler, load_split, with_rotations

DATA_NOTE = ("Omniglot images_background_small1+2 (8 alphabets, 242 characters, 20 drawers), "
             "28x28 via engine.fewshot.omniglot.preprocess_drawing; train alphabets with "
             "90/180/270 degree rotations as extra classes")


@dataclass
class TrainConfig:
    """Settings of one training run (all recorded in the card).

    Attributes:
        method: a registered method with a ``train_setup`` (see :func:`trainable_methods`).
        way, shot, query: training episodes' N, K and queries per class.
        episodes: episodes (or mini-batch steps for Baseline / Baseline++).
        lr: Adam learning rate.
        seed: seeds initialisation and episode sampling.
        max_minutes: wall-time budget; training stops early when it is spent.
        val_checks: validation checks during training (the best weights are kept).
        val_episodes: episodes per validation check.
        final_val_episodes: episodes of the validation figure written in the card.
        inner_steps, inner_lr: MAML's inner loop during meta-training.
        batch_size: Baseline pre-training mini-batch.
        threads: torch threads.
        out: checkpoint path (.safetensors); the card goes beside it (.json).
        command: the command line that started the run.
    """

    method: str
    way: int = 5
    shot: int = 1
    query: int = 5
    episodes: int = 2000
    lr: float = 1e-3
    seed: int = 0
    max_minutes: float = 7.0
    val_checks: int = 5
    val_episodes: int = 200
    final_val_episodes: int = 600
    inner_steps: int = 2
    inner_lr: float = 0.4
    batch_size: int = 64
    threads: int = 1
    out: str = "assets/omniglot/model.safetensors"
    command: str = ""

    def __post_init__(self) -> None:
        """Refuse settings no run can use (a user's mistake, named by its command-line flag).

        Raises:
            UserInputError: a count below 1, a rate or budget that is not a positive number,
                negative inner steps.
        """
        for flag, value in (("--way", self.way), ("--shot", self.shot), ("--query", self.query),
                            ("--episodes", self.episodes), ("--val-checks", self.val_checks),
                            ("--val-episodes", self.val_episodes),
                            ("--final-val-episodes", self.final_val_episodes),
                            ("--batch-size", self.batch_size), ("--threads", self.threads)):
            if value < 1:
                raise UserInputError(f"{flag} must be >= 1, got {value}")
        for flag, value in (("--lr", self.lr), ("--max-minutes", self.max_minutes),
                            ("--inner-lr", self.inner_lr)):
            if not (math.isfinite(value) and value > 0):
                raise UserInputError(f"{flag} must be a positive number, got {value}")
        if self.inner_steps < 0:
            raise UserInputError(f"--inner-steps must be >= 0, got {self.inner_steps}")

    def method_kwargs(self) -> dict:
        """The method's constructor arguments (stored in the checkpoint's metadata)."""
        cls = method_class(self.method)
        kwargs = dict(cls.train_setup.kwargs)
        if cls.adapts_weights:
            kwargs.update(inner_steps=self.inner_steps, inner_lr=self.inner_lr)
        return kwargs


def trainable_methods() -> list[str]:
    """Registered methods that can be meta-trained here (those with a ``train_setup``)."""
    return [m for m in list_methods() if method_class(m).train_setup is not None]


def _lr_at(cfg: TrainConfig, progress: float) -> float:
    """Learning rate at ``progress`` in [0, 1]: halved at 50% and again at 75%."""
    return cfg.lr * (0.5 ** ((progress >= 0.5) + (progress >= 0.75)))


def train_fewshot(cfg: TrainConfig) -> dict:
    """Train ``cfg.method``, write the checkpoint and its card; returns the card.

    Raises:
        UserInputError: unknown method. ValueError: impossible episode sizes.
    """
    if cfg.method not in trainable_methods():
        raise UserInputError(unknown_name_message("method", cfg.method, trainable_methods()))
    from engine.fewshot.checkpoints import build_method, save_checkpoint
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # initialisation of a fresh model: a training script's choice
    setup = method_class(cfg.method).train_setup
    backbone_config = setup.backbone
    model = build_method(cfg.method, backbone_config, cfg.method_kwargs())
    model = model.to(memory_format=torch.channels_last)
    train = with_rotations(load_split("train").images).float().div_(255).unsqueeze(2)
    val = load_split("val").float_images()
    val_way = min(cfg.way, val.shape[0])
    t0 = time.perf_counter()
    if setup.trainer == "classification":
        from engine.fewshot.pretrain import pretrain_baseline
        step_fn, state = pretrain_baseline(model, train, cfg)
    else:
        step_fn, state = _episodic_steps(model, train, cfg)
    best, best_state, history, done, checks_done = -1.0, None, [], 0, 0
    budget = cfg.max_minutes * 60
    for step in range(cfg.episodes):
        # progress: the larger of the episode fraction and the time-budget fraction
        progress = max(step / cfg.episodes, (time.perf_counter() - t0) / budget)
        loss = step_fn(_lr_at(cfg, progress))
        done = step + 1
        progress = max(done / cfg.episodes, (time.perf_counter() - t0) / budget)
        out_of_time = progress >= 1.0
        if progress >= (checks_done + 1) / cfg.val_checks or out_of_time:
            checks_done = int(progress * cfg.val_checks)
            score = evaluate_episodes(model, val, val_way, cfg.shot, 5, cfg.val_episodes,
                                      seed=1000 + done)
            history.append({"episode": done, "train_loss": round(loss, 4),
                            "val_accuracy": round(score.accuracy, 4),
                            "minutes": round((time.perf_counter() - t0) / 60, 2)})
            print(json.dumps(history[-1]), flush=True)
            if score.accuracy > best:
                best, best_state = score.accuracy, copy.deepcopy(model.state_dict())
        if out_of_time:
            break
    wall = time.perf_counter() - t0
    model.load_state_dict(best_state)
    final = evaluate_episodes(model, val, val_way, cfg.shot, 5, cfg.final_val_episodes, seed=7)
    out = Path(cfg.out)
    save_checkpoint(model, out, cfg.method, backbone_config, cfg.method_kwargs())
    card = {
        "name": f"omniglot-{out.stem}", "method": cfg.method, "data": DATA_NOTE,
        "split": {k: list(v) for k, v in SPLITS.items()},
        "way": cfg.way, "shot": cfg.shot, "query": cfg.query,
        "episodes_planned": cfg.episodes, "episodes_done": done,
        "stopped_by_time_budget": done < cfg.episodes, "seed": cfg.seed,
        "command": cfg.command, "train_wall_time_s": round(wall, 1), "threads": cfg.threads,
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
        "config": asdict(cfg), "history": history,
        "validation": {"split": "val", "alphabets": list(SPLITS["val"]), "way": val_way,
                       "shot": cfg.shot, "query": 5, **final.as_dict()},
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def _episodic_steps(model: nn.Module, train: torch.Tensor, cfg: TrainConfig):
    """The per-episode update of meta-training; returns (step_fn, optimizer)."""
    sampler = EpisodeSampler(train, cfg.way, cfg.shot, cfg.query, seed=cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = getattr(model, "episode_loss", None)

    def step(lr: float) -> float:
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        s, sl, q, ql = sampler.sample()
        s = s.contiguous(memory_format=torch.channels_last)
        q = q.contiguous(memory_format=torch.channels_last)
        model.process_support_set(s, sl)
        logits = model(q)  # (N*Q, N)
        loss = loss_fn(logits, ql) if loss_fn else nn.functional.cross_entropy(logits, ql)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step, opt
