"""Hub editors (InstructPix2Pix, SD inpainting) through the edit pipeline, with tiny diffusers
components built from configs: sizes, paste-back outside the region, seeded values, seed
determinism, progress, refusals, the factory's choice of editor and the offline hub refusal."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tiny_diffusers import tiny_editor

from engine.editing.diffusion import InpaintingEditor, InstructPix2PixEditor, work_size
from engine.editing.pipeline import EditPipeline
from engine.errors import UserInputError
from engine.models import get_spec

# Seeded outputs of the tiny models (tests/tiny_diffusers.py, torch seed 0), recorded once:
# InstructPix2Pix on cat.jpg, "make the cat red", seed 3, 2 DDIM steps: mean of all channels and
# the red channel at rows 0, 100, 200 x columns 0, 150, 300, 450.
EXPECTED_IP2P_MEAN = 138.52
EXPECTED_IP2P_SLICE = np.array([[135, 78, 112, 129], [139, 145, 147, 143],
                                [125, 121, 83, 101]], np.float64)
# Inpainting of the 451x300 noise image's centre, "a red ball", seed 1, 2 steps: mean RGB inside
# the mask and the green channel at rows 100, 150, 200 x columns 150, 225, 300 (all inside).
EXPECTED_INPAINT_MEAN = [75.12, 150.62, 84.11]
EXPECTED_INPAINT_SLICE = np.array([[150, 218, 200], [165, 121, 127], [187, 163, 196]],
                                  np.float64)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The two tiny diffusers models (DiffusionEditor), by kind."""
    d = tmp_path_factory.mktemp("tiny_sd")
    return {"instruct": tiny_editor(d, "instruct"), "inpaint": tiny_editor(d, "inpaint")}


@pytest.fixture(scope="module")
def ip2p(models) -> EditPipeline:
    return EditPipeline(InstructPix2PixEditor(models["instruct"], name="instruct-pix2pix"))


@pytest.fixture(scope="module")
def inpaint(models) -> EditPipeline:
    return EditPipeline(InpaintingEditor(models["inpaint"], name="sd-inpainting"))


def _noise_image(size: tuple[int, int]) -> tuple[Image.Image, np.ndarray]:
    """A seeded noise image of ``size`` (W, H) and a centred (H, W) bool mask of half its sides."""
    rng = np.random.default_rng(0)
    W, H = size
    image = Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    mask = np.zeros((H, W), bool)
    mask[H // 4: 3 * H // 4 + 1, W // 4: 3 * W // 4 + 1] = True
    return image, mask


def test_hub_editors_are_registered_as_hub_models():
    from engine.factory import task_models
    assert {"instruct-pix2pix", "sd-inpainting"} <= set(task_models("edit"))
    assert get_spec("instruct-pix2pix").source == "hub" == get_spec("sd-inpainting").source


def test_instruct_pix2pix_keeps_size_is_seeded_and_reports_progress(ip2p, cat_image):
    calls = []
    a = ip2p(cat_image, "make the cat red", seed=3, steps=2,
             progress=lambda s, n: calls.append((s, n)))
    b = ip2p(cat_image, "make the cat red", seed=3, steps=2)
    c = ip2p(cat_image, "make the cat red", seed=4, steps=2)
    assert a.image.size == cat_image.size and a.operation == "instruct-pix2pix"
    assert a.target == "the whole image" and a.mask.all() and a.model == "instruct-pix2pix"
    assert a.image.tobytes() == b.image.tobytes()  # same seed, same bytes
    assert a.image.tobytes() != c.image.tobytes()
    assert calls == [(1, 2), (2, 2)]


def test_seeded_tiny_instruct_pix2pix_gives_the_recorded_pixels(ip2p, cat_image):
    out = np.asarray(ip2p(cat_image, "make the cat red", seed=3, steps=2).image, np.float64)
    assert out.mean() == pytest.approx(EXPECTED_IP2P_MEAN, abs=0.5)
    assert np.abs(out[::100, ::150, 0] - EXPECTED_IP2P_SLICE).max() <= 2


def test_seeded_tiny_inpainting_gives_the_recorded_pixels(inpaint):
    image, mask = _noise_image((451, 300))
    out = np.asarray(inpaint(image, "a red ball", mask, seed=1, steps=2).image, np.float64)
    inside = out[mask]  # (N, 3)
    assert inside.mean(0) == pytest.approx(EXPECTED_INPAINT_MEAN, abs=0.5)
    assert np.abs(out[100:201:50, 150:301:75, 1] - EXPECTED_INPAINT_SLICE).max() <= 2


def test_instruct_pix2pix_with_a_mask_is_pasted_back_outside_it(ip2p, cat_image):
    mask = np.zeros(cat_image.size[::-1], bool)
    mask[40:160, 120:300] = True
    r = ip2p(cat_image, "make it snow", mask, steps=2)
    before, after = np.asarray(cat_image), np.asarray(r.image)
    assert (before[~mask] == after[~mask]).all() and r.changed_fraction_outside == 0.0
    assert (before[mask] != after[mask]).any() and r.target == "the painted region"


@pytest.mark.parametrize("size", [(451, 300), (9, 13), (800, 45)])
def test_inpainting_keeps_size_and_every_pixel_outside_the_mask(inpaint, size):
    image, mask = _noise_image(size)
    a = inpaint(image, "a red ball", mask, seed=1, steps=2)
    b = inpaint(image, "a red ball", mask, seed=1, steps=2)
    assert a.image.size == size and a.operation == "inpaint" and a.model == "sd-inpainting"
    assert (np.asarray(a.image)[~mask] == np.asarray(image)[~mask]).all()
    assert a.changed_fraction_outside == 0.0 and a.image.tobytes() == b.image.tobytes()


def test_inpainting_without_a_mask_and_bad_sampling_options_are_refused(ip2p, inpaint,
                                                                        cat_image):
    with pytest.raises(UserInputError, match="paint a mask"):
        inpaint(cat_image, "a dog")
    with pytest.raises(UserInputError, match="steps must be in 1..100, got 0"):
        ip2p(cat_image, "make it red", steps=0)
    with pytest.raises(UserInputError, match="guidance scales out of range"):
        ip2p(cat_image, "make it red", steps=2, guidance_scale=31.0)


def test_an_editor_refuses_a_diffusers_pipeline_of_the_other_kind(models):
    with pytest.raises(ValueError, match="needs an InstructPix2Pix pipeline"):
        InstructPix2PixEditor(models["inpaint"])
    with pytest.raises(ValueError, match="needs an inpainting pipeline"):
        InpaintingEditor(models["instruct"])


def test_work_size_keeps_the_aspect_ratio_in_multiples_of_eight():
    assert work_size((451, 300), 512) == (512, 344)
    assert work_size((9, 13), 32) == (24, 32) and work_size((800, 45), 32) == (32, 16)


def test_two_concurrent_requests_on_one_pipeline_match_sequential_results(ip2p, cat_image):
    from concurrent.futures import ThreadPoolExecutor

    def run(seed):
        return ip2p(cat_image, "make it red", seed=seed, steps=2).image.tobytes()
    sequential = [run(5), run(6)]
    with ThreadPoolExecutor(2) as pool:
        concurrent = list(pool.map(run, [5, 6]))
    assert concurrent == sequential


def test_a_hub_editor_is_not_built_while_the_hub_is_unreachable():
    from engine.factory import get_pipeline
    from engine.models import HubUnavailableError
    with pytest.raises(HubUnavailableError, match="instruct-pix2pix: .*cannot be reached"):
        get_pipeline("edit", "instruct-pix2pix")


def test_cli_edit_no_fallback_with_an_unreachable_hub_model_prints_one_line_and_exits_2(
        tmp_path, capsys):
    from conftest import EXAMPLES

    from engine.cli import main
    status = main(["edit", str(EXAMPLES / "coffee.jpg"), "--text", "make it red", "--model",
                   "sd-inpainting", "--no-fallback", "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: sd-inpainting:") and "cannot be reached" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "x.png").exists()
