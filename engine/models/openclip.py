"""OpenCLIP image encoder (Ilharco et al., 2021; Cherti et al., CVPR 2023) for hub mode.

Gives L2-normalised image embeddings (few-shot backbone, retrieval) and text embeddings
(retrieval, through :class:`engine.retrieval.encoders.ClipEncoder`). Tests build a tiny
``open_clip.CLIP`` from a config with ``pretrained=None``.
"""
from __future__ import annotations

import torch
from torch import nn


class OpenClipEncoder(nn.Module):
    """Wraps an ``open_clip`` CLIP model.

    Args:
        model: an ``open_clip.CLIP`` (or CustomTextCLIP) module.
        tokenizer: the matching open_clip tokenizer (optional: image-only use).
    """

    def __init__(self, model: nn.Module, tokenizer=None) -> None:
        super().__init__()
        self.model, self.tokenizer = model.eval(), tokenizer

    @classmethod
    def from_pretrained(cls, arch: str, pretrained: str, **kwargs) -> "OpenClipEncoder":
        """Create ``arch`` with the ``pretrained`` tag's weights (downloaded once, cached)."""
        import open_clip
        model = open_clip.create_model(arch, pretrained=pretrained, **kwargs)
        return cls(model, open_clip.get_tokenizer(arch))

    @torch.no_grad()
    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised images -> (B, D) float32 unit-norm embeddings."""
        return nn.functional.normalize(self.model.encode_image(pixel_values).float(), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """N texts -> (N, D) float32 unit-norm embeddings (truncated to the context length)."""
        if self.tokenizer is None:
            raise RuntimeError("this encoder was built without a tokenizer")
        tokens = self.tokenizer(texts)
        return nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.encode_image(pixel_values)
