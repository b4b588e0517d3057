"""Few-shot classification of photos over a frozen pretrained backbone: the pipeline's parts.

The support set (2..10 named classes, 1..10 photos each) and the queries are embedded by a
frozen backbone (:class:`BackboneFeatures`: EfficientNet-Lite0's pooled ImageNet features
offline, an OpenCLIP image encoder from the hub); a method offered over frozen features
(:class:`FrozenFeatureMethods`: every registered method with ``frozen_defaults``, such as
Prototypical Networks, the Baseline++ cosine classifier or a linear head) is chosen per call.
"""
from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from engine.errors import UserInputError, unknown_name_message
from engine.fewshot.methods import FewShotClassifier, create_method, list_methods, method_class
from engine.fewshot.support import SupportLimits
from engine.models.preprocess import Preprocess

#: The method used when a call names none.
DEFAULT_METHOD = "protonet"
#: Support sets of photos: 2..10 classes, 1..10 images each.
PHOTO_LIMITS = SupportLimits(
    max_classes=10, max_shots=10,
    too_few="The support set has {n} class(es); add at least {min} classes with a name and "
            "images each.",
    too_many="The support set has {n} classes; at most {max} are supported.",
    duplicate="Classes {first} ({first_name!r}) and {second} are both named {name!r} (up to "
              "case, spaces and Unicode form); class names must be "
              "different.",
    empty_class="Class {name!r} has 0 images; add 1 to {max_shots}.",
    no_query="Add at least one query image to classify.")


def photo_methods() -> list[str]:
    """Registered methods offered over frozen features (``frozen_defaults`` set), default first."""
    names = [m for m in list_methods() if method_class(m).frozen_defaults is not None]
    return sorted(names, key=lambda m: (m != DEFAULT_METHOD, m))


class BackboneFeatures:
    """Frozen pretrained image features: the registry entry's preprocessing, then the network.

    Args:
        network: maps (B, 3, S, S) normalised images to (B, D) features, or to an output with
            ``pooled`` (B, D) features (EfficientNet-Lite0's ``BackboneOutput``). Read-only.
        preprocess: the preprocessing that goes with its weights.
        name: the model name (part of the feature cache's key).
    """

    def __init__(self, network: nn.Module, preprocess: Preprocess, name: str) -> None:
        self.network, self.preprocess, self.name = network, preprocess, name

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """An RGB image -> (3, S, S) float32, resized, centre-cropped and normalised."""
        return self.preprocess([image])[0]

    @torch.inference_mode()
    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, D) float32 features, finite (D = 1280 for EfficientNet-Lite0)."""
        out = self.network(batch)
        feats = out.pooled if hasattr(out, "pooled") else out
        return torch.nan_to_num(feats.float())

    def picture(self, encoded: torch.Tensor) -> None:
        """Photos are shown as uploaded: no picture of the network's input."""
        return None

    def remarks(self, image: Image.Image) -> list[str]:
        """Nothing to say about how a photo was read (a very small one is noted by the
        pipeline for every encoder)."""
        return []


class FrozenFeatureMethods:
    """A new classifier per call, over features, with the method's ``frozen_defaults``.

    Args:
        default: the method used when a call names none.
    """

    adapts_weights = False

    def __init__(self, default: str = DEFAULT_METHOD) -> None:
        self.default = default

    @property
    def methods(self) -> list[str]:
        return photo_methods()

    def new(self, method: str | None) -> FewShotClassifier:
        """A fresh ``method`` classifier whose inputs are features (no backbone).

        Raises:
            UserInputError: ``method`` is not offered over frozen features.
        """
        method = method or self.default
        if method not in self.methods:
            raise UserInputError(unknown_name_message("method", method, self.methods))
        return create_method(method, **method_class(method).frozen_defaults)

    def plot_features(self, clf: FewShotClassifier, support: torch.Tensor,
                      query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-normalised features: the geometry every method over frozen features shares."""
        del clf
        return (nn.functional.normalize(support, dim=-1), nn.functional.normalize(query, dim=-1))


__all__ = ["BackboneFeatures", "DEFAULT_METHOD", "FrozenFeatureMethods", "PHOTO_LIMITS",
           "photo_methods"]
