"""ConSE: an image's semantic embedding as the convex combination of the word embeddings of its
most probable classes (Norouzi et al., "Zero-Shot Learning by Convex Combination of Semantic
Embeddings", ICLR 2014).

Here the classes are ImageNet-1k's, the word embeddings are MiniLM sentence embeddings of the
class names, so an image lands in the same 384-d space as any text the user types.
"""
from __future__ import annotations

import threading

import torch
from torch import nn

#: Classes combined per image (ConSE's T; the paper uses T = 10).
TOP_T = 10

_NAME_CACHE: dict[tuple[int, tuple[str, ...]], torch.Tensor] = {}
_NAME_LOCK = threading.Lock()


def class_name_embeddings(text_model, class_names: tuple[str, ...]) -> torch.Tensor:
    """MiniLM embeddings of the class names, computed once per process (per text model).

    Args:
        text_model: an encoder with ``encode(list[str]) -> .embeddings (N, D)``.
        class_names: the classifier's C class names, in logit order.

    Returns:
        (C, D) float32 tensor of unit vectors (shared: do not modify).
    """
    key = (id(text_model), tuple(class_names))
    with _NAME_LOCK:
        if key not in _NAME_CACHE:
            _NAME_CACHE[key] = text_model.encode(list(class_names)).embeddings.float()
        return _NAME_CACHE[key]


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
