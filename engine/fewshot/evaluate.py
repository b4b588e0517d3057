"""Episode evaluation shared by the trainers and ``python -m engine fewshot-eval``.

Accuracy is averaged over episodes; the 95% confidence interval is 1.96 standard errors of the
per-episode accuracies, as in Snell et al. and Chen et al. Methods that only use the backbone to
embed images (all but those that adapt their weights per task, MAML) embed the split once and
run the episodes on cached features.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from engine.fewshot.omniglot import EpisodeSampler
from engine.fewshot.methods.base import FewShotClassifier


@dataclass(frozen=True)
class EpisodeScore:
    """Mean accuracy (0..1), 95% CI half-width and number of episodes."""

    accuracy: float
    ci95: float
    episodes: int

    def as_dict(self) -> dict:
        return {"accuracy": round(self.accuracy, 5), "ci95": round(self.ci95, 5),
                "episodes": self.episodes}


@torch.no_grad()
def embed_all(backbone: nn.Module, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """(C, D, 1, H, W) images -> (C, D, F) features, in eval mode, batched."""
    C, D = images.shape[:2]
    flat = images.flatten(0, 1)
    feats = torch.cat([backbone(flat[i:i + batch]) for i in range(0, flat.shape[0], batch)])
    return feats.reshape(C, D, -1)


def evaluate_episodes(model: FewShotClassifier, images: torch.Tensor, way: int, shot: int,
                      query: int, episodes: int, seed: int = 0) -> EpisodeScore:
    """Mean accuracy of ``model`` over random episodes of ``images``.

    Args:
        model: a few-shot classifier (put in eval mode here; restored afterwards).
        images: (C, D, 1, 28, 28) float32 in [0, 1], C classes x D drawers.
        way, shot, query: N, K and queries per class.
        episodes: number of episodes.
        seed: seeds the episode sampler.

    Returns:
        :class:`EpisodeScore`.
    """
    was_training = model.training
    model.eval()
    backbone = model.backbone
    cache = not model.adapts_weights
    pool = embed_all(backbone, images) if cache else images
    sampler = EpisodeSampler(pool, way, shot, query, seed=seed)
    accs = []
    try:
        if cache:
            model.backbone = nn.Identity()
        for _ in range(episodes):
            s, sl, q, ql = sampler.sample()
            with torch.no_grad():
                model.process_support_set(s, sl)
                pred = model(q).argmax(1)
            accs.append((pred == ql).float().mean().item())
    finally:
        model.backbone = backbone
        model.train(was_training)
    acc = torch.tensor(accs, dtype=torch.float64)
    ci = 1.96 * acc.std().item() / math.sqrt(len(accs)) if len(accs) > 1 else float("nan")
    return EpisodeScore(acc.mean().item(), ci, len(accs))
