"""BLIP image captioning (Li et al., "BLIP: Bootstrapping Language-Image Pre-training", ICML 2022)
through transformers' ``BlipForConditionalGeneration``.

Decoding follows the official BLIP demo: beam search (3 beams, 5 to 20 tokens, repetition
penalty 1.0) or nucleus sampling (top-p 0.9, 5 to 20 tokens). Hub mode only; tests build a tiny
model from a config and a small tokenizer (never downloaded).
"""
from __future__ import annotations

import torch
from torch import nn

from engine.device import module_placement


class BlipCaptioner(nn.Module):
    """Wraps a ``BlipForConditionalGeneration`` and its tokenizer.

    Not thread-safe: :meth:`generate` seeds torch's process-wide random generator (inside
    ``fork_rng``), so concurrent calls must be serialised by the caller
    (:class:`engine.captioning.captioners.HubCaptioner` does).

    Args:
        model: a ``transformers.BlipForConditionalGeneration``.
        tokenizer: the matching tokenizer (BERT word-piece for BLIP).
    """

    def __init__(self, model: nn.Module, tokenizer) -> None:
        super().__init__()
        self.model, self.tokenizer = model.eval(), tokenizer

    @classmethod
    def from_pretrained(cls, repo_id: str, **kwargs) -> "BlipCaptioner":
        """Load weights and tokenizer from the hub (or its local cache)."""
        from transformers import AutoTokenizer, BlipForConditionalGeneration
        model = BlipForConditionalGeneration.from_pretrained(repo_id, **kwargs)
        return cls(model, AutoTokenizer.from_pretrained(repo_id))

    @torch.no_grad()
    def generate(self, pixel_values: torch.Tensor, decoding: str = "beam", seed: int = 0,
                 max_length: int = 20, min_length: int = 5) -> list[str]:
        """Caption a batch.

        Args:
            pixel_values: (B, 3, 384, 384) float32, normalised with the registry's BLIP
                preprocessing (moved to the model's device and dtype here).
            decoding: "beam" (3 beams) or "nucleus" (top-p 0.9 sampling).
            seed: seeds nucleus sampling (same seed and image, same caption).
            max_length, min_length: caption length in tokens.

        Returns:
            B captions (lower case, no special tokens).

        Raises:
            ValueError: unknown ``decoding``.
        """
        if decoding == "beam":
            opts = dict(num_beams=3, do_sample=False, repetition_penalty=1.0)
        elif decoding == "nucleus":
            opts = dict(do_sample=True, top_p=0.9, top_k=0, num_beams=1, repetition_penalty=1.0)
        else:
            raise ValueError(f"decoding must be 'beam' or 'nucleus', got {decoding!r}")
        where = module_placement(self.model)  # CUDA float16 on a GPU machine (engine.device)
        pixel_values = pixel_values.to(device=where.device, dtype=where.dtype)
        cuda = [where.device] if where.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)  # seeds the CPU and every CUDA generator
            ids = self.model.generate(pixel_values=pixel_values, max_length=max_length,
                                      min_length=min_length, **opts)
        texts = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return [" ".join(t.split()).strip() for t in texts]

