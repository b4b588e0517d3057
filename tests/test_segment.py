"""Few-shot segmentation: the smp encoder interface, PANet's pieces, the pipeline built from its
components (the embedded Lite0 encoder and a tiny random timm ConvNeXt for the hub path), the
bundled example's IoU, support validation, the evaluator, and the CLIs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image

from engine.errors import UserInputError
from engine.inputs.images import load_image, load_mask
from engine.inputs.masks import painted_mask
from engine.segmentation.evaluate import evaluate
from engine.segmentation.panet import Prototypes, masked_average_pooling, prototype_probabilities
from engine.segmentation.pipeline import SegmentPipeline

EXAMPLE = ROOT / "assets" / "examples" / "segment"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _square(seed: int, y: int, x: int, side: int = 64) -> tuple[Image.Image, np.ndarray]:
    """A grey-noise image with a red 24-pixel square at (y, x), and the square's mask."""
    rng = np.random.default_rng(seed)
    img = rng.integers(90, 160, (side, side, 3)).astype(np.uint8)
    mask = np.zeros((side, side), bool)
    mask[y:y + 24, x:x + 24] = True
    img[mask] = (220, 30, 30)
    return Image.fromarray(img), mask


@pytest.fixture(scope="module")
def example():
    support = load_image(EXAMPLE / "support.jpg").image
    query = load_image(EXAMPLE / "query.jpg").image
    return (support, load_mask(EXAMPLE / "support_mask.png", size=support.size), query,
            load_mask(EXAMPLE / "query_mask.png", size=query.size))


@pytest.fixture(scope="module")
def lite0_pipeline():
    """The embedded pipeline, built from its components as the factory does."""
    from engine.models.efficientnet import LITE0_PREPROCESS, EfficientNetLite0
    from engine.models.smp_encoders import Lite0Encoder
    encoder = Lite0Encoder(EfficientNetLite0(pretrained=True).eval().net)
    return SegmentPipeline(encoder, LITE0_PREPROCESS, name="efficientnet_lite0")


@pytest.fixture(scope="module")
def tiny_encoder():
    """smp's TimmUniversalEncoder around a random ConvNeXt-Atto (the hub encoder's type)."""
    from segmentation_models_pytorch.encoders.timm_universal import TimmUniversalEncoder
    torch.manual_seed(0)
    return TimmUniversalEncoder("convnext_atto", pretrained=False).eval()


@pytest.fixture(scope="module")
def tiny_pipeline(tiny_encoder):
    from engine.models._seg_zoo import CONVNEXT_PREPROCESS
    return SegmentPipeline(tiny_encoder, CONVNEXT_PREPROCESS, name="smp-convnext-tiny",
                           seg_size=64)


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
    # same weights and ops; the model's own forward may take a channels-last path (float rounding)
    assert torch.allclose(feats[4], ref.features[16], rtol=1e-4, atol=1e-3)
    assert torch.allclose(feats[5], ref.features[32], rtol=1e-4, atol=1e-3)
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
    assert torch.allclose(fg, torch.tensor([1.0, 0.0]))
    assert torch.allclose(bg, torch.tensor([0.0, 1.0]))
    _, none = masked_average_pooling(feats, torch.ones(1, 1, 8, 8))
    assert none is None
    with pytest.raises(ValueError, match="foreground"):
        masked_average_pooling(feats, torch.zeros(1, 1, 8, 8))


def test_prototype_probabilities_sum_to_one_and_stay_finite_on_zero_features():
    probs, cos = prototype_probabilities(torch.zeros(1, 8, 5, 5),
                                         Prototypes(torch.zeros(2, 8), torch.zeros(8)))
    assert probs.shape == (3, 5, 5) and torch.isfinite(probs).all() and torch.isfinite(cos).all()
    assert torch.allclose(probs.sum(0), torch.ones(5, 5))


def test_bundled_example_reaches_iou_half(example, lite0_pipeline):
    support, smask, query, qmask = example
    result = lite0_pipeline([(support, smask)], query)
    assert result.mask.shape == qmask.shape and result.mask.dtype == bool
    assert _iou(result.mask, qmask) >= 0.5
    assert result.overlay.size == query.size and result.heatmap.size == query.size
    assert result.foreground_pixels == int(result.mask.sum())
    assert result.foreground_fraction == pytest.approx(result.mask.mean())
    assert result.model == "efficientnet_lite0" and result.ms > 0 and result.notes == []
    assert 0 <= result.probability.min() and result.probability.max() <= 1


def test_support_errors_name_the_bad_pair_and_a_full_mask_works(example, lite0_pipeline):
    support, smask, query, _ = example
    pipe = lite0_pipeline
    with pytest.raises(UserInputError, match="support mask 2 is empty"):
        pipe([(support, smask), (support, np.zeros_like(smask))], query)
    with pytest.raises(UserInputError, match="support mask 1 is"):
        pipe([(support, smask[:10])], query)
    with pytest.raises(UserInputError, match="1 to 5"):
        pipe([(support, smask)] * 6, query)
    with pytest.raises(UserInputError, match="1 to 5"):
        pipe([], query)
    with pytest.raises(ValueError, match="support image 2 must be an RGB"):
        pipe([(support, smask), (support.convert("L"), smask)], query)
    full = pipe([(support, np.ones_like(smask))], query)
    assert np.isfinite(full.probability).all() and "no background" in full.notes[0]


def test_query_and_threshold_mistakes_are_user_errors(example, lite0_pipeline):
    support, smask, query, _ = example
    with pytest.raises(ValueError, match="query must be an RGB"):
        lite0_pipeline([(support, smask)], query.convert("L"))
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(UserInputError, match="threshold must be between 0 and 1"):
            lite0_pipeline([(support, smask)], query, threshold=bad)


def test_uniform_images_give_finite_maps(cases_dir, lite0_pipeline):
    black = load_image(cases_dir / "all_black_8.png").image
    noise = load_image(cases_dir / "noise_32.png").image
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    result = lite0_pipeline([(black, mask)], noise)
    assert result.mask.shape == (32, 32)
    assert np.isfinite(result.probability).all() and np.isfinite(result.similarity).all()


def test_a_one_pixel_mask_survives_shrinking_to_the_encoder_size(lite0_pipeline):
    image = Image.new("RGB", (1000, 1000), (120, 120, 120))
    mask = np.zeros((1000, 1000), bool)
    mask[501, 733] = True
    [(x, m)] = lite0_pipeline.support_tensors([(image, mask)])
    assert x.shape == (1, 3, 448, 448) and m.shape == (448, 448) and int(m.sum()) == 1
    assert m[int(501 * 448 / 1000), int(733 * 448 / 1000)]


def test_hub_encoder_path_with_a_tiny_timm_convnext(example, tiny_encoder):
    from engine.models._seg_zoo import CONVNEXT_PREPROCESS
    support, smask, query, _ = example
    pipe = SegmentPipeline(tiny_encoder, CONVNEXT_PREPROCESS, name="smp-convnext-tiny")
    result = pipe([(support, smask)], query)
    assert result.model == "smp-convnext-tiny" and result.mask.shape == (224, 224)
    assert np.isfinite(result.probability).all()


def test_tiny_encoder_gives_the_seeded_expected_values(tiny_pipeline):
    support, smask = _square(0, 8, 8)
    query, qmask = _square(1, 32, 28)
    result = tiny_pipeline([(support, smask)], query)
    assert result.mask.shape == (64, 64)
    assert result.foreground_pixels == pytest.approx(710, abs=4)
    assert result.foreground_fraction == pytest.approx(0.17334, abs=1e-3)
    assert float(result.probability.mean()) == pytest.approx(0.178811, abs=1e-4)
    assert result.probability[44, 40] == pytest.approx(1.0, abs=1e-4)  # inside the red square
    assert result.probability[4, 4] == pytest.approx(0.0, abs=1e-4)  # background corner
    assert float(result.similarity[44, 40]) == pytest.approx(0.854134, abs=1e-4)
    assert float(result.similarity[4, 4]) == pytest.approx(-0.167154, abs=1e-4)
    assert _iou(result.mask, qmask) == pytest.approx(0.7886, abs=0.01)
    again = tiny_pipeline([(support, smask)], query)
    assert np.array_equal(again.probability, result.probability)  # no state between calls


def test_evaluate_reports_mean_iou_and_its_refine_override_leaves_the_pipeline_alone(
        tmp_path, tiny_pipeline):
    for cls, seeds in (("square", (0, 1, 2)),):
        (tmp_path / cls).mkdir()
        for seed in seeds:
            img, mask = _square(seed, 8 + 10 * seed, 30 - 10 * seed)
            img.save(tmp_path / cls / f"{seed}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / cls / f"{seed}_mask.png")
    (tmp_path / "square" / ".hidden.png").write_bytes(b"not an image")  # skipped, not decoded
    res = evaluate(tiny_pipeline, tmp_path, way=1, shot=1, episodes=3, seed=0)
    assert res["model"] == "smp-convnext-tiny" and res["refine_steps"] == 2
    assert set(res["per_class"]) == {"square"} and 0.5 < res["miou"] <= 1.0
    plain = evaluate(tiny_pipeline, tmp_path, way=1, shot=2, episodes=2, refine_steps=0)
    assert plain["refine_steps"] == 0 and tiny_pipeline.panet.refine_steps == 2
    with pytest.raises(UserInputError, match="refine_steps must be >= 0"):
        evaluate(tiny_pipeline, tmp_path, refine_steps=-1)
    with pytest.raises(UserInputError, match="does not exist"):
        evaluate(tiny_pipeline, tmp_path / "missing")
    with pytest.raises(UserInputError, match="at least 4 pairs"):
        evaluate(tiny_pipeline, tmp_path, shot=3)


def test_example_layer_asset_is_the_support_mask_as_a_painted_layer():
    support = load_image(EXAMPLE / "support.jpg").image
    layer = painted_mask([EXAMPLE / "support_layer.png"], support.size)
    assert np.array_equal(layer, load_mask(EXAMPLE / "support_mask.png", size=support.size))


def test_demo_load_example_hands_out_committed_files_only():
    from demos.segment import load_example
    editor, *empty, query, note = load_example()
    files = [editor["background"], *editor["layers"], query]
    assert all(str(EXAMPLE) in f for f in files) and empty == [None] * 4
    assert "Example loaded" in note


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
    truth = load_mask(EXAMPLE / "query_mask.png", size=(224, 224))
    assert _iou(written > 0, truth) >= 0.5
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


def test_cli_segment_refuses_unknown_and_strict_unreachable_models_in_one_line(capsys,
                                                                               tmp_path):
    from engine.cli import main
    args = ["segment", "--support", str(EXAMPLE / "support.jpg"),
            str(EXAMPLE / "support_mask.png"), "--query", str(EXAMPLE / "query.jpg"),
            "--out", str(tmp_path / "m.png"), "--model"]
    assert main(args + ["nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown segment model 'nope'" in err and "smp-convnext-tiny" in err
    assert main(args + ["smp-convnext-tiny", "--no-fallback"]) == 2  # HF_HUB_OFFLINE=1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hub cannot be reached" in err
    assert not (tmp_path / "m.png").exists()


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
    assert res["model"] == "efficientnet_lite0" and res["refine_steps"] == 2
    assert main(["segment-eval", "--data", str(tmp_path), "--way", "3"]) == 2
    assert "3-way" in capsys.readouterr().err
    assert main(["segment-eval", "--data", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
