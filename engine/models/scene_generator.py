"""The scene world's text-to-image diffusion model: a small Transformer text encoder trained
here + a diffusers ``UNet2DConditionModel`` in pixel space (Ho et al., DDPM, NeurIPS 2020;
classifier-free guidance, Ho & Salimans 2021; the text cross-attention of GLIDE / Imagen /
Stable Diffusion).

* **Text encoder** (:class:`SceneTextEncoder`): word embeddings + learned positions, a pre-norm
  ``nn.TransformerEncoder`` (``text_layers`` layers, ``text_dim`` wide) and a final LayerNorm:
  token ids (B, L) int64 -> token states (B, L, text_dim) float32, the UNet's
  ``encoder_hidden_states``. The vocabulary is the scene world's closed word list (shapes,
  colours, sizes, materials, relations, "."), stored in the config; turning text into ids is
  :mod:`engine.generation.text`.
* **UNet**: ``UNet2DConditionModel`` on (B, 3, S, S) images in [-1, 1] (S = ``image_size``,
  32 by default), ResNet blocks at S, cross-attention (self-attention, cross-attention over
  the token states, feed-forward) at S/2 and S/4 and in the middle; predicts the noise
  epsilon (B, 3, S, S).
* **Noise schedule**: ``num_train_timesteps`` steps of the cosine schedule (Nichol & Dhariwal,
  "Improved DDPM", 2021; diffusers' ``squaredcos_cap_v2``); :func:`make_scheduler` builds the
  DDPM (training) or DDIM (sampling, Song et al. 2021) scheduler from the config.

This module holds only the network, its configuration and its checkpoint file; tokenising,
sampling and training are in :mod:`engine.generation`. The trained weights ship as
``assets/generation/scene_generator.safetensors`` (card ``scene_generator.md``); when the file
is there it is registered as model ``scene-generator`` (task "generation", source "embedded").
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from engine.models._registry import ModelSpec, register_model

ASSET = (Path(__file__).resolve().parents[2] / "assets" / "generation"
         / "scene_generator.safetensors")
#: The metadata ``format`` value of these checkpoints.
FORMAT = "vl-demo-scene-generator-v1"
#: Special tokens at the start of every vocabulary.
PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<eos>")
#: The scene world's words, in a fixed order (index = token id - len(SPECIALS)).
WORDS = ("cube", "sphere", "cylinder",
         "gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow",
         "large", "small", "rubber", "metal",
         "left", "right", "front", "behind", "next", ".")


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of :class:`SceneGeneratorNet`.

    Attributes:
        vocab: the words, :data:`SPECIALS` first (index = token id).
        image_size: image side in pixels (a multiple of 4).
        block_out_channels: UNet channels per resolution (S, S/2, S/4).
        layers_per_block: ResNet blocks per resolution on the way down.
        attention_heads: heads of every UNet attention layer.
        text_dim: width of the text encoder = the UNet's cross-attention dimension.
        text_layers, text_heads: text encoder depth and heads.
        max_tokens: context length of the text encoder (BOS and EOS included).
        num_train_timesteps: diffusion steps of the training schedule.
        beta_schedule: diffusers' name of the noise schedule.
    """

    vocab: tuple[str, ...] = SPECIALS + WORDS
    image_size: int = 32
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    layers_per_block: int = 1
    attention_heads: int = 4
    text_dim: int = 64
    text_layers: int = 2
    text_heads: int = 4
    max_tokens: int = 24
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        d = dict(d)
        d["vocab"] = tuple(d["vocab"])
        d["block_out_channels"] = tuple(d["block_out_channels"])
        return cls(**d)


class SceneTextEncoder(nn.Module):
    """Token ids (B, L) int64 -> token states (B, L, text_dim) float32; PAD positions are
    masked out of the self-attention (their states are not used by the UNet either)."""

    def __init__(self, c: GeneratorConfig):
        super().__init__()
        self.embed = nn.Embedding(len(c.vocab), c.text_dim, padding_idx=PAD)
        self.pos = nn.Parameter(torch.zeros(1, c.max_tokens, c.text_dim))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(c.text_dim, c.text_heads, 4 * c.text_dim,
                                           dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, c.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.text_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos[:, :tokens.shape[1]]
        return self.norm(self.encoder(x, src_key_padding_mask=tokens == PAD))


class SceneGeneratorNet(nn.Module):
    """Text encoder + UNet: ``forward(noisy (B,3,S,S), timesteps (B,), tokens (B,L))`` -> the
    predicted noise (B, 3, S, S)."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        from diffusers import UNet2DConditionModel
        self.config = config
        self.text_encoder = SceneTextEncoder(config)
        n = len(config.block_out_channels)
        self.unet = UNet2DConditionModel(
            sample_size=config.image_size, in_channels=3, out_channels=3,
            block_out_channels=config.block_out_channels,
            layers_per_block=config.layers_per_block,
            down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
            up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
            cross_attention_dim=config.text_dim, attention_head_dim=config.attention_heads,
            norm_num_groups=min(8, config.block_out_channels[0]))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 ids -> (B, L, text_dim) states."""
        return self.text_encoder(tokens)

    def denoise(self, noisy: torch.Tensor, timesteps: torch.Tensor, states: torch.Tensor,
                tokens: torch.Tensor) -> torch.Tensor:
        """The UNet's noise prediction given already encoded text (``states``)."""
        mask = (tokens != PAD).to(noisy.dtype)
        return self.unet(noisy, timesteps, encoder_hidden_states=states,
                         encoder_attention_mask=mask).sample

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor,
                tokens: torch.Tensor) -> torch.Tensor:
        return self.denoise(noisy, timesteps, self.encode_text(tokens), tokens)


def make_scheduler(config: GeneratorConfig, kind: str = "ddim"):
    """The diffusers scheduler of ``config``'s noise schedule: "ddpm" (training: add_noise)
    or "ddim" (sampling, eta 0: deterministic given the initial noise). Pixel-space samples
    are clipped to [-1, 1] at every step (``clip_sample``)."""
    from diffusers import DDIMScheduler, DDPMScheduler
    common = dict(num_train_timesteps=config.num_train_timesteps,
                  beta_schedule=config.beta_schedule, prediction_type="epsilon",
                  clip_sample=True, clip_sample_range=1.0)
    if kind == "ddpm":
        return DDPMScheduler(**common)
    if kind == "ddim":
        return DDIMScheduler(**common, set_alpha_to_one=True, steps_offset=0)
    raise ValueError(f"unknown scheduler kind {kind!r}; valid: ddpm, ddim")


def save_generator(net: SceneGeneratorNet, path: str | Path, metadata: dict | None = None,
                   state: dict | None = None) -> Path:
    """Write the weights (float32 safetensors; ``state`` instead of ``net.state_dict()``, e.g.
    the EMA weights) with the config and ``metadata`` (JSON-able values)."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "config": json.dumps(asdict(net.config))}
    meta.update({k: json.dumps(v) for k, v in (metadata or {}).items()})
    state = state if state is not None else net.state_dict()
    save_file({k: v.detach().float().contiguous() for k, v in state.items()}, str(path),
              metadata=meta)
    return path


def load_generator(path: str | Path = ASSET) -> SceneGeneratorNet:
    """A :class:`SceneGeneratorNet` in eval mode from a file written by :func:`save_generator`.

    Raises:
        FileNotFoundError: no such file. ValueError: not a scene-generator checkpoint.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scene-generator checkpoint {path} not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # not a safetensors file at all
        raise ValueError(f"{path} is not a scene-generator checkpoint ({FORMAT}): {e}") from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a scene-generator checkpoint ({FORMAT})")
    net = SceneGeneratorNet(GeneratorConfig.from_dict(json.loads(meta["config"])))
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def checkpoint_metadata(path: str | Path = ASSET) -> dict:
    """The JSON metadata of a scene-generator checkpoint (config, training facts)."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        return {k: json.loads(v) if k != "format" else v for k, v in (f.metadata() or {}).items()}


def _factory(device: torch.device, dtype: torch.dtype, path: str | Path = ASSET):
    return load_generator(path).to(device=device, dtype=dtype)


if ASSET.is_file():
    register_model(ModelSpec(
        name="scene-generator", task="generation", source="embedded", factory=_factory,
        description="text-to-image diffusion model (diffusers UNet2DConditionModel + a small "
                    "Transformer text encoder) trained on the scene world's descriptions",
        weights="assets/generation/scene_generator.safetensors", license="MIT (trained here)",
        size_mb=round(ASSET.stat().st_size / 1e6, 2)))
