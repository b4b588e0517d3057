"""Tiny hub models built from configs (never downloaded), as transformers and open_clip test."""
from __future__ import annotations

from pathlib import Path

import torch

WORDS = ["a", "photo", "of", "cat", "dog", "cup", "on", "the", "table", "red", "blue", "man",
         "sitting", "with", "and", "coffee", "in", "picture", "small", "large"]


def tiny_blip(tmp_path: Path):
    """A 2-layer BLIP captioner (random weights) with a 30-token word-piece vocabulary."""
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration

    from engine.models.blip import BlipCaptioner
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"] + WORDS
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(tmp_path / "vocab.txt"), bos_token="[DEC]")
    config = BlipConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=37, max_position_embeddings=64,
                         bos_token_id=5, eos_token_id=3, sep_token_id=3, pad_token_id=0),
        vision_config=dict(hidden_size=32, image_size=32, patch_size=8, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=37),
        projection_dim=32, image_text_hidden_size=32)
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(config)
    return BlipCaptioner(model, tokenizer)


def tiny_openclip():
    """A 1-layer OpenCLIP (random weights), 32x32 input, 16-d embeddings."""
    import open_clip
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    from engine.models.openclip import OpenClipEncoder
    torch.manual_seed(0)
    model = open_clip.CLIP(embed_dim=16,
                           vision_cfg=CLIPVisionCfg(layers=1, width=32, patch_size=8,
                                                    image_size=32, head_width=16),
                           text_cfg=CLIPTextCfg(context_length=16, vocab_size=49408, width=32,
                                                heads=2, layers=1))
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=16)
    return OpenClipEncoder(model, tokenizer)
