"""Where models run: the one place the device and dtype are decided.

On a machine with a CUDA GPU (a Space on ``t4-small``, say) the heavy hub models, the diffusion
editors and BLIP, run there in float16; everything else, and every model on a machine without a
GPU, runs on the CPU in float32. The environment variable ``VL_DEVICE`` overrides the choice:

    VL_DEVICE=auto     (default) CUDA if torch sees one, else CPU
    VL_DEVICE=cpu      always the CPU (float32)
    VL_DEVICE=cuda     CUDA device 0 (``cuda:1`` ... for another); refused if there is none

The embedded models (EfficientNet-Lite0, MiniLM, the few-shot and scene networks) and the other
hub encoders (OpenCLIP, ConvNeXt) stay on the CPU in float32 wherever this runs: their callers
build CPU tensors, and the embedded path partly runs through ONNX Runtime on the CPU.

The decision is made once per process (:func:`accelerator`); the model factory asks
:func:`placement` when it creates a model and moves it there once; samplers create their
per-call random generator with :func:`make_generator` on the device the model is on.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch

#: The environment variable that overrides the device (see the module docstring).
ENV_VAR = "VL_DEVICE"
#: Registry tasks whose hub models go to the accelerator (in float16 there): BLIP captioning,
#: the InstructPix2Pix and inpainting editors, and a text-to-image generator if one is added.
ACCELERATED_TASKS = frozenset({"caption", "edit", "inpaint", "generate"})


@dataclass(frozen=True)
class Placement:
    """Where one model's weights live.

    Attributes:
        device: ``cpu`` or ``cuda[:i]``.
        dtype: ``torch.float32``, or ``torch.float16`` for accelerated models on CUDA.
    """

    device: torch.device
    dtype: torch.dtype

    def label(self) -> str:
        """Short text for the UI and JSON: "cpu float32", "cuda:0 float16"."""
        return f"{self.device} {str(self.dtype).removeprefix('torch.')}"


def choose_device(setting: str | None = None, cuda_available: bool | None = None
                  ) -> torch.device:
    """The accelerator device for a ``VL_DEVICE`` setting.

    Args:
        setting: "auto", "cpu", "cuda" or "cuda:<i>" (case and surrounding spaces ignored);
            None reads ``VL_DEVICE`` (unset: "auto").
        cuda_available: whether CUDA can be used; None asks ``torch.cuda.is_available()``.

    Returns:
        ``cpu`` or ``cuda:<i>`` (``cuda`` alone means ``cuda:0``).

    Raises:
        ValueError: an unknown setting, or CUDA asked for on a machine without it (the message
            quotes the setting).
    """
    raw = os.environ.get(ENV_VAR, "auto") if setting is None else setting
    value = raw.strip().lower() or "auto"
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if value == "auto":
        return torch.device("cuda:0" if cuda_available else "cpu")
    if value == "cpu":
        return torch.device("cpu")
    if value == "cuda" or (value.startswith("cuda:") and value[5:].isdigit()):
        if not cuda_available:
            raise ValueError(f"{ENV_VAR}={raw!r} asks for CUDA, but torch sees no CUDA device "
                             f"(unset it or use {ENV_VAR}=cpu)")
        return torch.device("cuda:0" if value == "cuda" else value)
    raise ValueError(f"{ENV_VAR}={raw!r} is not a device; use auto, cpu, cuda or cuda:<index>")


@functools.lru_cache(maxsize=1)
def accelerator() -> torch.device:
    """The process's accelerator device, decided once from ``VL_DEVICE`` and CUDA (cached;
    tests call ``accelerator.cache_clear()``).

    Raises:
        ValueError: see :func:`choose_device`.
    """
    return choose_device()


def placement(task: str, source: str, device: torch.device | None = None) -> Placement:
    """Where a registered model of ``task`` from ``source`` ("embedded" / "hub") goes.

    Args:
        task: the registry entry's task ("caption", "edit", "backbone", ...).
        source: the registry entry's source.
        device: the accelerator (default :func:`accelerator`).

    Returns:
        CUDA float16 for a hub model of an :data:`ACCELERATED_TASKS` task when the accelerator
        is CUDA; CPU float32 otherwise.
    """
    if source == "hub" and task in ACCELERATED_TASKS:
        device = accelerator() if device is None else device
        if device.type == "cuda":
            return Placement(device, torch.float16)
    return Placement(torch.device("cpu"), torch.float32)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A new ``torch.Generator`` on ``device`` seeded with ``seed`` (one per call: never shared
    between requests). The same seed gives the same numbers on the same device type only; CPU
    and CUDA generators differ."""
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed))


def device_name(device: torch.device | str) -> str:
    """Human name of a device: "CPU" or "CUDA 0 (Tesla T4)"."""
    device = torch.device(device)
    if device.type != "cuda":
        return "CPU"
    index = device.index or 0
    try:
        return f"CUDA {index} ({torch.cuda.get_device_name(index)})"
    except Exception:  # noqa: BLE001  (no driver: the name is only for display)
        return f"CUDA {index}"


def module_placement(module: torch.nn.Module) -> Placement:
    """Where ``module``'s first parameter lives (CPU float32 for a module without any)."""
    for p in module.parameters():
        return Placement(p.device, p.dtype)
    return Placement(torch.device("cpu"), torch.float32)


__all__ = ["ACCELERATED_TASKS", "ENV_VAR", "Placement", "accelerator", "choose_device",
           "device_name", "make_generator", "module_placement", "placement"]
