"""Training and Recall@K evaluation of the scene composers (:mod:`engine.models.cir`).

Training follows TIRG's batch-based classification loss: a batch is ``groups_per_batch``
groups (a base scene and its edits, :mod:`engine.retrieval.scene_triplets`); every query of the
batch is scored against every image of those groups, and cross-entropy asks for its target.
A base's other edits are therefore always in the batch as hard negatives. Each step draws one
wording of every instruction (the drawn one or another template). Features are the cached,
frozen EfficientNet-Lite0 vectors, so a step costs milliseconds.

Evaluation (:func:`recall_at_k`): every query of the held-out split against its whole gallery
(>= 10,000 scenes), the reference itself left out (it never has the target's scene graph);
Recall@K = share of queries with an item of the target's scene graph in the top K.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.models.cir import CirConfig, CirNet, tokenize
from engine.retrieval.scene_triplets import TripletSet

KS = (1, 5, 10)


@dataclass
class TrainConfig:
    """Optimisation settings (defaults: what the shipped checkpoints were trained with)."""

    steps: int = 3000
    groups_per_batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    seed: int = 0
    max_minutes: float = 20.0
    eval_every: int = 500
    #: "sampled": every query is scored against the images of the batch's groups (its
    #: siblings) plus ``extra_negatives`` random images of the training gallery; "batch":
    #: only the groups' images.
    negatives: str = "sampled"
    extra_negatives: int = 1500


class TextTable:
    """Precomputed MiniLM embeddings of every wording (what the "minilm" encoder reads).

    Args:
        embed: callable(list of N texts) -> (N, 384) float32 array.
        texts: every wording that will be asked for.
    """

    def __init__(self, embed: Callable[[list[str]], np.ndarray], texts: list[str]) -> None:
        uniq = sorted(set(texts))
        self.index = {t: i for i, t in enumerate(uniq)}
        self.table = torch.from_numpy(np.asarray(embed(uniq), np.float32))

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return self.table[[self.index[t] for t in texts]]


def text_input(net: CirNet, texts: list[str], table: TextTable | None):
    """What :class:`CirNet` takes as text: the strings (LSTM) or their MiniLM rows (nothing
    for the image-only baseline, which reads no text)."""
    if net.config.method == "image-only":
        return None
    return texts if net.config.text_encoder == "lstm" else table(texts)


def build_vocab(data: TripletSet) -> list[str]:
    """Every word of every wording of the training instructions, sorted."""
    return sorted({w for texts in data.texts for t in texts for w in tokenize(t)})


def make_net(method: str, text_encoder: str, train: TripletSet, dim: int = 256,
             dropout: float = 0.3) -> CirNet:
    """A fresh composer whose feature standardisation is the training gallery's."""
    vocab = build_vocab(train) if text_encoder == "lstm" else []
    net = CirNet(CirConfig(method=method, text_encoder=text_encoder, dim=dim, vocab=vocab,
                           dropout=dropout))
    feats = torch.from_numpy(train.features)
    net.feat_mean.copy_(feats.mean(0))
    net.feat_std.copy_(feats.std(0).clamp_min(1e-3))
    return net


@torch.no_grad()
def recall_at_k(net: CirNet, data: TripletSet, table: TextTable | None = None,
                ks: tuple[int, ...] = KS, n_queries: int | None = None, chunk: int = 512,
                per_op: bool = False) -> dict:
    """Recall@K (%) of ``net`` on ``data``'s queries against its whole gallery.

    Returns:
        ``{"R@1": ..., "R@5": ..., "R@10": ..., "queries": Q, "gallery": N}`` and, with
        ``per_op``, ``"per_op": {op: {"R@1": ...}}``.
    """
    net.eval()
    q_total = len(data.refs) if n_queries is None else min(n_queries, len(data.refs))
    feats = torch.from_numpy(data.features)
    cand = net.embed_images(feats)
    mask = data.target_mask()
    kmax = min(max(ks), len(data.keys) - 1)
    hits = np.zeros((q_total, len(ks)), bool)
    for a in range(0, q_total, chunk):
        idx = np.arange(a, min(a + chunk, q_total))
        texts = [data.texts[i][0] for i in idx]
        refs = torch.from_numpy(data.refs[idx])
        q = net.query(feats[refs], text_input(net, texts, table))
        s = net.scores(q, cand)  # (b, N)
        s[torch.arange(len(idx)), refs] = -float("inf")  # the reference is not an answer
        top = s.topk(kmax, dim=1).indices.numpy()
        good = np.take_along_axis(mask[idx], top, axis=1)  # (b, kmax)
        for j, k in enumerate(ks):
            hits[idx, j] = good[:, :k].any(1)
    out = {f"R@{k}": round(100 * float(hits[:, j].mean()), 2) for j, k in enumerate(ks)}
    out.update(queries=int(q_total), gallery=len(data.keys))
    if per_op:
        ops = np.array(data.ops[:q_total])
        out["per_op"] = {op: {f"R@{k}": round(100 * float(hits[ops == op, j].mean()), 2)
                              for j, k in enumerate(ks)} for op in sorted(set(ops))}
    return out


def train(net: CirNet, data: TripletSet, cfg: TrainConfig, table: TextTable | None = None,
          val: TripletSet | None = None, progress: Callable[[str], None] | None = None,
          checkpoint: Callable[[CirNet, int], None] | None = None) -> dict:
    """Train ``net`` in place (see the module docstring); returns a log dict."""
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    feats = torch.from_numpy(data.features)
    by_group: dict[int, list[int]] = {}
    for q, r in enumerate(data.refs):
        by_group.setdefault(int(data.groups[r]), []).append(q)
    items_of: dict[int, np.ndarray] = {}
    for n, g in enumerate(data.groups):
        items_of.setdefault(int(g), []).append(n)
    groups = np.array(sorted(by_group))
    if net.config.method == "image-only":
        return {"steps": 0, "minutes": 0.0, "note": "no trainable query"}
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, cfg.steps // 20)  # linear warm-up, then cosine decay to 0
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min((i + 1) / warm, 0.5 * (
        1 + np.cos(np.pi * min(1.0, max(0, i - warm) / max(1, cfg.steps - warm))))))
    t0, log, losses = time.perf_counter(), {"val": []}, []
    step = 0
    for step in range(1, cfg.steps + 1):
        net.train()
        chosen = rng.choice(groups, size=min(cfg.groups_per_batch, len(groups)), replace=False)
        cand_idx = np.concatenate([items_of[int(g)] for g in chosen])
        pos = {int(n): i for i, n in enumerate(cand_idx)}
        qs = np.concatenate([by_group[int(g)] for g in chosen])
        texts = [data.texts[q][int(rng.integers(len(data.texts[q])))] for q in qs]
        labels = torch.tensor([pos[int(data.targets[q])] for q in qs])
        if cfg.negatives == "sampled":
            others = rng.choice(len(feats), min(cfg.extra_negatives, len(feats)), replace=False)
            cand_idx = np.concatenate([cand_idx, np.setdiff1d(others, cand_idx)])
        s = net(feats[torch.from_numpy(data.refs[qs])], text_input(net, texts, table),
                feats[torch.from_numpy(cand_idx)])
        # the reference is not an answer (as in evaluation)
        s = s.masked_fill(torch.from_numpy(cand_idx)[None] == torch.from_numpy(
            data.refs[qs])[:, None], -1e4)
        loss = F.cross_entropy(s, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        minutes = (time.perf_counter() - t0) / 60
        if step % cfg.eval_every == 0 or step == cfg.steps or minutes > cfg.max_minutes:
            entry = {"step": step, "loss": round(float(np.mean(losses[-100:])), 4),
                     "minutes": round(minutes, 2)}
            if val is not None:
                entry.update({k: v for k, v in recall_at_k(net, val, table).items()
                              if k.startswith("R@")})
            log["val"].append(entry)
            if progress:
                progress(json.dumps(entry))
            if checkpoint:
                checkpoint(net, step)
        if minutes > cfg.max_minutes:
            break
    log.update(steps=step, minutes=round((time.perf_counter() - t0) / 60, 2))
    net.eval()
    return log


def save_checkpoint(net: CirNet, path: str | Path, card: dict | None = None) -> None:
    """Write ``net`` as safetensors (float32) with its config (and a card dict) as metadata."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"config": json.dumps(net.config.to_dict())}
    if card:
        meta["card"] = json.dumps(card)
    tensors = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> CirNet:
    """:func:`engine.models.cir.load_composer` (eval mode)."""
    from engine.models.cir import load_composer
    return load_composer(path)


__all__ = ["KS", "TextTable", "TrainConfig", "build_vocab", "load_checkpoint", "make_net",
           "recall_at_k", "save_checkpoint", "text_input", "train"]
