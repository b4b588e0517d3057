"""Create models from the registry, in the manner of timm's ``_factory.py``.

:func:`create_model` builds a new instance; :func:`load_model` hands out one process-wide,
read-only instance per name, created on first use. Creating one model never blocks the
creation of another: each name has its own lock, so a hub download in one tab does not hold
up the other tabs.
"""
from __future__ import annotations

import threading
from typing import Any

import torch

from engine.device import placement
from engine.models._hub import require_hub
from engine.models._registry import get_spec

_CACHE: dict[str, Any] = {}
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def create_model(name: str, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None, **kwargs: Any) -> Any:
    """Build a new instance of model ``name`` (weights loaded, eval mode).

    Args:
        name: a registered name (see :func:`engine.models.list_models`).
        device: where the weights go (CPU by default), or "auto": where
            :func:`engine.device.placement` puts this model (CUDA for the diffusion editors and
            BLIP when the process has a GPU, else the CPU).
        dtype: the weights' dtype (default float32; with "auto", the placement's dtype:
            float16 on CUDA).
        kwargs: passed to the entry's factory (e.g. ``pretrained=False``).

    Raises:
        ValueError: unknown name (lists the valid ones).
        engine.models.HubUnavailableError: a hub model while the hub is unreachable.
    """
    spec = get_spec(name)
    if isinstance(device, str) and device == "auto":
        where = placement(spec.task, spec.source)
        device, dtype = where.device, dtype or where.dtype
    if spec.source == "hub":
        require_hub(spec.name)
    return spec.factory(device=torch.device(device), dtype=dtype or torch.float32, **kwargs)


def _lock_for(name: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(name, threading.Lock())


def load_model(name: str) -> Any:
    """The process-wide, read-only instance of ``name``, created on first use and placed once
    where :func:`engine.device.placement` says (CUDA float16 for the diffusion editors and
    BLIP when the process has a GPU; CPU float32 otherwise).

    Shared by every request: callers must not mutate it (no ``.train()``, no state on it).
    Only the creation of the same name waits on a lock; other names load concurrently.

    Raises:
        ValueError: unknown name. engine.models.HubUnavailableError: hub unreachable.
    """
    model = _CACHE.get(name)
    if model is not None:
        return model
    with _lock_for(name):
        if name not in _CACHE:
            _CACHE[name] = create_model(name, device="auto")
        return _CACHE[name]
