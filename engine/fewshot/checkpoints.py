"""Save and rebuild meta-trained few-shot classifiers (safetensors + metadata).

The file format is read by :func:`engine.models.omniglot.read_checkpoint` (the models room
registers the shipped files); this module turns a :class:`~engine.models.omniglot.FewShotCheckpoint`
into a classifier and writes new ones.
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file

from engine.fewshot.methods import create_method
from engine.models.conv4 import Conv4
from engine.models.omniglot import FORMAT, FewShotCheckpoint, read_checkpoint


def build_method(method: str, backbone_config: dict, method_kwargs: dict):
    """A freshly initialised few-shot classifier around a Conv-4 backbone."""
    return create_method(method, backbone=Conv4(**backbone_config), **method_kwargs)


def _per_task(model, key: str) -> bool:
    """True for weights fitted per support set (e.g. Baseline's head), not meta-learned."""
    return any(key.startswith(m + ".") for m in getattr(model, "per_task_modules", ()))


def save_checkpoint(model, path: str | Path, method: str, backbone_config: dict,
                    method_kwargs: dict) -> None:
    """Write ``model``'s state dict to safetensors with what is needed to rebuild it."""
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()
               if not _per_task(model, k)}
    meta = {"format": FORMAT, "method": method, "backbone": json.dumps(backbone_config),
            "method_kwargs": json.dumps(method_kwargs)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)


def build_classifier(checkpoint: FewShotCheckpoint):
    """The classifier a checkpoint holds, in eval mode on CPU float32.

    Built once per process by :mod:`engine.factory`; pipelines deep-copy it per request (it
    keeps the support set on itself, and MAML adapts its weights).

    Args:
        checkpoint: as read by :func:`engine.models.omniglot.read_checkpoint`.
    """
    model = build_method(checkpoint.method, checkpoint.backbone_config,
                         checkpoint.method_kwargs)
    state = {k: v for k, v in checkpoint.state.items() if not _per_task(model, k)}
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_checkpoint(path: str | Path):
    """Read a checkpoint file and build its classifier (see :func:`build_classifier`)."""
    return build_classifier(read_checkpoint(path))
