"""Tiny diffusers editors built from configs (random weights, never downloaded), in the manner
of diffusers' own ``get_dummy_components()``: a 2-block UNet2DConditionModel, a 2-block
AutoencoderKL, a 1-layer CLIPTextModel and a character-level CLIPTokenizer written here."""
from __future__ import annotations

import json
import string
from pathlib import Path

import torch


def tiny_tokenizer(tmp_path: Path):
    """A CLIPTokenizer whose vocabulary is single characters (no merges): any text tokenises."""
    from transformers import CLIPTokenizer
    chars = string.ascii_lowercase + string.digits + ".,!?'-&"
    tokens = ["<|startoftext|>", "<|endoftext|>"] + list(chars) + [c + "</w>" for c in chars]
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"),
                         model_max_length=32)


def tiny_components(tmp_path: Path, in_channels: int) -> dict:
    """UNet (``in_channels`` = 8 for InstructPix2Pix, 9 for inpainting), VAE, text encoder,
    tokenizer, DDIM scheduler."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=16,
        in_channels=in_channels, out_channels=4, norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
        attention_head_dim=4)
    vae = AutoencoderKL(block_out_channels=(16, 32), in_channels=3, out_channels=3,
                        down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4,
                        norm_num_groups=8, sample_size=32)
    tokenizer = tiny_tokenizer(tmp_path)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=16, intermediate_size=37,
        num_attention_heads=2, num_hidden_layers=1, vocab_size=len(tokenizer),
        max_position_embeddings=32, projection_dim=16))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return dict(unet=unet.eval(), vae=vae.eval(), text_encoder=text_encoder.eval(),
                tokenizer=tokenizer, scheduler=scheduler, safety_checker=None,
                feature_extractor=None, requires_safety_checker=False)


def tiny_editor(tmp_path: Path, kind: str, work_side: int = 32):
    """A :class:`engine.models.diffusion.DiffusionEditor` with tiny random components."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionInstructPix2PixPipeline

    from engine.models.diffusion import DiffusionEditor
    if kind == "instruct":
        pipe = StableDiffusionInstructPix2PixPipeline(**tiny_components(tmp_path, 8))
    else:
        pipe = StableDiffusionInpaintPipeline(**tiny_components(tmp_path, 9))
    return DiffusionEditor(pipe, kind, work_side=work_side)
