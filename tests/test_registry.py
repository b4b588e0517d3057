"""Registry behaviour, and a forward/shape/no-NaN test for every registered model."""
from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_blip, tiny_openclip

from engine.models import HubUnavailableError
from engine.models import create_model, load_model as get_model, get_spec, list_models
from engine.models._factory import use_model


def test_unknown_model_raises_and_lists_valid_names():
    with pytest.raises(ValueError) as info:
        create_model("resnet-9000")
    for name in list_models():
        assert name in str(info.value)


def test_every_entry_carries_source_licence_and_preprocessing():
    for name in list_models():
        spec = get_spec(name)
        assert spec.source in ("embedded", "hub") and spec.license and spec.weights
        if spec.task in ("backbone", "caption"):
            assert spec.preprocess is not None and spec.preprocess.size > 0


def test_hub_models_refuse_politely_when_offline():
    for name in list_models(source="hub"):
        with pytest.raises(HubUnavailableError, match="cannot be reached"):
            create_model(name)


@pytest.mark.parametrize("name", list_models(task="backbone", source="embedded"))
def test_embedded_backbones_give_finite_multiscale_features(name):
    net = get_model(name)
    x = torch.randn(2, 3, 96, 128)
    out = net(x)
    assert out.logits.shape == (2, 1000) and out.pooled.shape == (2, net.num_features)
    for stride, channels in net.feature_channels.items():
        assert out.features[stride].shape == (2, channels, 96 // stride, 128 // stride)
    assert all(torch.isfinite(t).all() for t in (out.logits, out.pooled, out.head_map))


def test_embedded_backbone_is_in_eval_mode_so_one_image_works():
    net = get_model("efficientnet_lite0")
    assert not net.training
    out = net(torch.zeros(1, 3, 32, 32))
    assert torch.isfinite(out.pooled).all()


def test_imagenet_weights_are_real(cat_image):
    net = get_model("efficientnet_lite0")
    x = get_spec("efficientnet_lite0").preprocess([cat_image])
    top5 = net(x).logits.topk(5).indices[0].tolist()
    names = [net.class_names[i] for i in top5]
    assert any("cat" in n for n in names[:2]), names


def test_tiny_blip_beam_is_deterministic_and_nucleus_follows_the_seed(tmp_path):
    blip = tiny_blip(tmp_path)
    x = torch.randn(1, 3, 32, 32)
    assert blip.generate(x, "beam") == blip.generate(x, "beam")
    assert blip.generate(x, "nucleus", seed=3) == blip.generate(x, "nucleus", seed=3)
    samples = {blip.generate(x, "nucleus", seed=s)[0] for s in range(5)}
    assert len(samples) > 1
    assert "[DEC]" not in blip.generate(x, "beam")[0]
    with pytest.raises(ValueError, match="decoding"):
        blip.generate(x, "greedy")


def test_tiny_openclip_embeddings_are_unit_norm():
    clip = tiny_openclip()
    emb = clip.encode_image(torch.randn(3, 3, 32, 32))
    assert emb.shape == (3, 16)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    text = clip.encode_text(["a cat", "word " * 200])  # longer than the context: truncated
    assert text.shape == (2, 16) and torch.isfinite(text).all()


def test_use_model_swaps_and_restores():
    sentinel = object()
    with use_model("blip-base", sentinel):
        assert get_model("blip-base") is sentinel
    with pytest.raises(HubUnavailableError):
        get_model("blip-base")
