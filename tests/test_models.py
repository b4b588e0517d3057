"""Registry-driven model tests (as timm and open_clip do): every registered model gets a tiny
version built from a config (never downloaded) and a forward / shape / no-NaN check, so a model
registered without a tiny config here fails the suite.

Embedded models that are small and ship offline (EfficientNet-Lite0 weights, MiniLM, the
Omniglot checkpoints) are used as they are; hub models are tiny random networks of the same
classes (tests/tiny_models.py, tests/tiny_diffusers.py).
"""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from tiny_models import tiny_blip, tiny_openclip

from engine.models import (HubUnavailableError, create_model, get_spec, list_models,
                           load_model)


def _lite0(tmp_path):
    return create_model("efficientnet_lite0", pretrained=False)


def _convnext_atto(tmp_path):
    from segmentation_models_pytorch.encoders import TimmUniversalEncoder
    torch.manual_seed(0)
    return TimmUniversalEncoder("convnext_atto", pretrained=False).eval()


def _tiny_diffusers(kind: str) -> Callable:
    def build(tmp_path):
        from tiny_diffusers import tiny_components
        from diffusers import (StableDiffusionInpaintPipeline,
                               StableDiffusionInstructPix2PixPipeline)
        if kind == "instruct":
            return StableDiffusionInstructPix2PixPipeline(**tiny_components(tmp_path, 8))
        return StableDiffusionInpaintPipeline(**tiny_components(tmp_path, 9))
    return build


#: Registered name -> builder of its tiny (or small embedded) version. Omniglot checkpoints
#: (``omniglot-*``) are small files in assets/ and are tested as they are.
TINY: dict[str, Callable] = {
    "efficientnet_lite0": _lite0,
    "minilm": lambda tmp_path: load_model("minilm"),
    "blip-base": tiny_blip,
    "openclip-vit-b-32": lambda tmp_path: tiny_openclip(),
    "instruct-pix2pix": _tiny_diffusers("instruct"),
    "sd-inpainting": _tiny_diffusers("inpaint"),
    "smp-convnext-tiny": _convnext_atto,
    "scene-parser": lambda tmp_path: create_model("scene-parser"),  # 1 MB, ships in assets/
    "scene-captioner": lambda tmp_path: create_model("scene-captioner"),  # 3 MB, in assets/
    "duda": lambda tmp_path: create_model("duda"),  # ~4 MB, ships in assets/scenes/
    "scene-generator": lambda tmp_path: create_model("scene-generator"),  # ~4 MB, in assets/
    "scene-artemis": lambda tmp_path: create_model("scene-artemis"),  # ~3 MB, assets/retrieval/
    "scene-tirg": lambda tmp_path: create_model("scene-tirg"),
}


def _has_tiny(name: str) -> bool:
    return name in TINY or name.startswith("omniglot-")


def test_every_registered_model_has_a_tiny_config():
    missing = [n for n in list_models() if not _has_tiny(n)]
    assert not missing, f"add a tiny config to tests/test_models.py for {missing}"


def test_unknown_model_raises_and_lists_valid_names():
    with pytest.raises(ValueError) as info:
        create_model("resnet-9000")
    for name in list_models():
        assert name in str(info.value)


@pytest.mark.parametrize("name", list_models())
def test_entry_carries_source_licence_weights_and_its_preprocessing(name):
    spec = get_spec(name)
    assert spec.source in ("embedded", "hub") and spec.license and spec.weights
    assert spec.description and spec.task
    if spec.task in ("backbone", "caption", "segmentation"):
        p = spec.preprocess
        assert p is not None and p.size > 0 and len(p.mean) == len(p.std) == 3
        assert all(s > 0 for s in p.std)


@pytest.mark.parametrize("name", list_models(source="hub"))
def test_hub_models_refuse_politely_when_offline(name):
    with pytest.raises(HubUnavailableError, match="cannot be reached"):
        create_model(name)


def _check_backbone(model, spec):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = model(x)
    feats = out.pooled if hasattr(out, "pooled") else out  # EfficientNet output or embeddings
    assert feats.ndim == 2 and feats.shape[0] == 2 and torch.isfinite(feats).all()


def _check_text(model, spec):
    out = model.encode(["a cat on a mat", "ein Hund 🐕"])
    assert out.embeddings.shape == (2, 384) and torch.isfinite(out.embeddings).all()
    assert torch.allclose(out.embeddings.norm(dim=-1), torch.ones(2), atol=1e-4)


def _check_caption(model, spec):
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    caption = model.generate(x, "beam")
    assert len(caption) == 1 and isinstance(caption[0], str) and "[DEC]" not in caption[0]


def _check_diffusers(model, spec):
    from PIL import Image
    image = Image.new("RGB", (32, 32), (200, 30, 30))
    kwargs = dict(prompt="make it blue", image=image, num_inference_steps=2,
                  generator=torch.Generator().manual_seed(0), output_type="np")
    if spec.task == "inpaint":
        kwargs.update(mask_image=Image.new("L", (32, 32), 255), height=32, width=32)
    out = model(**kwargs).images
    assert out.shape == (1, 32, 32, 3) and torch.isfinite(torch.from_numpy(out)).all()


def _check_segmentation(model, spec):
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    maps = model(x)
    assert [m.shape[-1] for m in maps][-3:] == [8, 4, 2]  # strides 8, 16, 32
    assert all(torch.isfinite(m).all() for m in maps)


def _check_fewshot(checkpoint, spec):
    from engine.fewshot.checkpoints import build_classifier
    clf = build_classifier(checkpoint)
    g = torch.Generator().manual_seed(0)
    support = torch.rand(5, 1, 28, 28, generator=g)
    clf.process_support_set(support, torch.arange(5))
    probs = clf(torch.rand(3, 1, 28, 28, generator=g)).softmax(-1)
    assert probs.shape == (3, 5) and torch.isfinite(probs).all()
    assert torch.allclose(probs.sum(-1), torch.ones(3), atol=1e-5)


def _check_scene_parser(model, spec):
    x = torch.rand(2, 3, spec.preprocess.size, spec.preprocess.size,
                   generator=torch.Generator().manual_seed(0))
    maps = model(x)
    g = spec.preprocess.size // 4
    assert maps["heatmap"].shape == (2, 1, g, g) and maps["color"].shape == (2, 8, g, g)
    assert all(torch.isfinite(m).all() for m in maps.values())


def _check_scene_captioner(model, spec):
    x = torch.rand(2, 3, spec.preprocess.size, spec.preprocess.size,
                   generator=torch.Generator().manual_seed(0))
    feats = model.grid_features(x)
    g = model.config.grid
    tokens = torch.tensor([[1, 4, 5], [1, 6, 7]])
    logits, att = model(feats, tokens)
    assert logits.shape == (2, 3, len(model.config.vocab)) and torch.isfinite(logits).all()
    assert att.shape == (2, 3, g * g) and torch.allclose(att.sum(-1), torch.ones(2, 3), atol=1e-5)


def _check_change_captioner(model, spec):
    S = model.config.image_size
    g = torch.Generator().manual_seed(0)
    out = model.generate(torch.rand(2, 3, S, S, generator=g), torch.rand(2, 3, S, S, generator=g))
    assert out["map_before"].shape == (2, model.config.grid, model.config.grid)
    assert torch.allclose(out["map_after"].sum((1, 2)), torch.ones(2), atol=1e-5)
    assert out["tokens"].dtype == torch.long and torch.isfinite(out["alpha"]).all()


def _check_generator(model, spec):
    S, c = model.config.image_size, model.config
    tokens = torch.tensor([[1, 3, 4, 2], [1, 2, 0, 0]])
    eps = model(torch.randn(2, 3, S, S, generator=torch.Generator().manual_seed(0)),
                torch.tensor([999, 10]), tokens)
    assert eps.shape == (2, 3, S, S) and torch.isfinite(eps).all()
    assert model.encode_text(tokens).shape == (2, 4, c.text_dim)


def _check_scene_cir(model, spec):
    g = torch.Generator().manual_seed(0)
    ref, cand = torch.rand(2, 1280, generator=g), torch.rand(5, 1280, generator=g)
    text = torch.nn.functional.normalize(torch.randn(2, 384, generator=g), dim=-1) \
        if model.config.text_encoder == "minilm" else ["make the cube red", "remove the sphere"]
    s = model(ref, text, cand)
    assert s.shape == (2, 5) and torch.isfinite(s).all()


CHECKS = {"backbone": _check_backbone, "text": _check_text, "caption": _check_caption,
          "scene-cir": _check_scene_cir, "edit": _check_diffusers, "inpaint": _check_diffusers,
          "segmentation": _check_segmentation, "fewshot": _check_fewshot,
          "scene-parser": _check_scene_parser, "scene-captioner": _check_scene_captioner,
          "change-captioner": _check_change_captioner, "generation": _check_generator}


@pytest.mark.parametrize("name", list_models())
def test_every_model_runs_forward_with_finite_outputs(name, tmp_path):
    spec = get_spec(name)
    assert spec.task in CHECKS, f"no forward check for task {spec.task!r}"
    model = create_model(name) if name.startswith("omniglot-") else TINY[name](tmp_path)
    with torch.no_grad():
        CHECKS[spec.task](model, spec)


def test_embedded_backbone_features_have_the_documented_strides():
    net = load_model("efficientnet_lite0")
    assert not net.training
    out = net(torch.randn(2, 3, 96, 128))
    assert out.logits.shape == (2, 1000) and out.pooled.shape == (2, net.num_features)
    for stride, channels in net.feature_channels.items():
        assert out.features[stride].shape == (2, channels, 96 // stride, 128 // stride)


def test_imagenet_weights_are_real(cat_image):
    net = load_model("efficientnet_lite0")
    x = get_spec("efficientnet_lite0").preprocess([cat_image])
    names = [net.class_names[i] for i in net(x).logits.topk(5).indices[0].tolist()]
    assert any("cat" in n for n in names[:2]), names


def test_tiny_blip_beam_is_deterministic_and_nucleus_follows_the_seed(tmp_path):
    blip = tiny_blip(tmp_path)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert blip.generate(x, "beam") == blip.generate(x, "beam")
    assert blip.generate(x, "nucleus", seed=3) == blip.generate(x, "nucleus", seed=3)
    assert len({blip.generate(x, "nucleus", seed=s)[0] for s in range(5)}) > 1
    with pytest.raises(ValueError, match="decoding"):
        blip.generate(x, "greedy")


def test_tiny_openclip_embeddings_are_unit_norm_and_long_text_is_cut():
    clip = tiny_openclip()
    emb = clip.encode_image(torch.randn(3, 3, 32, 32))
    assert emb.shape == (3, 16)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    text = clip.encode_text(["a cat", "word " * 200])  # longer than the context: truncated
    assert text.shape == (2, 16) and torch.isfinite(text).all()


def test_loading_one_model_does_not_wait_for_another(monkeypatch):
    """A slow creation (a hub download) of one name must not block another name."""
    import threading
    import time

    from engine.models import _factory
    started, release = threading.Event(), threading.Event()
    real = _factory.create_model

    def slow_create(name, **kw):
        if name == "slow":
            started.set()
            release.wait(5)
            return "slow model"
        return real(name, **kw)

    monkeypatch.setattr(_factory, "create_model", slow_create)
    monkeypatch.setattr(_factory, "_CACHE", {})
    worker = threading.Thread(target=_factory.load_model, args=("slow",))
    worker.start()
    assert started.wait(5)
    t0 = time.perf_counter()
    assert load_model("minilm") is not None  # not blocked by "slow"
    assert time.perf_counter() - t0 < 4.5
    release.set()
    worker.join(5)
    assert _factory._CACHE["slow"] == "slow model"
