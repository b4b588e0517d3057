"""Few-shot classification of handwritten symbols with the models meta-trained on Omniglot.

The user draws (or uploads) a few labelled support symbols and one or more queries; every image
is preprocessed like Omniglot (:func:`engine.fewshot.omniglot.preprocess_drawing`: dark strokes on a
light background, cropped to the ink, centred, 28x28), a new instance of the chosen model takes
the support set, and each query gets a label and class probabilities. PCA of the model's
embeddings gives the 2-D picture; MAML models also report the support loss per adaptation step.

    >>> result = classify_handwriting([a1, b1], ["A", "B"], [q])
    >>> result.predictions[0].label, result.predictions[0].probabilities
"""
from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from engine.fewshot.omniglot import preprocess_drawing
from engine.fewshot.methods.base import class_means
from engine.fewshot.methods.maml import MAML
from engine.models.omniglot import MAX_WAY

#: The app's default model for handwritten symbols (the best one measured, docs/meta_learning.md).
DEFAULT_HANDWRITING_MODEL = "omniglot-protonet"
from engine.fewshot.pipeline import Prediction
from engine.models import create_model, get_spec, list_models
from engine.viz import pca_2d

MAX_SUPPORT = 100


@dataclass
class HandwritingResult:
    """Result of :func:`classify_handwriting`.

    Attributes:
        predictions: one per query, in order: ``label`` and ``probabilities`` (class name -> p,
            summing to 1).
        class_names: the N classes, in order of first appearance in the support labels.
        support_xy: (S, 2) float32 PCA coordinates of the support images.
        support_labels: S class indices into ``class_names``.
        prototype_xy: (N, 2) coordinates of the class means of the support embeddings.
        query_xy: (Q, 2) coordinates of the queries.
        inner_losses: MAML only: the support loss before each adaptation step and after the
            last one (steps + 1 floats); None for other methods.
        query_inputs: (Q, 28, 28) float32 in [0, 1]: what the model saw (ink = 1).
        model, method: registry name and few-shot method; ms: wall milliseconds.
    """

    predictions: list[Prediction]
    class_names: list[str]
    support_xy: np.ndarray
    support_labels: list[int]
    prototype_xy: np.ndarray
    query_xy: np.ndarray
    inner_losses: list[float] | None
    query_inputs: np.ndarray
    model: str
    method: str
    ms: float


def handwriting_models(include_variants: bool = False) -> list[str]:
    """Registered Omniglot few-shot models, the default first.

    Args:
        include_variants: also list the ProtoNets trained at other (N, K) for the
            train/test-mismatch table (``omniglot-protonet-5w1s`` ...), hidden from the UI.
    """
    names = [n for n in list_models(task="fewshot")
             if include_variants or not re.search(r"-\d+w\d+s$", n)]
    return sorted(names, key=lambda n: (n != DEFAULT_HANDWRITING_MODEL, n))


def validate_labels(support_labels: Sequence[str], n_images: int,
                    classes: Sequence[str] | None = None) -> tuple[list[str], list[int]]:
    """Check the support labels; return (class names, class index per support image).

    Args:
        support_labels: one label per support image (surrounding spaces ignored).
        n_images: number of support images.
        classes: optional list of every class the user declared (e.g. the UI's class slots),
            so that a declared class with no example is reported.

    Raises:
        ValueError: counts differ, a blank label, two labels differing only in case/spaces,
            a declared class with zero examples, fewer than 2 or more than MAX_WAY classes.
    """
    if n_images != len(support_labels):
        raise ValueError(f"got {n_images} support images but {len(support_labels)} labels; "
                         "give exactly one label per support image")
    if n_images == 0:
        raise ValueError("the support set is empty: draw at least one example of each of "
                         "2 or more classes")
    names: list[str] = []
    spelling: dict[str, str] = {}
    for i, raw in enumerate([*(classes or []), *support_labels]):
        clean = " ".join(str(raw or "").split())
        where = (f"class {i + 1}" if classes and i < len(classes)
                 else f"support image {i + 1 - len(classes or [])}")
        if not clean:
            raise ValueError(f"{where} has a blank label; give every class a name")
        key = clean.casefold()
        if key in spelling and spelling[key] != clean:
            raise ValueError(f"labels {spelling[key]!r} and {clean!r} differ only in case or "
                             "spaces; use one spelling per class")
        if classes and i < len(classes) and key in spelling:
            raise ValueError(f"class {clean!r} is declared twice")
        if key not in spelling:
            spelling[key] = clean
            names.append(clean)
    index = [names.index(" ".join(str(lab).split())) for lab in support_labels]
    counts = np.bincount(index, minlength=len(names))
    empty = [n for n, c in zip(names, counts) if c == 0]
    if empty:
        summary = ", ".join(f"{n!r}: {c}" for n, c in zip(names, counts))
        raise ValueError(f"class {empty[0]!r} has 0 support examples; each class needs at "
                         f"least 1 (examples per class: {summary})")
    if len(names) < 2:
        raise ValueError(f"only one class ({names[0]!r}, {counts[0]} example(s)): few-shot "
                         "classification needs at least 2 classes")
    if len(names) > MAX_WAY:
        raise ValueError(f"{len(names)} classes given; the handwriting models support at most "
                         f"{MAX_WAY}")
    return names, index


def _prepare(images: Sequence[Image.Image], what: str) -> torch.Tensor:
    out = []
    for i, img in enumerate(images):
        try:
            out.append(preprocess_drawing(img))
        except ValueError as exc:
            raise ValueError(f"{what} {i + 1}: {exc}") from None
    return torch.stack(out)  # (B, 1, 28, 28)


def classify_handwriting(support_images: Sequence[Image.Image], support_labels: Sequence[str],
                         query_images: Sequence[Image.Image],
                         model: str = DEFAULT_HANDWRITING_MODEL, *,
                         maml_steps: int | None = None, maml_step_size: float | None = None,
                         classes: Sequence[str] | None = None) -> HandwritingResult:
    """Classify handwritten query symbols from a few labelled drawings.

    Args:
        support_images: PIL images (any mode/size; RGBA sketchpad layers are put on white),
            dark strokes on a light background.
        support_labels: one class name per support image.
        query_images: one or more PIL images to classify.
        model: one of :func:`handwriting_models` (default :data:`DEFAULT_HANDWRITING_MODEL`).
        maml_steps: MAML models only: adaptation steps (0..50); None keeps the trained value.
        maml_step_size: MAML models only: inner step size (> 0); None keeps the trained value.
        classes: optional declared class names (a declared class with no example is an error).

    Returns:
        :class:`HandwritingResult`.

    Raises:
        ValueError: bad labels or counts (see :func:`validate_labels`), a blank drawing, no
            query, more than 100 support images, an unknown model, or MAML settings given for
            a non-MAML model or out of range.
    """
    if model not in list_models(task="fewshot"):
        raise ValueError(f"unknown handwriting model {model!r}; valid: "
                         f"{', '.join(handwriting_models(include_variants=True))}")
    names, index = validate_labels(support_labels, len(support_images), classes)
    if len(support_images) > MAX_SUPPORT:
        raise ValueError(f"{len(support_images)} support images; at most {MAX_SUPPORT}")
    if not query_images:
        raise ValueError("no query image: draw or upload a symbol to classify")
    overrides = {}
    is_maml = get_spec(model).extra.get("method", "").startswith("maml")
    if (maml_steps is not None or maml_step_size is not None) and not is_maml:
        raise ValueError(f"maml_steps / maml_step_size apply to MAML models only, not {model!r}")
    if maml_steps is not None:
        if not 0 <= int(maml_steps) <= 50:
            raise ValueError(f"maml_steps must be in [0, 50], got {maml_steps}")
        overrides["inner_steps"] = int(maml_steps)
    if maml_step_size is not None:
        if not 0 < float(maml_step_size) <= 10:
            raise ValueError(f"maml_step_size must be in (0, 10], got {maml_step_size}")
        overrides["inner_lr"] = float(maml_step_size)
    t0 = time.perf_counter()
    support = _prepare(support_images, "support image")
    query = _prepare(query_images, "query image")
    labels = torch.tensor(index, dtype=torch.long)
    from engine.fewshot.checkpoints import build_classifier  # TRANSITIONAL
    clf = build_classifier(create_model(model), **overrides)  # a new instance per call
    with torch.no_grad():
        clf.process_support_set(support, labels)
        probs = clf(query).softmax(-1)  # (Q, N)
        s_feats, q_feats = clf.embed(support), clf.embed(query)
    ms = (time.perf_counter() - t0) * 1000.0
    preds = [Prediction(names[int(p.argmax())], {n: float(v) for n, v in zip(names, p)})
             for p in probs]
    protos = class_means(s_feats, labels, len(names))
    S, Q = len(s_feats), len(q_feats)
    xy = pca_2d(torch.cat([s_feats, q_feats, protos]).numpy())
    return HandwritingResult(
        preds, names, xy[:S], index, xy[S + Q:], xy[S:S + Q],
        list(clf.inner_losses) if isinstance(clf, MAML) else None,
        query[:, 0].numpy(), model, clf.method_name, ms)
