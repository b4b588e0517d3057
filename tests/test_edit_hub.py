"""Hub editors (InstructPix2Pix, SD inpainting) through the edit pipeline, with tiny diffusers
components built from configs: sizes, paste-back outside the region, seed determinism, progress."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tiny_diffusers import tiny_editor

from engine.editing.pipeline import EditPipeline, edit_models
from engine.models import get_spec
from engine.models._factory import use_model


@pytest.fixture(scope="module")
def editors(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_sd")
    return {"instruct-pix2pix": tiny_editor(d, "instruct"),
            "sd-inpainting": tiny_editor(d, "inpaint")}


def test_hub_editors_are_registered_as_hub_models():
    assert {"instruct-pix2pix", "sd-inpainting"} <= set(edit_models())
    assert get_spec("instruct-pix2pix").source == "hub" == get_spec("sd-inpainting").source


def test_instruct_pix2pix_keeps_size_is_seeded_and_reports_progress(editors, cat_image):
    calls = []
    with use_model("instruct-pix2pix", editors["instruct-pix2pix"]):
        a = EditPipeline()(cat_image, "make the cat red", model="instruct-pix2pix", seed=3,
                           steps=2, progress=lambda s, n: calls.append((s, n)))
        b = EditPipeline()(cat_image, "make the cat red", model="instruct-pix2pix", seed=3,
                           steps=2)
        c = EditPipeline()(cat_image, "make the cat red", model="instruct-pix2pix", seed=4,
                           steps=2)
    assert a.image.size == cat_image.size and a.operation == "instruct-pix2pix"
    assert a.image.tobytes() == b.image.tobytes()  # same seed, same bytes
    assert a.image.tobytes() != c.image.tobytes()
    assert calls == [(1, 2), (2, 2)]


def test_instruct_pix2pix_with_a_mask_is_pasted_back_outside_it(editors, cat_image):
    mask = np.zeros(cat_image.size[::-1], bool)
    mask[40:160, 120:300] = True
    with use_model("instruct-pix2pix", editors["instruct-pix2pix"]):
        r = EditPipeline()(cat_image, "make it snow", mask, model="instruct-pix2pix", steps=2)
    before, after = np.asarray(cat_image), np.asarray(r.image)
    assert (before[~mask] == after[~mask]).all() and r.changed_fraction_outside == 0.0
    assert (before[mask] != after[mask]).any()


@pytest.mark.parametrize("size", [(451, 300), (9, 13), (800, 45)])
def test_inpainting_keeps_size_and_every_pixel_outside_the_mask(editors, size):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    mask = np.zeros((size[1], size[0]), bool)
    mask[size[1] // 4: 3 * size[1] // 4 + 1, size[0] // 4: 3 * size[0] // 4 + 1] = True
    with use_model("sd-inpainting", editors["sd-inpainting"]):
        a = EditPipeline()(image, "a red ball", mask, model="sd-inpainting", seed=1, steps=2)
        b = EditPipeline()(image, "a red ball", mask, model="sd-inpainting", seed=1, steps=2)
    assert a.image.size == size and a.operation == "inpaint"
    assert (np.asarray(a.image)[~mask] == np.asarray(image)[~mask]).all()
    assert a.changed_fraction_outside == 0.0 and a.image.tobytes() == b.image.tobytes()


def test_inpainting_without_a_mask_and_bad_steps_are_refused(editors, cat_image):
    with use_model("sd-inpainting", editors["sd-inpainting"]):
        with pytest.raises(ValueError, match="paint a mask"):
            EditPipeline()(cat_image, "a dog", model="sd-inpainting")
    with use_model("instruct-pix2pix", editors["instruct-pix2pix"]):
        with pytest.raises(ValueError, match="steps"):
            EditPipeline()(cat_image, "make it red", model="instruct-pix2pix", steps=0)


def test_two_concurrent_requests_on_one_pipeline_match_sequential_results(editors, cat_image):
    from concurrent.futures import ThreadPoolExecutor
    with use_model("instruct-pix2pix", editors["instruct-pix2pix"]):
        def run(seed):
            return EditPipeline()(cat_image, "make it red", model="instruct-pix2pix", seed=seed,
                                  steps=2).image.tobytes()
        sequential = [run(5), run(6)]
        with ThreadPoolExecutor(2) as pool:
            concurrent = list(pool.map(run, [5, 6]))
    assert concurrent == sequential
