"""Standard pre-training for Baseline / Baseline++ (Chen et al., ICLR 2019): mini-batch
classification of all base classes (Omniglot training alphabets x 4 rotations) with a linear or
cosine classifier; the classifier is then thrown away and only the backbone is kept.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.fewshot.methods.baseline import make_classifier


def pretrain_baseline(model, train: torch.Tensor, cfg):
    """Build the per-step update of standard pre-training.

    Args:
        model: a Baseline / Baseline++ classifier (its backbone is trained).
        train: (C, D, 1, 28, 28) float32 in [0, 1]: C base classes x D examples.
        cfg: :class:`engine.fewshot.episodic.TrainConfig` (batch_size, lr, seed, episodes).

    Returns:
        (step_fn(lr) -> loss, optimizer); one step = one mini-batch of ``cfg.batch_size``.
    """
    C, D = train.shape[:2]
    with torch.no_grad():
        dim = model.backbone(train[0, :2]).shape[1]
    head = make_classifier(model.classifier, dim, C, scale=model.scale)
    params = list(model.backbone.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    flat = train.flatten(0, 1)  # (C*D, 1, 28, 28)
    labels = torch.arange(C).repeat_interleave(D)

    def step(lr: float) -> float:
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        idx = torch.randint(flat.shape[0], (cfg.batch_size,), generator=gen)
        x = flat[idx].contiguous(memory_format=torch.channels_last)
        loss = nn.functional.cross_entropy(head(model.backbone(x)), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step, opt
