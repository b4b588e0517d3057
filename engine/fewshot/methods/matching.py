"""Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, NeurIPS 2016).

A query's class distribution is an attention-weighted sum of the support labels,
``P(y | x, S) = sum_i a(x, x_i) y_i`` with ``a = softmax_i cos(f(x), g(x_i))``. With *full
context embeddings* (FCE), g is a bidirectional LSTM over the support set and f an attention
LSTM that reads the support set for a few steps; without FCE, f = g = the backbone.

The cosines are multiplied by ``scale`` (10) before the softmax, as reimplementations do (Chen et
al., 2019 use 100): unscaled cosines in [-1, 1] give an almost uniform attention over 20 support
images, and the loss cannot go below ~2.2 in 20-way training.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.fewshot.methods.base import (FewShotClassifier, TrainSetup, register_method,
                                         resolve_feature_dim)


@register_method("matching")
class MatchingNetworks(FewShotClassifier):
    """Matching Networks without full context embeddings (f = g = the backbone).

    Args:
        backbone: feature extractor, (B, ...) -> (B, D).
        scale: multiplies the cosine similarities before the attention softmax.
    """

    title = "Matching Networks (attention over the support images)"
    short_title = "Matching Networks"
    train_setup = TrainSetup(kwargs={"scale": 10.0})

    def __init__(self, backbone: nn.Module | None = None, scale: float = 10.0) -> None:
        super().__init__(backbone)
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = scale
        self.support_embeddings: torch.Tensor | None = None

    def _support_context(self, g: torch.Tensor) -> torch.Tensor:
        """g(x_i, S) from the support features (S, D) -> (S, D); here the features."""
        return g

    def _query_context(self, q: torch.Tensor) -> torch.Tensor:
        """f(x, S) from the query features (Q, D) -> (Q, D); here the features."""
        return q

    def process_support_set(self, support: torch.Tensor, labels: torch.Tensor) -> None:
        super().process_support_set(support, labels)
        self.support_embeddings = self._support_context(self.support_features)  # (S, D)

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        """(Q, ...) -> (Q, N) logits = log sum_i a(x, x_i) y_i (softmax gives P(y | x, S))."""
        self._require_support()
        q = self._query_context(self.embed(query))  # (Q, D)
        cos = nn.functional.normalize(q, dim=1) @ nn.functional.normalize(
            self.support_embeddings, dim=1).T  # (Q, S)
        attention = torch.softmax(self.scale * cos, dim=1)
        one_hot = nn.functional.one_hot(self.support_labels, self.n_way).to(q.dtype)  # (S, N)
        return torch.log(attention @ one_hot + 1e-8)


@register_method("matching-fce")
class MatchingNetworksFCE(MatchingNetworks):
    """Matching Networks with full context embeddings: g is a bidirectional LSTM over the
    support set, f an attention LSTM that reads the support set for ``fce_steps`` steps.

    Args:
        backbone: feature extractor, (B, ...) -> (B, D).
        feature_dim: D, the size of the LSTMs; None = ask the backbone (64 for Conv-4 on 28x28).
        fce_steps: read steps of the attention LSTM f.
        scale: multiplies the cosine similarities before the attention softmax.
    """

    title = "Matching Networks with full context embeddings (LSTMs over the support set)"
    short_title = "Matching Networks (FCE)"
    train_setup = TrainSetup(kwargs={"fce_steps": 5, "scale": 10.0})

    def __init__(self, backbone: nn.Module | None = None, feature_dim: int | None = None,
                 fce_steps: int = 5, scale: float = 10.0) -> None:
        super().__init__(backbone, scale=scale)
        D = resolve_feature_dim(backbone, feature_dim)
        self.fce_steps = fce_steps
        self.support_lstm = nn.LSTM(D, D, batch_first=True, bidirectional=True)
        self.query_cell = nn.LSTMCell(2 * D, D)

    def _support_context(self, g: torch.Tensor) -> torch.Tensor:
        """g(x_i, S) = x_i + h_fwd_i + h_bwd_i of the bidirectional LSTM. (S, D) -> (S, D)."""
        D = g.shape[1]
        h, _ = self.support_lstm(g.unsqueeze(0))  # (1, S, 2D)
        return g + h[0, :, :D] + h[0, :, D:]

    def _query_context(self, q: torch.Tensor) -> torch.Tensor:
        """f(x, S): the attention LSTM of Vinyals et al. (appendix A.1). (Q, D) -> (Q, D)."""
        g = self.support_embeddings
        h, c = q, torch.zeros_like(q)
        for _ in range(self.fce_steps):
            attention = torch.softmax(h @ g.T, dim=1)  # (Q, S)
            read = attention @ g  # (Q, D)
            h, c = self.query_cell(torch.cat([q, read], 1), (h, c))
            h = h + q
        return h
