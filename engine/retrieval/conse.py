"""ConSE: an image's semantic embedding as the convex combination of the word embeddings of its
most probable classes (Norouzi et al., "Zero-Shot Learning by Convex Combination of Semantic
Embeddings", ICLR 2014).

Here the classes are ImageNet-1k's, the word embeddings are MiniLM sentence embeddings of the
class names (:class:`engine.models.class_text.ClassNameEmbeddings`, one table per process), so
an image lands in the same 384-d space as any text the user types.
"""
from __future__ import annotations

import torch
from torch import nn

#: Classes combined per image (ConSE's T; the paper uses T = 10).
TOP_T = 10


def conse_embed(probs: torch.Tensor, name_embeddings: torch.Tensor, top_t: int = TOP_T
                ) -> torch.Tensor:
    """Semantic embeddings of images from their class probabilities.

    Args:
        probs: (N, C) float32 softmax probabilities (rows sum to 1).
        name_embeddings: (C, D) float32 unit class-name embeddings.
        top_t: number of most probable classes combined (1..C).

    Returns:
        (N, D) float32 unit vectors: sum_t p_t * s(y_t) / sum_t p_t, then L2-normalised
        (a uniform-probability row still gives a finite vector).

    Raises:
        ValueError: shapes do not match or ``top_t`` is out of range.
    """
    if probs.ndim != 2 or probs.shape[1] != name_embeddings.shape[0]:
        raise ValueError(f"probs {tuple(probs.shape)} does not match class-name embeddings "
                         f"{tuple(name_embeddings.shape)}")
    if not 1 <= top_t <= probs.shape[1]:
        raise ValueError(f"top_t must be in 1..{probs.shape[1]}, got {top_t}")
    top_p, top_i = torch.nan_to_num(probs.float()).topk(top_t, dim=1)  # (N, T)
    weights = top_p / top_p.sum(1, keepdim=True).clamp(min=1e-12)  # (N, T)
    emb = torch.einsum("nt,ntd->nd", weights, name_embeddings[top_i])  # (N, D)
    return nn.functional.normalize(emb, dim=-1, eps=1e-8)
