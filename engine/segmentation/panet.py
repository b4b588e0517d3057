"""PANet few-shot segmentation without training: masked average pooling of support features gives
class prototypes; every query position is labelled by its cosine similarity to them (Wang et al.,
"PANet: Few-Shot Image Semantic Segmentation with Prototype Alignment Network", ICCV 2019).

1. multi-scale features: the backbone's maps at several strides (e.g. 8, 16, 32) are each
   L2-normalised per position, upsampled to the finest of them and concatenated (a hypercolumn,
   Hariharan et al., CVPR 2015), so every scale weighs the same in a cosine;
2. masked average pooling (MAP): the support mask is area-averaged down to the feature map's
   size (a soft mask m in [0, 1]); the foreground prototype of class c is
   ``sum(F * m) / sum(m)``, the background prototype ``sum(F * (1 - m)) / sum(1 - m)``, each
   averaged over the K shots (PANet, Eq. 1-2);
3. each query feature is compared with every prototype by cosine similarity, multiplied by
   ``alpha`` (PANet uses 20) and soft-maxed over background + N classes (Eq. 3);
4. self-support refinement (training-free, after Fan et al., "Self-Support Few-Shot Semantic
   Segmentation", ECCV 2022): the query's most confident object positions (top 10 % of each
   class's probability) and background positions (the 70 % least object-like) give query
   prototypes, averaged with the support ones, and step 3 is repeated (2 rounds). This matters
   when the query's background looks nothing like the support's;
5. the probability map is upsampled bilinearly to the query's size.

Measured effect on the bundled evaluation set: see the README ("Few-shot segmentation").

A support set whose masks cover the whole image has no background prototype; then the
background score of a query position is a fixed cosine, the midpoint between the lowest and
highest foreground cosine over the query (a relative threshold, documented in the UI).

**Is the object in the query at all?** PANet always labels *something* (self-support
refinement makes the query's most object-like area the object). :meth:`PANet.presence`
compares, before refinement, how object-like the query's most object-like points are (the 99th
percentile of the margin ``cos(fg) - cos(bg)`` over query positions) with how object-like the
support's own object is (the median margin over its mask): a ratio near or above 1 means the
query holds something as close to the prototype as the support object itself; a small ratio
means nothing in the query is. :data:`PRESENCE_RATIO` is the threshold measured on the
evaluation set (``python -m benchmarks.segment_presence``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

#: Cosine scale before the softmax (PANet's alpha).
ALPHA = 20.0
#: Presence ratio below which the query probably does not hold the object (see the module
#: docstring; measured on assets/segmentation/eval with ``benchmarks.segment_presence``: the
#: largest threshold that keeps at least 70 % of present objects, 1-shot).
PRESENCE_RATIO = 0.4
#: Quantile of the query's margins taken as its most object-like points.
PRESENCE_QUANTILE = 0.99


@dataclass
class Prototypes:
    """Prototypes at one feature scale.

    Attributes:
        foreground: (N, C) float32, one per class.
        background: (C,) float32, or None when no support pixel is background.
        support_margin: (N,) float32, per class the median of ``cos(fg) - cos(bg)`` over its
            support mask positions (how object-like the support's own object is), or None
            (no background prototype, or prototypes not pooled from a support set).
    """

    foreground: torch.Tensor
    background: torch.Tensor | None
    support_margin: torch.Tensor | None = None


def masked_average_pooling(features: torch.Tensor, masks: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Foreground and background prototypes of one class from K shots.

    Args:
        features: (K, C, h, w) float32 support feature maps (same scale; sizes may differ per
            shot only if called per shot).
        masks: (K, 1, H, W) float32 in {0, 1} at image resolution.

    Returns:
        (foreground (C,), background (C,) or None). Shots without foreground pixels are
        ignored for the foreground, shots without background pixels for the background.

    Raises:
        ValueError: no shot has a foreground pixel.
    """
    K, C, h, w = features.shape
    soft = F.adaptive_avg_pool2d(masks.float(), (h, w))  # (K, 1, h, w) in [0, 1]
    fg_area = soft.sum(dim=(2, 3))  # (K, 1)
    bg_area = (1 - soft).sum(dim=(2, 3))  # (K, 1)
    fg = (features * soft).sum(dim=(2, 3)) / fg_area.clamp(min=1e-6)  # (K, C)
    bg = (features * (1 - soft)).sum(dim=(2, 3)) / bg_area.clamp(min=1e-6)  # (K, C)
    has_fg, has_bg = fg_area[:, 0] > 1e-6, bg_area[:, 0] > 1e-3
    if not has_fg.any():
        raise ValueError("no support mask has a foreground pixel")
    background = bg[has_bg].mean(0) if has_bg.any() else None
    return fg[has_fg].mean(0), background


def prototype_probabilities(query: torch.Tensor, protos: Prototypes, alpha: float = ALPHA
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-max over cosine similarities of query positions to the prototypes.

    Args:
        query: (1, C, h, w) float32 query feature map.
        protos: prototypes of the same scale (N classes).
        alpha: cosine scale.

    Returns:
        (probs (N + 1, h, w) float32 summing to 1 over dim 0, background first;
         cos_fg (N, h, w) float32 cosine to each foreground prototype, in [-1, 1]).
    """
    q = F.normalize(torch.nan_to_num(query[0]), dim=0, eps=1e-8)  # (C, h, w)
    fg = F.normalize(torch.nan_to_num(protos.foreground), dim=1, eps=1e-8)  # (N, C)
    cos_fg = torch.einsum("nc,chw->nhw", fg, q)  # (N, h, w)
    if protos.background is not None:
        bg = F.normalize(torch.nan_to_num(protos.background), dim=0, eps=1e-8)
        cos_bg = torch.einsum("c,chw->hw", bg, q)[None]  # (1, h, w)
    else:  # no background shown: a relative threshold on the best foreground cosine
        best = cos_fg.max(0).values
        cos_bg = ((best.min() + best.max()) / 2).expand_as(best)[None]
    logits = alpha * torch.cat([cos_bg, cos_fg])  # (N + 1, h, w)
    return logits.softmax(0), cos_fg


def _margins(feat: torch.Tensor, protos: Prototypes) -> torch.Tensor:
    """(N, h, w) ``cos(fg_k) - cos(bg)`` of every position of (1, C, h, w) ``feat`` (needs a
    background prototype)."""
    q = F.normalize(torch.nan_to_num(feat[0]), dim=0, eps=1e-8)  # (C, h, w)
    fg = F.normalize(torch.nan_to_num(protos.foreground), dim=1, eps=1e-8)  # (N, C)
    bg = F.normalize(torch.nan_to_num(protos.background), dim=0, eps=1e-8)  # (C,)
    return torch.einsum("nc,chw->nhw", fg, q) - torch.einsum("c,chw->hw", bg, q)[None]


def hypercolumn(maps: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate feature maps of several strides at the finest one.

    Args:
        maps: (B, C_s, h_s, w_s) float32 maps, finest first.

    Returns:
        (B, sum C_s, h_0, w_0) float32; each scale L2-normalised per position first.
    """
    size = maps[0].shape[2:]
    return torch.cat([F.normalize(F.interpolate(m.float(), size=size, mode="bilinear",
                                                align_corners=False), dim=1, eps=1e-8)
                      for m in maps], dim=1)


def self_support(query: torch.Tensor, probs: torch.Tensor, protos: Prototypes,
                 fg_quantile: float = 0.9, bg_quantile: float = 0.7) -> Prototypes:
    """Average the support prototypes with prototypes pooled from the query's confident areas.

    Args:
        query: (1, C, h, w) query features; probs: (N + 1, h, w) current probabilities.
        protos: support prototypes.
        fg_quantile: a class's positions at or above this quantile of its probability are its
            query foreground; bg_quantile: positions whose best class probability is at or
            below this quantile are query background.

    Returns:
        Refined :class:`Prototypes` (a background prototype always exists afterwards).
    """
    fgs = []
    for k in range(protos.foreground.shape[0]):
        p = probs[k + 1]
        hi = (p >= torch.quantile(p, fg_quantile)).float()[None, None]
        q_fg, _ = masked_average_pooling(query, hi)
        fgs.append((protos.foreground[k] + q_fg) / 2)
    best = probs[1:].max(0).values
    lo = (best <= torch.quantile(best, bg_quantile)).float()[None, None]
    q_bg, _ = masked_average_pooling(query, lo)
    bg = q_bg if protos.background is None else (protos.background + q_bg) / 2
    return Prototypes(torch.stack(fgs), bg)


class PANet(nn.Module):
    """Training-free PANet over a frozen multi-scale encoder.

    Args:
        encoder: module mapping (1, 3, H, W) -> list of feature maps (smp encoder interface).
        feature_indices: which of the encoder's outputs to use, finest first (e.g. strides
            8, 16, 32), combined as a hypercolumn.
        alpha: cosine scale before the softmax.
        refine_steps: self-support refinement rounds (0 = plain PANet).
    """

    def __init__(self, encoder: nn.Module, feature_indices: tuple[int, ...] = (3, 4, 5),
                 alpha: float = ALPHA, refine_steps: int = 2) -> None:
        super().__init__()
        self.encoder, self.feature_indices, self.alpha = encoder, feature_indices, alpha
        self.refine_steps = refine_steps

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) normalised image -> (1, C, h, w) hypercolumn of the chosen maps."""
        feats = self.encoder(x)
        return hypercolumn([feats[i] for i in self.feature_indices])

    @torch.no_grad()
    def prototypes(self, support: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> Prototypes:
        """Support prototypes.

        Args:
            support: per class, K pairs (image (1, 3, H, W) normalised, mask (H, W) bool).

        Returns:
            :class:`Prototypes` with N = len(support) classes in support order; the background
            prototype averages every shot that has background pixels.

        Raises:
            ValueError: a class whose masks are all empty (the message names the class index).
        """
        fgs, bgs, kept = [], [], []
        for c, shots in enumerate(support):
            class_fg = []
            for img, mask in shots:
                if not mask.any():
                    continue
                feat = self.features(img)
                fg, bg = masked_average_pooling(feat, mask.float()[None, None])
                class_fg.append(fg)
                kept.append((c, feat, mask))
                if bg is not None:
                    bgs.append(bg)
            if not class_fg:
                raise ValueError(f"class {c + 1}: every support mask is empty")
            fgs.append(torch.stack(class_fg).mean(0))
        protos = Prototypes(torch.stack(fgs), torch.stack(bgs).mean(0) if bgs else None)
        if protos.background is None:
            return protos
        margins = [[] for _ in fgs]  # per class: margins of its support mask positions
        for c, feat, mask in kept:
            h, w = feat.shape[-2:]
            inside = F.adaptive_avg_pool2d(mask.float()[None, None], (h, w))[0, 0] >= 0.5
            if not inside.any():  # a mask thinner than one feature cell: its best cell
                inside = F.adaptive_avg_pool2d(mask.float()[None, None], (h, w))[0, 0] > 0
            margins[c].append(_margins(feat, protos)[c][inside])
        protos.support_margin = torch.stack([torch.cat(m).median() for m in margins])
        return protos

    @torch.no_grad()
    def presence(self, feat: torch.Tensor, protos: Prototypes) -> torch.Tensor | None:
        """How object-like the query's most object-like points are, relative to the support's
        own object (see the module docstring), before any refinement.

        Args:
            feat: (1, C, h, w) query features (:meth:`features`).
            protos: support prototypes from :meth:`prototypes`.

        Returns:
            (N,) float32 ratios (>= :data:`PRESENCE_RATIO`: the object is probably there), or
            None when the support gives no background or a non-positive margin to compare with.
        """
        if protos.support_margin is None or bool((protos.support_margin <= 0).any()):
            return None
        top = torch.quantile(_margins(feat, protos).flatten(1), PRESENCE_QUANTILE, dim=1)  # (N,)
        return top / protos.support_margin

    @torch.no_grad()
    def forward(self, query: torch.Tensor, protos: Prototypes,
                out_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Segment a query.

        Args:
            query: (1, 3, H, W) normalised query image.
            protos: from :meth:`prototypes`.
            out_size: (height, width) of the returned maps.

        Returns:
            (probs (N + 1, H_out, W_out) float32, background first;
             similarity (N, H_out, W_out) float32: cosine to each final foreground prototype).
        """
        return self.segment(self.features(query), protos, out_size)

    @torch.no_grad()
    def segment(self, feat: torch.Tensor, protos: Prototypes, out_size: tuple[int, int]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` on query features already computed ((1, C, h, w), :meth:`features`)."""
        probs, cos = prototype_probabilities(feat, protos, self.alpha)
        for _ in range(self.refine_steps):
            probs, cos = prototype_probabilities(feat, self_support(feat, probs, protos),
                                                 self.alpha)
        up = lambda t: F.interpolate(t[None], size=out_size, mode="bilinear",  # noqa: E731
                                     align_corners=False)[0]
        return up(probs), up(cos)
