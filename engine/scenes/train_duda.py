"""Training DUDA on the scene world's CLEVR-Change pairs (``python -m engine train-duda``).

Data: the "changes" datasets of :mod:`engine.scenes.dataset` at ``size`` pixels (train seeds
from 0, validation from 1,000,000; built on first use): half distractor pairs (camera and
lights moved, "no change was made"), half colour / material / add / drop / move changes, each
with four reference captions; every step draws one reference per pair at random (seeded).
With the "parser" encoder (the default) the frozen scene parser's features of every image are
computed once and cached next to the dataset (:func:`cache_frozen_features`), so a step only
runs the adapter, the dual attention and the speaker. Loss: word cross-entropy with teacher
forcing (padding ignored) minus ``entropy_weight`` times the dynamic speaker's mean entropy
(:func:`engine.models.duda.speaker_entropy`, the paper's regulariser). Optimiser: AdamW,
linear warm-up then cosine decay; the batch of step ``s`` is drawn from
``seed * 1_000_003 + s``, so a resumed run sees the same batches. Every ``checkpoint_every``
steps the model, the optimiser and the step go to ``<work_dir>/<out stem>.ckpt.pt``; a run
started with the same settings resumes from there. The final weights go to ``out``
(:func:`engine.models.duda.save_duda`) with the run's settings, wall time and validation
scores in its metadata.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.models.duda import (DudaConfig, DudaNet, caption_loss, save_duda,
                                speaker_entropy)
from engine.models.scene_parser import ASSET as PARSER_ASSET
from engine.scenes.dataset import DatasetSpec, default_data_dir, load_dataset
from engine.scenes.duda import DudaCaptioner, build_vocab, encode, evaluate, to_tensor


@dataclass(frozen=True)
class DudaTrainConfig:
    """Settings of a training run (all recorded in the checkpoint's metadata).

    Attributes:
        n_train, n_val: pairs of the train / validation splits used.
        size: image side (pixels, multiple of 4). width, hidden: the network's sizes.
        steps, batch_size, lr, weight_decay, warmup, clip: optimisation.
        max_tokens: caption length with BOS/EOS.
        encoder: DUDA's image encoder ("parser": the frozen scene parser, whose features are
            computed once per pair and cached next to the dataset; "cnn": a small CNN trained
            with the captioner).
        entropy_weight: weight of the dynamic speaker's entropy bonus (the loss gets
            ``- entropy_weight * speaker_entropy``; the paper's regulariser against the
            speaker collapsing onto one feature).
        attention_supervision: weight of an auxiliary loss that is NOT in the DUDA paper
            (which learns its maps from the captions alone): the cross-entropy between each
            dual-attention map and the changed object's mask in that image (normalised over
            the grid; pairs without the object in that image skipped). 0 trains as the paper.
        seed: initialisation, batch order and reference choice.
        threads: torch CPU threads.
        checkpoint_every: steps between resumable checkpoints (and a loss line).
        max_minutes: wall-time budget; training stops (and saves) when it is spent.
        out: the final safetensors file.
        data_dir, work_dir: datasets' folder; where the resumable checkpoint lives
            (default ``<data_dir>/runs``).
        command: the command line, for the card.
    """

    n_train: int = 12000
    n_val: int = 500
    size: int = 128
    width: int = 16
    hidden: int = 192
    steps: int = 3000
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    clip: float = 1.0
    max_tokens: int = 26
    encoder: str = "parser"
    entropy_weight: float = 0.003
    attention_supervision: float = 0.0
    seed: int = 0
    threads: int = 1
    checkpoint_every: int = 100
    max_minutes: float = 60.0
    out: str = "assets/scenes/duda.safetensors"
    data_dir: str | None = None
    work_dir: str | None = None
    command: str = ""

    def __post_init__(self):
        for name in ("n_train", "n_val", "steps", "batch_size", "threads", "checkpoint_every",
                     "width", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and self.max_minutes > 0):
            raise ValueError(f"lr and max_minutes must be > 0, got {self.lr}, {self.max_minutes}")
        if self.size % 8 or self.size < 16:
            raise ValueError(f"size must be a multiple of 8 and >= 16, got {self.size}")
        if self.entropy_weight < 0:
            raise ValueError(f"entropy_weight must be >= 0, got {self.entropy_weight}")


def _lr(cfg: DudaTrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + np.cos(np.pi * min(t, 1.0)))


def caption_tokens(data: dict[str, np.ndarray], vocab: tuple[str, ...],
                   length: int) -> np.ndarray:
    """(N, R, length) int64: every reference caption of every pair, encoded."""
    refs = [json.loads(str(p))["captions"] for p in data["pairs"]]
    R = max(len(r) for r in refs)
    return np.stack([np.stack([encode(r[k % len(r)], vocab, length) for k in range(R)])
                     for r in refs])


def mask_targets(data: dict[str, np.ndarray], grid: int) -> np.ndarray:
    """(N, 2, grid, grid) float32: per pair, the changed object's mask in the before and the
    after image, pooled to the grid and normalised to sum 1 (all zeros where it is absent)."""
    N, H, W = data["before_ids"].shape
    out = np.zeros((N, 2, grid, grid), np.float32)
    for i, p in enumerate(data["pairs"]):
        for ch in json.loads(str(p))["changes"][:1]:
            for k, (idx, ids) in enumerate(((ch["before_index"], data["before_ids"][i]),
                                            (ch["after_index"], data["after_ids"][i]))):
                if idx is None:
                    continue
                m = (ids == idx).reshape(grid, H // grid, grid, W // grid).mean(axis=(1, 3))
                if m.sum() > 0:
                    out[i, k] = m / m.sum()
    return out


def attention_loss(out: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy -sum t log a over the maps whose target is not empty."""
    maps = torch.stack([out["map_before"], out["map_after"]], 1)       # (B, 2, g, g)
    ce = -(targets * torch.log(maps + 1e-8)).flatten(2).sum(-1)        # (B, 2)
    has = targets.flatten(2).sum(-1) > 0
    return ce[has].mean() if has.any() else ce.sum() * 0


def parser_key(path: str | Path = PARSER_ASSET) -> str:
    """First 12 hex digits of the scene parser checkpoint's SHA-256: names the cache of its
    features, so new parser weights never reuse old features."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def cache_frozen_features(net: DudaNet, spec: DatasetSpec, data_dir: str | Path | None,
                          key: str, batch_size: int = 100, wait_s: float = 0.0,
                          log: Callable[[str], None] | None = None) -> np.ndarray:
    """The frozen encoder's features of every pair of a "changes" dataset, cached per shard.

    Each shard's features go to ``<dataset folder>/frozen-<key>/shard-<k>.npy`` (float16,
    written atomically), so an interrupted run keeps what it computed and a second process
    can compute them while the dataset is still being rendered (``wait_s`` > 0: wait for a
    shard that is not rendered yet, polling every ``wait_s`` seconds).

    Args:
        net: a DUDA network whose :meth:`DudaNet.frozen_features` to use.
        spec: the dataset (its shards must be rendered, or become so when waiting).
        key: names the cache (e.g. :func:`parser_key`).

    Returns:
        (N, 2, C_f, g, g) float16: before and after features of every pair.
    """
    folder = spec.folder(data_dir)
    cache = folder / f"frozen-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    parts = []
    for k, (lo, hi) in enumerate(spec.shards()):
        path = cache / f"shard-{k:05d}.npy"
        if path.exists() and len(np.load(path, mmap_mode="r")) >= hi - lo:
            parts.append(np.load(path)[:hi - lo])
            continue
        shard = folder / f"shard-{k:05d}.npz"
        while not shard.exists():
            if wait_s <= 0:
                raise FileNotFoundError(f"dataset shard {shard} is missing (build it first)")
            time.sleep(wait_s)
        t0 = time.perf_counter()
        with np.load(shard) as z:
            before, after = z["before"][:hi - lo], z["after"][:hi - lo]
        out = []
        with torch.no_grad():
            for a in range(0, len(before), batch_size):
                fb = net.frozen_features(to_tensor(before[a:a + batch_size], spec.size))
                fa = net.frozen_features(to_tensor(after[a:a + batch_size], spec.size))
                out.append(torch.stack([fb, fa], 1).half().numpy())
        arr = np.concatenate(out)
        tmp = path.with_name(path.stem + ".tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, path)
        parts.append(arr)
        if log:
            rate = (hi - lo) / (time.perf_counter() - t0)
            log(f"frozen features {spec.split} shard {k}: {rate:.1f} pairs/s")
    return np.concatenate(parts)


def train_step(net: DudaNet, opt: torch.optim.Optimizer, before: torch.Tensor,
               after: torch.Tensor, tokens: torch.Tensor, clip: float = 1.0,
               targets: torch.Tensor | None = None, weight: float = 0.0,
               entropy_weight: float = 0.0, precomputed: bool = False) -> dict[str, float]:
    """One teacher-forced optimisation step.

    Loss = caption cross-entropy (PAD ignored) + ``weight`` x :func:`attention_loss` (when
    ``targets`` are given) - ``entropy_weight`` x :func:`speaker_entropy`.

    Args:
        before, after: images (B, 3, S, S) in [0, 1], or with ``precomputed`` their
            :meth:`DudaNet.frozen_features`.

    Returns:
        ``loss`` (the total), ``caption`` (cross-entropy), ``entropy`` (nats) and ``alpha``
        (mean speaker weights of before, difference, after over the batch's words).
    """
    net.train()
    out = net(before, after, tokens, precomputed=precomputed)
    xe = caption_loss(out["logits"], tokens)
    ent = speaker_entropy(out["alpha"], tokens)
    loss = xe - entropy_weight * ent
    if targets is not None and weight > 0:
        loss = loss + weight * attention_loss(out, targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
    opt.step()
    valid = (tokens[:, 1:] != 0).float()[..., None]
    alpha = (out["alpha"].detach() * valid).sum((0, 1)) / valid.sum().clamp_min(1.0)
    return {"loss": float(loss.detach()), "caption": float(xe.detach()),
            "entropy": float(ent.detach()), "alpha": [round(float(a), 3) for a in alpha]}


def train_duda(cfg: DudaTrainConfig, log: Callable[[str], None] = print) -> dict:
    """Train (or resume), save ``cfg.out`` and return the card's facts."""
    torch.set_num_threads(cfg.threads)
    data_dir = Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    work = Path(cfg.work_dir) if cfg.work_dir else data_dir / "runs"
    work.mkdir(parents=True, exist_ok=True)
    ckpt_path = work / (Path(cfg.out).stem + ".ckpt.pt")
    t_data = time.perf_counter()
    train = load_dataset(DatasetSpec("changes", "train", cfg.n_train, cfg.size), data_dir)
    val = load_dataset(DatasetSpec("changes", "val", cfg.n_val, cfg.size), data_dir)
    vocab = build_vocab(c for p in train["pairs"] for c in json.loads(str(p))["captions"])
    tokens = caption_tokens(train, vocab, cfg.max_tokens)
    torch.manual_seed(cfg.seed)
    net = DudaNet(DudaConfig(vocab=vocab, image_size=cfg.size, width=cfg.width,
                             hidden=cfg.hidden, max_len=cfg.max_tokens - 2,
                             encoder=cfg.encoder))
    targets = (mask_targets(train, net.config.grid) if cfg.attention_supervision > 0
               else None)
    feats = None
    if cfg.encoder == "parser":
        from engine.models.scene_parser import load_parser
        net.encoder.parser.load_state_dict(load_parser().state_dict())
        feats = cache_frozen_features(net, DatasetSpec("changes", "train", cfg.n_train, cfg.size),
                                      data_dir, parser_key(), log=log)
    log(f"data ready in {time.perf_counter() - t_data:.0f}s: {cfg.n_train} train, "
        f"{cfg.n_val} val pairs, {len(vocab)} words")
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
    running = None
    while step < cfg.steps:
        rng = np.random.default_rng(cfg.seed * 1_000_003 + step)
        idx = np.sort(rng.choice(cfg.n_train, cfg.batch_size, replace=False))
        ref = rng.integers(0, tokens.shape[1], cfg.batch_size)
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step)
        batch = tokens[idx, ref]
        batch = batch[:, :int((batch != 0).sum(1).max())]  # drop all-PAD columns
        if feats is not None:
            f = torch.from_numpy(feats[idx].astype(np.float32))      # (B, 2, C_f, g, g)
            xb, xa = f[:, 0], f[:, 1]
        else:
            xb, xa = to_tensor(train["before"][idx], cfg.size), to_tensor(train["after"][idx],
                                                                          cfg.size)
        st = train_step(net, opt, xb, xa, torch.from_numpy(batch), cfg.clip,
                        None if targets is None else torch.from_numpy(targets[idx]),
                        cfg.attention_supervision, cfg.entropy_weight,
                        precomputed=feats is not None)
        loss = st["caption"]
        running = loss if running is None else 0.95 * running + 0.05 * loss
        step += 1
        elapsed = time.perf_counter() - t0
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or elapsed > cfg.max_minutes * 60:
            history.append({"step": step, "wall_time_s": round(elapsed, 1),
                            "cpu_time_s": round(time.process_time() - c0, 1),
                            "loss": round(running, 4), "entropy": round(st["entropy"], 3),
                            "alpha": st["alpha"]})
            log(json.dumps(history[-1]))
            torch.save({"settings": settings, "model": net.state_dict(),
                        "optimizer": opt.state_dict(), "step": step, "wall_time_s": elapsed,
                        "cpu_time_s": time.process_time() - c0}, ckpt_path)
            if elapsed > cfg.max_minutes * 60:
                log(f"wall-time budget of {cfg.max_minutes} min spent at step {step}")
                break
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    net.eval()
    scores = evaluate(DudaCaptioner(net), val)
    card = {"config": settings, "command": cfg.command, "steps_done": step,
            "train_wall_time_s": round(wall, 1), "train_cpu_time_s": round(cpu, 1),
            "threads": cfg.threads, "validation": scores["total"], "history": history}
    save_duda(net, cfg.out, {"card": card})
    log(json.dumps({"validation": scores["total"], "train_wall_time_s": round(wall, 1)}))
    return card


__all__ = ["DudaTrainConfig", "attention_loss", "caption_tokens", "mask_targets", "train_duda",
           "train_step"]
