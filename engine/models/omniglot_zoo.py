"""Few-shot models meta-trained here on Omniglot, shipped in ``assets/omniglot/``.

Each checkpoint ``NAME.safetensors`` carries in its metadata the method name, the Conv-4
configuration and the method's constructor arguments; ``NAME.json`` beside it is the card
(data, split, N/K, episodes, seed, command, wall time, validation accuracy). Every card found is
registered as model ``omniglot-NAME`` (task "fewshot", source "embedded"). A model instance
holds one support set at a time: :func:`engine.registry.create_model` gives a new one per call.

Inputs are (B, 1, 28, 28) float32 in [0, 1], ink = 1, made by
:func:`engine.data.omniglot.preprocess_drawing`.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from engine.registry import ModelSpec, register_model

ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "omniglot"
FORMAT = "vl-demo-fewshot-v1"
#: The app's default model for handwritten symbols (the best one measured, see docs/meta_learning.md).
DEFAULT_HANDWRITING_MODEL = "omniglot-protonet"
#: The largest number of classes the handwriting models are offered for (largest N measured).
MAX_WAY = 20


def build_method(method: str, backbone_config: dict, method_kwargs: dict):
    """A freshly initialised few-shot classifier around a Conv-4 backbone."""
    from engine.methods import create_method
    from engine.models.conv4 import Conv4
    return create_method(method, backbone=Conv4(**backbone_config), **method_kwargs)


def save_checkpoint(model, path: str | Path, method: str, backbone_config: dict,
                    method_kwargs: dict) -> None:
    """Write ``model``'s state dict to safetensors with what is needed to rebuild it."""
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()
               if not _per_task(model, k)}
    meta = {"format": FORMAT, "method": method, "backbone": json.dumps(backbone_config),
            "method_kwargs": json.dumps(method_kwargs)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32, **overrides):
    """Rebuild a few-shot classifier from a checkpoint, in eval mode.

    Args:
        path: a ``.safetensors`` file written by :func:`save_checkpoint`.
        overrides: constructor arguments replacing the stored ones (e.g. MAML's
            ``inner_steps`` / ``inner_lr`` at meta-test time).

    Raises:
        FileNotFoundError: no such file. ValueError: not a checkpoint of this format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a few-shot checkpoint ({FORMAT})")
    kwargs = {**json.loads(meta["method_kwargs"]), **overrides}
    model = build_method(meta["method"], json.loads(meta["backbone"]), kwargs)
    state = {k: v for k, v in load_file(str(path)).items() if not _per_task(model, k)}
    model.load_state_dict(state, strict=True)
    return model.to(device=device, dtype=dtype).eval()


def _per_task(model, key: str) -> bool:
    """True for weights fitted per support set (e.g. Baseline's head), not meta-learned."""
    return any(key.startswith(m + ".") for m in getattr(model, "per_task_modules", ()))


def read_card(name: str) -> dict:
    """The JSON card of registered model ``omniglot-...`` (or of a checkpoint stem)."""
    stem = name.removeprefix("omniglot-")
    return json.loads((ASSET_DIR / f"{stem}.json").read_text())


def _register_all() -> None:
    for card_path in sorted(ASSET_DIR.glob("*.json")):
        weights = card_path.with_suffix(".safetensors")
        if not weights.is_file():
            continue
        card = json.loads(card_path.read_text())
        name = f"omniglot-{card_path.stem}"

        def factory(device, dtype, _weights=weights, **kwargs):
            return load_checkpoint(_weights, device=device, dtype=dtype, **kwargs)

        val = card.get("validation", {})
        register_model(ModelSpec(
            name=name, task="fewshot", source="embedded", factory=factory,
            description=(f"{card['method']} on Omniglot (Conv-4, 28x28), meta-trained "
                         f"{card['way']}-way {card['shot']}-shot; val acc "
                         f"{val.get('accuracy', float('nan')):.3f}"),
            weights=f"assets/omniglot/{weights.name}", license="MIT (Omniglot data)",
            size_mb=round(weights.stat().st_size / 2**20, 2),
            extra={"method": card["method"], "way": card["way"], "shot": card["shot"],
                   "input": "omniglot28", "max_way": MAX_WAY, "card": str(card_path)}))


_register_all()
