"""Few-shot segmentation: the smp encoder interface, PANet's pieces, the bundled example's IoU,
support validation, the CLIs, and the hub encoder path with a tiny timm model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image

from engine.inputs.images import load_image, load_mask
from engine.segmentation.panet import Prototypes, masked_average_pooling, prototype_probabilities
from engine.segmentation.pipeline import SegmentPipeline

EXAMPLE = ROOT / "assets" / "examples" / "segment"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.fixture(scope="module")
def example():
    support = load_image(EXAMPLE / "support.jpg").image
    query = load_image(EXAMPLE / "query.jpg").image
    return (support, load_mask(EXAMPLE / "support_mask.png", size=support.size), query,
            load_mask(EXAMPLE / "query_mask.png", size=query.size))


def test_lite0_encoder_follows_smp_interface_and_feeds_a_unet_decoder():
    from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder

    from engine.models.efficientnet import EfficientNetLite0
    from engine.models.smp_encoders import Lite0Encoder
    lite0 = EfficientNetLite0(pretrained=True).eval()
    enc = Lite0Encoder(lite0.net).eval()
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    feats = enc(x)
    assert list(enc.out_channels) == [3, 32, 24, 40, 112, 320]
    assert [f.shape[1] for f in feats] == list(enc.out_channels)
    assert [f.shape[2] for f in feats] == [64, 32, 16, 8, 4, 2]
    assert set(enc.get_stages()) == {16, 32}
    with torch.no_grad():
        ref = lite0(x)
        feats = enc(x)
    assert torch.allclose(feats[4], ref.features[16]) and torch.allclose(feats[5], ref.features[32])
    decoder = UnetDecoder(encoder_channels=enc.out_channels, decoder_channels=(32, 16, 8, 8, 4))
    with torch.no_grad():
        out = decoder(feats)
    assert out.shape == (1, 4, 64, 96)


def test_masked_average_pooling_gives_region_means_and_refuses_empty_masks():
    feats = torch.zeros(1, 2, 4, 4)
    feats[:, 0, :2] = 1.0  # top half: channel 0
    feats[:, 1, 2:] = 1.0  # bottom half: channel 1
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1
    fg, bg = masked_average_pooling(feats, mask)
    assert torch.allclose(fg, torch.tensor([1.0, 0.0])) and torch.allclose(bg, torch.tensor([0.0, 1.0]))
    _, none = masked_average_pooling(feats, torch.ones(1, 1, 8, 8))
    assert none is None
    with pytest.raises(ValueError, match="foreground"):
        masked_average_pooling(feats, torch.zeros(1, 1, 8, 8))


def test_prototype_probabilities_sum_to_one_and_stay_finite_on_zero_features():
    probs, cos = prototype_probabilities(torch.zeros(1, 8, 5, 5),
                                         Prototypes(torch.zeros(2, 8), torch.zeros(8)))
    assert probs.shape == (3, 5, 5) and torch.isfinite(probs).all() and torch.isfinite(cos).all()
    assert torch.allclose(probs.sum(0), torch.ones(5, 5))


def test_bundled_example_reaches_iou_half(example):
    support, smask, query, qmask = example
    result = SegmentPipeline()([(support, smask)], query)
    assert result.mask.shape == qmask.shape and result.mask.dtype == bool
    assert _iou(result.mask, qmask) >= 0.5
    assert result.overlay.size == query.size and result.heatmap.size == query.size
    assert result.foreground_pixels == int(result.mask.sum())
    assert result.foreground_fraction == pytest.approx(result.mask.mean())


def test_support_errors_name_the_bad_pair_and_a_full_mask_works(example):
    support, smask, query, _ = example
    pipe = SegmentPipeline()
    with pytest.raises(ValueError, match="support mask 2 is empty"):
        pipe([(support, smask), (support, np.zeros_like(smask))], query)
    with pytest.raises(ValueError, match="support mask 1 is"):
        pipe([(support, smask[:10])], query)
    with pytest.raises(ValueError, match="1 to 5"):
        pipe([(support, smask)] * 6, query)
    full = pipe([(support, np.ones_like(smask))], query)
    assert np.isfinite(full.probability).all() and full.notes


def test_uniform_images_give_finite_maps(cases_dir):
    black = load_image(cases_dir / "all_black_8.png").image
    noise = load_image(cases_dir / "noise_32.png").image
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    result = SegmentPipeline()([(black, mask)], noise)
    assert result.mask.shape == (32, 32)
    assert np.isfinite(result.probability).all() and np.isfinite(result.similarity).all()


def test_cli_segment_writes_a_query_sized_mask_and_resizes_mismatched_masks(
        capsys, tmp_path, cases_dir):
    from engine.cli import main
    out = tmp_path / "mask.png"
    status = main(["segment", "--support", str(EXAMPLE / "support.jpg"),
                   str(EXAMPLE / "support_mask.png"), "--query", str(EXAMPLE / "query.jpg"),
                   "--out", str(out)])
    res = json.loads(capsys.readouterr().out)
    assert status == 0 and res["model"] == "efficientnet_lite0" and res["ms"] > 0
    written = np.asarray(Image.open(out))
    assert written.shape == (224, 224) and set(np.unique(written)) <= {0, 255}
    assert res["foreground_fraction"] == pytest.approx((written > 0).mean(), abs=1e-4)
    # image 10x6 with a 5x3 mask: resized (nearest), not a shape error
    status = main(["segment", "--support", str(cases_dir / "image_10x6.png"),
                   str(cases_dir / "mask_5x3.png"), "--query", str(cases_dir / "image_10x6.png"),
                   "--out", str(tmp_path / "small.png")])
    capsys.readouterr()
    assert status == 0 and Image.open(tmp_path / "small.png").size == (10, 6)
    status = main(["segment", "--support", str(cases_dir / "image_10x6.png"),
                   str(cases_dir / "mask_empty_10x6.png"), "--query",
                   str(EXAMPLE / "query.jpg"), "--out", str(tmp_path / "x.png")])
    assert status == 2 and "empty" in capsys.readouterr().err


def test_segment_eval_reports_mean_iou_over_episodes(capsys, tmp_path):
    from engine.cli import main
    rng = np.random.default_rng(0)
    for cls, color in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (tmp_path / cls).mkdir()
        for i in range(2):
            img = rng.integers(90, 160, (48, 48, 3)).astype(np.uint8)
            mask = np.zeros((48, 48), bool)
            y, x = rng.integers(0, 24, 2)
            mask[y:y + 20, x:x + 20] = True
            img[mask] = color
            Image.fromarray(img).save(tmp_path / cls / f"{i}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / cls / f"{i}_mask.png")
    status = main(["segment-eval", "--data", str(tmp_path), "--way", "2", "--shot", "1",
                   "--episodes", "2"])
    res = json.loads(capsys.readouterr().out)
    assert status == 0 and set(res["per_class"]) == {"red", "blue"}
    assert 0.3 < res["miou"] <= 1.0 and res["way"] == 2 and res["episodes"] == 2
    assert main(["segment-eval", "--data", str(tmp_path), "--way", "3"]) == 2
    assert "3-way" in capsys.readouterr().err


def test_hub_encoder_path_with_a_tiny_timm_convnext(example):
    from segmentation_models_pytorch.encoders.timm_universal import TimmUniversalEncoder

    from engine.models._seg_zoo import CONVNEXT_PREPROCESS
    from engine.models._factory import use_model
    support, smask, query, _ = example
    torch.manual_seed(0)
    tiny = TimmUniversalEncoder("convnext_atto", pretrained=False).eval()
    with use_model("smp-convnext-tiny", tiny, preprocess=CONVNEXT_PREPROCESS):
        result = SegmentPipeline()([(support, smask)], query, model="smp-convnext-tiny")
    assert result.model == "smp-convnext-tiny" and result.mask.shape == (224, 224)
    assert np.isfinite(result.probability).all()
