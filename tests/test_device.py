"""One device decision (engine/device.py, issue 16), tested with CUDA's presence faked: these
machines have no GPU, so ``torch.cuda.is_available`` is patched and the models that would go to
CUDA are fakes that only record where the factory asked them to be."""
from __future__ import annotations

import pytest
import torch

from engine import device as dev
from engine.device import (Placement, accelerator, choose_device, make_generator, placement)


@pytest.fixture(autouse=True)
def fresh_decision(monkeypatch):
    """Every test decides the device anew, from its own environment."""
    monkeypatch.delenv(dev.ENV_VAR, raising=False)
    accelerator.cache_clear()
    yield
    accelerator.cache_clear()


@pytest.mark.parametrize("setting, cuda, expected", [
    ("auto", True, "cuda:0"), ("auto", False, "cpu"), ("", True, "cuda:0"),
    ("cpu", True, "cpu"), (" CUDA ", True, "cuda:0"), ("cuda:1", True, "cuda:1"),
])
def test_setting_and_cuda_presence_choose_the_device(setting, cuda, expected):
    assert choose_device(setting, cuda_available=cuda) == torch.device(expected)


@pytest.mark.parametrize("setting", ["cuda", "cuda:0"])
def test_asking_for_cuda_without_one_is_refused_with_the_setting_quoted(setting):
    with pytest.raises(ValueError, match=f"VL_DEVICE='{setting}'.*no CUDA"):
        choose_device(setting, cuda_available=False)


@pytest.mark.parametrize("setting", ["gpu", "cuda:x", "mps0"])
def test_unknown_settings_are_refused(setting):
    with pytest.raises(ValueError, match="is not a device"):
        choose_device(setting, cuda_available=True)


def test_accelerator_reads_the_environment_and_cuda_once(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: calls.append(1) or True)
    assert accelerator() == torch.device("cuda:0")
    assert accelerator() == torch.device("cuda:0")
    assert len(calls) == 1  # decided once per process
    accelerator.cache_clear()
    monkeypatch.setenv(dev.ENV_VAR, "cpu")
    assert accelerator() == torch.device("cpu")


def test_with_a_gpu_diffusion_and_blip_get_cuda_float16_and_the_rest_cpu_float32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    half = Placement(torch.device("cuda:0"), torch.float16)
    cpu = Placement(torch.device("cpu"), torch.float32)
    assert placement("caption", "hub") == half      # BLIP
    assert placement("edit", "hub") == half         # InstructPix2Pix
    assert placement("inpaint", "hub") == half      # SD inpainting
    assert placement("backbone", "hub") == cpu      # OpenCLIP stays on the CPU
    assert placement("backbone", "embedded") == cpu
    assert placement("fewshot", "embedded") == cpu
    assert half.label() == "cuda:0 float16" and cpu.label() == "cpu float32"


def test_without_a_gpu_or_with_vl_device_cpu_everything_is_cpu_float32(monkeypatch):
    cpu = Placement(torch.device("cpu"), torch.float32)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert placement("edit", "hub") == cpu == placement("caption", "hub")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv(dev.ENV_VAR, "cpu")
    accelerator.cache_clear()
    assert placement("edit", "hub") == cpu


def test_a_bad_vl_device_does_not_stop_the_embedded_models(monkeypatch):
    monkeypatch.setenv(dev.ENV_VAR, "gpu")
    assert placement("backbone", "embedded").device == torch.device("cpu")
    with pytest.raises(ValueError):
        placement("edit", "hub")


def test_the_model_factory_creates_each_model_once_where_placement_says(monkeypatch):
    from engine.models import _factory, _registry
    from engine.models._registry import ModelSpec
    made = []

    def factory(device, dtype):
        made.append((device, dtype))
        return object()

    for name, task in (("fake-hub-editor", "edit"), ("fake-hub-backbone", "backbone")):
        monkeypatch.setitem(_registry._MODELS, name, ModelSpec(
            name=name, task=task, source="hub", factory=factory, description="test"))
    monkeypatch.setattr(_factory, "require_hub", lambda name: None)
    monkeypatch.setattr(_factory, "_CACHE", {})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    first = _factory.load_model("fake-hub-editor")
    assert _factory.load_model("fake-hub-editor") is first  # moved once, then shared
    _factory.load_model("fake-hub-backbone")
    assert made == [(torch.device("cuda:0"), torch.float16),
                    (torch.device("cpu"), torch.float32)]


def test_generators_are_new_per_call_seeded_and_on_the_asked_device():
    a, b = make_generator(7), make_generator(7, "cpu")
    assert a is not b and a.device == torch.device("cpu")
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))
    assert not torch.equal(torch.rand(4, generator=make_generator(8)),
                           torch.rand(4, generator=make_generator(7)))


def test_diffusion_noise_generator_is_made_on_the_models_device(tmp_path, monkeypatch,
                                                               cat_image):
    from tiny_diffusers import tiny_editor

    from engine.editing import diffusion
    from engine.editing.pipeline import EditPipeline
    seen = []
    real = diffusion.make_generator
    monkeypatch.setattr(diffusion, "make_generator",
                        lambda seed, device: seen.append((seed, device)) or real(seed, device))
    model = tiny_editor(tmp_path, "instruct")
    result = EditPipeline(diffusion.InstructPix2PixEditor(model))(
        cat_image, "make it red", seed=5, steps=1)
    assert seen == [(5, model.device)]
    assert result.device == "cpu float32" and result.to_json()["device"] == "cpu float32"


def test_blip_inputs_follow_the_models_dtype(tmp_path):
    """A BLIP whose weights are not float32 (float16 on a GPU; float64 here, on the CPU) gets
    its float32 pixels cast: without the cast, generate() fails with a dtype mismatch."""
    from tiny_models import tiny_blip
    blip = tiny_blip(tmp_path)
    size = blip.model.config.vision_config.image_size
    pixels = torch.rand(1, 3, size, size, generator=make_generator(0))
    expected = blip.generate(pixels, seed=1)
    blip.model.to(torch.float64)
    assert dev.module_placement(blip.model).dtype == torch.float64
    assert blip.generate(pixels, seed=1) == expected


def test_caption_tab_says_which_device_answered(cat_image, tmp_path):
    from demos.caption import caption_image
    path = tmp_path / "cat.png"
    cat_image.save(path)
    _, _, _, details = caption_image(str(path))
    assert "**device:** cpu float32" in details


def test_device_names_for_the_ui():
    assert dev.device_name("cpu") == "CPU"
    assert dev.device_name("cuda:0").startswith("CUDA 0")


def test_the_app_refuses_a_bad_vl_device_at_start_in_one_line():
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "VL_DEVICE": "gpu", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "app.py"], cwd=root, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1] == (
        "error: VL_DEVICE='gpu' is not a device; use auto, cpu, cuda or cuda:<index>")
    assert "Traceback" not in out.stderr
