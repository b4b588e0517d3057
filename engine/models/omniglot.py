"""Few-shot checkpoints meta-trained here on Omniglot, shipped in ``assets/omniglot/``.

Each ``NAME.safetensors`` carries in its metadata the method name, the Conv-4 configuration and
the method's constructor arguments; ``NAME.json`` beside it is the card (data, split, N/K,
episodes, seed, command, wall time, validation accuracy). Every card found is registered as
model ``omniglot-NAME`` (task "fewshot", source "embedded"). Creating the model reads the file
into a :class:`FewShotCheckpoint` (weights + how to rebuild); the few-shot room turns it into a
classifier (:func:`engine.fewshot.checkpoints.build_classifier`), so this room never imports
the methods.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from engine.models._registry import ModelSpec, register_model

ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "omniglot"
#: The metadata ``format`` value of these checkpoints.
FORMAT = "vl-demo-fewshot-v1"
#: The largest number of classes the handwriting models are offered for (largest N measured).
MAX_WAY = 20


@dataclass(frozen=True)
class FewShotCheckpoint:
    """A meta-trained few-shot classifier as stored: what to build and its weights.

    Attributes:
        method: registered few-shot method name ("protonet", "maml", ...).
        backbone_config: Conv-4 constructor arguments.
        method_kwargs: the method's constructor arguments.
        state: the state dict (float32 tensors), per-task modules excluded.
        path: the file it was read from.
    """

    method: str
    backbone_config: dict
    method_kwargs: dict
    state: dict[str, torch.Tensor]
    path: Path


def read_checkpoint(path: str | Path) -> FewShotCheckpoint:
    """Read a checkpoint written by :func:`engine.fewshot.checkpoints.save_checkpoint`.

    Raises:
        FileNotFoundError: no such file. ValueError: not a checkpoint of :data:`FORMAT`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a few-shot checkpoint ({FORMAT})")
    return FewShotCheckpoint(meta["method"], json.loads(meta["backbone"]),
                             json.loads(meta["method_kwargs"]), load_file(str(path)), path)


def _register_all() -> None:
    for card_path in sorted(ASSET_DIR.glob("*.json")):
        weights = card_path.with_suffix(".safetensors")
        if not weights.is_file():
            continue
        card = json.loads(card_path.read_text())

        def factory(device, dtype, _weights=weights):
            del device, dtype  # the classifier is built (on CPU float32) by the few-shot room
            return read_checkpoint(_weights)

        val = card.get("validation", {})
        register_model(ModelSpec(
            name=f"omniglot-{card_path.stem}", task="fewshot", source="embedded",
            factory=factory,
            description=(f"{card['method']} on Omniglot (Conv-4, 28x28), meta-trained "
                         f"{card['way']}-way {card['shot']}-shot; val acc "
                         f"{val.get('accuracy', float('nan')):.3f}"),
            weights=f"assets/omniglot/{weights.name}", license="MIT (Omniglot data)",
            size_mb=round(weights.stat().st_size / 2**20, 2),
            extra={"method": card["method"], "way": card["way"], "shot": card["shot"],
                   "input": "omniglot28", "max_way": MAX_WAY, "card": str(card_path)}))


_register_all()
