"""Few-shot image classification over a frozen pretrained backbone.

The user's support set (2..10 named classes, 1..10 images each) is embedded by the backbone
(EfficientNet-Lite0's pooled ImageNet features offline; an OpenCLIP image encoder in hub mode);
a method from :mod:`engine.fewshot.methods` (Prototypical Networks, the Baseline++ cosine classifier, or
a linear head) turns it into class probabilities for each query; PCA gives the 2-D picture of
the episode.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from engine.fewshot.methods import create_method, list_methods
from engine.models import load_model as get_model, get_spec, list_models
from engine.viz import pca_2d

MIN_CLASSES, MAX_CLASSES = 2, 10
MAX_SHOTS = 10
#: Methods offered over a frozen pretrained backbone, with their settings.
METHOD_SETTINGS = {
    "protonet": dict(normalize=True, temperature=0.2),
    "cosine": dict(scale=10.0),
    "linear": dict(steps=100, lr=0.1, seed=0),
}
#: Plain-language names for the UI.
METHOD_TITLES = {
    "protonet": "Prototypical Networks (squared Euclidean to class means)",
    "cosine": "Cosine nearest prototype (Baseline++ classifier)",
    "linear": "Linear head fine-tuned on the support set (naive transfer)",
}


@dataclass
class Prediction:
    """One query's answer: ``label`` and ``probabilities`` (class name -> p, summing to 1)."""

    label: str
    probabilities: dict[str, float]


@dataclass
class FewShotResult:
    """Result of :class:`FewShotPipeline`.

    Attributes:
        predictions: one per query image, in order.
        class_names: N class names, in support order.
        support_xy: (S, 2) PCA coordinates of the support images; support_labels: S indices.
        prototype_xy: (N, 2) coordinates of the class means; query_xy: (Q, 2).
        model, method: what was used; ms: wall milliseconds of embedding + classification.
    """

    predictions: list[Prediction]
    class_names: list[str]
    support_xy: np.ndarray
    support_labels: list[int]
    prototype_xy: np.ndarray
    query_xy: np.ndarray
    model: str
    method: str
    ms: float


def fewshot_backbones() -> list[str]:
    """Backbones offered for few-shot classification of photos (embedded first)."""
    return list_models(task="backbone", source="embedded") + list_models(task="backbone",
                                                                        source="hub")


def check_backbone(model: str) -> None:
    """Raise ValueError naming the valid backbones if ``model`` is not one."""
    if model not in fewshot_backbones():
        raise ValueError(f"unknown backbone {model!r}; valid: {', '.join(fewshot_backbones())}")


def validate_support(support: list[tuple[str, list]], shots: int | None = None) -> list[str]:
    """Check a support set and return its cleaned class names.

    Args:
        support: (name, images) per class.
        shots: if given, every class needs at least this many images (K of N-way K-shot).

    Raises:
        ValueError: naming the class and the counts: blank or duplicate names, a class with no
            image or fewer than ``shots``, more than 10 images, fewer than 2 or more than 10
            classes.
    """
    if len(support) < MIN_CLASSES:
        raise ValueError(f"The support set has {len(support)} class(es); add at least "
                         f"{MIN_CLASSES} classes with a name and images each.")
    if len(support) > MAX_CLASSES:
        raise ValueError(f"The support set has {len(support)} classes; at most {MAX_CLASSES} "
                         f"are supported.")
    names, seen = [], {}
    for i, (name, images) in enumerate(support, start=1):
        clean = " ".join(str(name or "").split())
        if not clean:
            raise ValueError(f"Class {i} has a blank name; give every class a name.")
        key = clean.casefold()
        if key in seen:
            raise ValueError(f"Classes {seen[key]} and {i} are both named {clean!r}; "
                             f"class names must be different.")
        seen[key] = i
        n = len(images)
        if n == 0:
            raise ValueError(f"Class {clean!r} has 0 images; add 1 to {MAX_SHOTS}.")
        if shots is not None and n < shots:
            raise ValueError(f"Class {clean!r} has {n} image(s) but {shots}-shot needs {shots}.")
        if n > MAX_SHOTS:
            raise ValueError(f"Class {clean!r} has {n} images; at most {MAX_SHOTS} per class.")
        names.append(clean)
    return names


class FewShotPipeline:
    """Classify query photos from a user-built support set."""

    def embed(self, images: list[Image.Image], model: str = "efficientnet_lite0") -> torch.Tensor:
        """Backbone features of RGB images.

        Args:
            images: RGB ``PIL.Image`` list (any sizes).
            model: one of :func:`fewshot_backbones`.

        Returns:
            (B, D) float32 features (D = 1280 for EfficientNet-Lite0, finite).
        """
        check_backbone(model)
        net, pre = get_model(model), get_spec(model).preprocess
        feats = []
        with torch.no_grad():
            for start in range(0, len(images), 16):
                x = pre(images[start:start + 16])
                out = net(x)
                feats.append(out.pooled if hasattr(out, "pooled") else out)
        return torch.nan_to_num(torch.cat(feats).float())

    def __call__(self, support: list[tuple[str, list[Image.Image]]], query: list[Image.Image], *,
                 method: str = "protonet", model: str = "efficientnet_lite0",
                 support_features: list[torch.Tensor] | None = None) -> FewShotResult:
        """Classify each query image.

        Args:
            support: (class name, RGB images) per class; 2..10 classes, 1..10 images each.
            query: 1 or more RGB images.
            method: one of ``METHOD_SETTINGS`` ("protonet", "cosine", "linear").
            model: backbone, one of :func:`fewshot_backbones`.
            support_features: optional precomputed (K_c, D) features per class (as from
                :meth:`embed` with the same ``model``), to skip re-embedding the support set.

        Returns:
            :class:`FewShotResult`.

        Raises:
            ValueError: bad support set (see :func:`validate_support`), no query, unknown
                method or model.
        """
        check_backbone(model)
        names = validate_support(support)
        if not query:
            raise ValueError("Add at least one query image to classify.")
        if method not in METHOD_SETTINGS:
            valid = [m for m in list_methods() if m in METHOD_SETTINGS]
            raise ValueError(f"unknown method {method!r}; valid: {', '.join(valid)}")
        get_model(model)  # load outside the timed call (first use only)
        t0 = time.perf_counter()
        if support_features is None:
            support_features = [self.embed(images, model) for _, images in support]
        labels = torch.cat([torch.full((len(f),), c, dtype=torch.long)
                            for c, f in enumerate(support_features)])
        s_feats = torch.cat(support_features)
        q_feats = self.embed(query, model)
        clf = create_method(method, **METHOD_SETTINGS[method])
        clf.process_support_set(s_feats, labels)  # the linear head trains here
        with torch.no_grad():
            probs = clf(q_feats).softmax(-1)  # (Q, N)
        ms = (time.perf_counter() - t0) * 1000.0
        preds = [Prediction(names[int(p.argmax())], {n: float(v) for n, v in zip(names, p)})
                 for p in probs]
        # the picture: PCA of unit-normalised features (the geometry all three methods share)
        unit = torch.nn.functional.normalize(torch.cat([s_feats, q_feats]), dim=-1)
        protos = torch.stack([unit[:len(s_feats)][labels == c].mean(0) for c in range(len(names))])
        xy = pca_2d(torch.cat([unit, protos]).numpy())
        S, Q = len(s_feats), len(q_feats)
        return FewShotResult(preds, names, xy[:S], labels.tolist(), xy[S + Q:], xy[S:S + Q],
                             model, method, ms)
