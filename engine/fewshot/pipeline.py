"""One few-shot pipeline for photos and drawings: encode the images, classify the queries.

A :class:`FewShotPipeline` owns two components, given by :mod:`engine.factory`:

* an **input encoder** turning one image into what the classifier takes: frozen pretrained
  features for photos (:class:`engine.fewshot.photos.BackboneFeatures`), Omniglot's 28x28
  preprocessing for drawings (:class:`engine.fewshot.handwriting.DrawingEncoder`);
* a **classifier source** handing out a fresh classifier per call: a method chosen per call
  over the frozen features (:class:`engine.fewshot.photos.FrozenFeatureMethods`), or a deep copy
  of a meta-learned checkpoint loaded once (:class:`engine.fewshot.handwriting.MetaLearned`).

Encoded support images are kept in an LRU cache inside the pipeline (keyed by the encoder's
name and a digest of the image's pixels), so a session that classifies several queries against
the same support set encodes it once. PCA of the classifier's view of the episode gives the
2-D picture.

    >>> result = pipeline(SupportSet.from_classes([("cat", cats), ("cup", cups)]), [photo])
    >>> result.predictions[0].label, result.to_json()["predictions"]
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from engine.errors import UserInputError
from engine.fewshot.methods.base import FewShotClassifier, class_means
from engine.fewshot.support import SupportLimits, SupportSet, validate_support
from engine.inputs.images import small_image_note
from engine.inputs.pool import map_ordered
from engine.viz import pca_2d

#: Per-call MAML-style adaptation: steps in [0, MAX_STEPS], step size in (0, MAX_STEP_SIZE].
MAX_STEPS, MAX_STEP_SIZE = 50, 10.0
#: Images encoded per forward pass.
BATCH = 16
#: Classes whose probabilities are within this of the highest are tied: no class is preferred.
TIE_TOLERANCE = 1e-4
#: A top class ahead of the next by less than this (but not tied) is reported as a close call.
CLOSE_MARGIN = 0.05


class InputEncoder(Protocol):
    """Turns images into the classifier's inputs (photos: features; drawings: 28x28 inputs)."""

    name: str

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """One image -> (C, H, W) float32 network input; UserInputError if it is unusable."""

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) prepared inputs -> (B, ...) float32 classifier inputs."""

    def picture(self, encoded: torch.Tensor) -> np.ndarray | None:
        """What the model saw, as (B, H, W) float32 in [0, 1] images, or None."""

    def remarks(self, image: Image.Image) -> list[str]:
        """What the user should know about how one image was read (e.g. "the drawing was
        inverted (...)"): lower-case phrases, no prefix. (A very small image is noted by the
        pipeline itself, :func:`engine.inputs.images.small_image_note`.)"""


class ClassifierSource(Protocol):
    """Hands out a new classifier per call (a classifier keeps the support set on itself)."""

    methods: list[str]
    adapts_weights: bool

    def new(self, method: str | None) -> FewShotClassifier:
        """A fresh classifier running ``method`` (None: the default); UserInputError if unknown."""

    def plot_features(self, clf: FewShotClassifier, support: torch.Tensor,
                      query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, D) and (Q, D) features the episode is pictured with (after classification)."""


class FeatureCache:
    """A thread-safe LRU cache of encoded images.

    Args:
        size: most entries kept (0 disables the cache).
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> torch.Tensor | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[str, str], value: torch.Tensor) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def image_digest(image: Image.Image) -> str:
    """A digest of an image's mode, size and pixels (equal images, equal digests)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


@dataclass
class Prediction:
    """One query's answer.

    Attributes:
        label: the most probable class (with a tie, the first of ``tied`` in class order: show
            ``tied`` instead, never this label alone).
        probabilities: class name -> p, summing to 1.
        tied: the classes tied for the highest probability (within :data:`TIE_TOLERANCE`) when
            two or more are, else empty: no class is preferred (MAML with 0 steps, identical
            prototypes).
        notes: what the user should know about this answer (a tie, a close call, how the image
            was read), whole sentences.
    """

    label: str
    probabilities: dict[str, float]
    tied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def answer(self) -> str | None:
        """The label, or None when classes are tied (for JSON: never a label for a tie)."""
        return None if self.tied else self.label


def _prediction(names: list[str], probs: torch.Tensor, remarks: list[str]) -> Prediction:
    """A :class:`Prediction` from (N,) probabilities, with a tie or a close call named."""
    p = [float(v) for v in probs]
    top = max(p)
    tied = [n for n, v in zip(names, p) if top - v <= TIE_TOLERANCE]
    notes = list(remarks)
    if len(tied) > 1:
        notes.insert(0, f"No class is preferred: {', '.join(map(repr, tied))} are tied at "
                        f"p = {top:.3f}.")
    else:
        order = sorted(range(len(p)), key=lambda i: -p[i])
        first, second = order[0], order[1]
        if p[first] - p[second] < CLOSE_MARGIN:
            notes.insert(0, f"A close call: {names[first]!r} (p = {p[first]:.3f}) is barely "
                            f"ahead of {names[second]!r} (p = {p[second]:.3f}).")
    return Prediction(tied[0], dict(zip(names, p)), tied if len(tied) > 1 else [], notes)


@dataclass
class FewShotResult:
    """Result of :class:`FewShotPipeline`.

    Attributes:
        predictions: one per query image, in order.
        class_names: N class names (spaces collapsed), in support order.
        support_xy: (S, 2) float32 PCA coordinates of the support images, in support order;
            support_labels: their S class indices.
        prototype_xy: (N, 2) coordinates of the class means; query_xy: (Q, 2).
        model: the pipeline's model name; method: the method's registered name.
        ms: wall milliseconds of encoding (support images not cached) + classification.
        inner_losses: methods that adapt their weights (MAML): the support loss before each
            adaptation step and after the last (steps + 1 floats); None for the others.
        query_inputs: drawings: (Q, 28, 28) float32 in [0, 1], what the model saw (ink = 1);
            None for photos.
        notes: what the user should know about the support images (e.g. "support images 1, 3:
            the drawing was inverted (...)"); each query's own notes are in its prediction.
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
    inner_losses: list[float] | None = None
    query_inputs: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """A JSON-serialisable dict of every field (arrays as nested lists, 4 decimals)."""
        def arr(x):
            return None if x is None else np.round(np.asarray(x, dtype=np.float64), 4).tolist()
        return {"model": self.model, "method": self.method, "ms": round(self.ms, 1),
                "class_names": list(self.class_names),
                "predictions": [{"label": p.answer, "probabilities": p.probabilities,
                                 "tied": p.tied, "notes": p.notes}
                                for p in self.predictions],
                "notes": list(self.notes),
                "support_labels": list(self.support_labels), "support_xy": arr(self.support_xy),
                "prototype_xy": arr(self.prototype_xy), "query_xy": arr(self.query_xy),
                "inner_losses": self.inner_losses, "query_inputs": arr(self.query_inputs)}


class FewShotPipeline:
    """Classify query images from a support set of named classes.

    Args:
        encoder: an :class:`InputEncoder`.
        classifiers: a :class:`ClassifierSource`.
        limits: the support sets accepted and the wording of refusals.
        name: the model name this pipeline runs on (for results and messages).
        cache_size: encoded support images kept (LRU).
    """

    def __init__(self, encoder: InputEncoder, classifiers: ClassifierSource,
                 limits: SupportLimits, *, name: str, cache_size: int = 512) -> None:
        self.encoder, self.classifiers, self.limits, self.name = encoder, classifiers, limits, name
        self.cache = FeatureCache(cache_size)

    @property
    def methods(self) -> list[str]:
        """Methods a call may choose (photos: those offered over frozen features)."""
        return self.classifiers.methods

    @property
    def adapts_weights(self) -> bool:
        """True if the classifier takes ``maml_steps`` / ``maml_step_size`` (MAML)."""
        return self.classifiers.adapts_weights

    def classifier(self, method: str | None = None, *, maml_steps: int | None = None,
                   maml_step_size: float | None = None) -> FewShotClassifier:
        """A fresh classifier for one task (its own copy: it keeps the support set).

        Args:
            method: one of :attr:`methods` (None: the default).
            maml_steps: MAML only: adaptation steps in [0, 50]; None keeps the trained value.
            maml_step_size: MAML only: inner step size in (0, 10]; None keeps the trained value.

        Raises:
            UserInputError: unknown method; MAML settings for another method, or out of range.
        """
        if (maml_steps is not None or maml_step_size is not None) and not self.adapts_weights:
            raise UserInputError(f"maml_steps / maml_step_size apply to MAML models only, "
                                 f"not {self.name!r}")
        clf = self.classifiers.new(method)
        if maml_steps is not None:
            if not 0 <= int(maml_steps) <= MAX_STEPS:
                raise UserInputError(f"maml_steps must be in [0, {MAX_STEPS}], got {maml_steps}")
            clf.inner_steps = int(maml_steps)
        if maml_step_size is not None:
            if not 0 < float(maml_step_size) <= MAX_STEP_SIZE:
                raise UserInputError(f"maml_step_size must be in (0, {MAX_STEP_SIZE:g}], "
                                     f"got {maml_step_size}")
            clf.inner_lr = float(maml_step_size)
        return clf

    @torch.no_grad()
    def encode(self, images: Sequence[Image.Image], what: str = "image",
               cache: bool = False) -> torch.Tensor:
        """Encode images for the classifier, in batches of :data:`BATCH` (the images are
        prepared by worker threads while the previous batch is encoded).

        Args:
            images: PIL images (RGB photos; drawings of any mode).
            what: how to name an image in a message ("support image" -> "support image 3: ...").
            cache: look up and keep the results in :attr:`cache`.

        Returns:
            (B, ...) float32, the encoder's output per image.

        Raises:
            UserInputError: an image the encoder refuses (e.g. a blank drawing), named.
        """
        out: list[torch.Tensor | None] = [None] * len(images)
        todo = []
        for i, image in enumerate(images):
            key = (self.encoder.name, image_digest(image)) if cache else None
            out[i] = self.cache.get(key) if key else None
            if out[i] is None:
                todo.append((i, key, image))

        def prepare(item):  # in a worker thread: resizing runs while the last batch encodes
            i, key, image = item
            try:
                return i, key, self.encoder.prepare(image), None
            except UserInputError as exc:
                return i, key, None, exc

        chunk: list = []
        for n, (i, key, x, error) in enumerate(map_ordered(prepare, todo, ahead=2 * BATCH), 1):
            if error is not None:
                raise UserInputError(f"{what} {i + 1}: {error}") from None
            chunk.append((i, key, x))
            if len(chunk) == BATCH or n == len(todo):
                encoded = self.encoder.encode(torch.stack([x for _, _, x in chunk]))
                for (i, key, _), row in zip(chunk, encoded):
                    out[i] = row.clone()
                    if key:
                        self.cache.put(key, out[i])
                chunk = []
        return torch.stack(out)

    def __call__(self, support: SupportSet, query: Sequence[Image.Image], *,
                 method: str | None = None, maml_steps: int | None = None,
                 maml_step_size: float | None = None) -> FewShotResult:
        """Classify each query image.

        Args:
            support: the support set (see :attr:`limits`).
            query: 1 or more images.
            method: one of :attr:`methods` (None: the default).
            maml_steps, maml_step_size: MAML only, see :meth:`classifier`.

        Returns:
            :class:`FewShotResult`.

        Raises:
            UserInputError: bad support set (see :func:`~engine.fewshot.support.validate_support`),
                no query, an image the encoder refuses, unknown method, bad MAML settings.
        """
        names = validate_support(support, self.limits)
        if not query:
            raise UserInputError(self.limits.no_query)
        clf = self.classifier(method, maml_steps=maml_steps, maml_step_size=maml_step_size)
        t0 = time.perf_counter()
        s_inputs = self.encode(support.images, "support image", cache=True)  # (S, ...)
        q_inputs = self.encode(query, "query image")  # (Q, ...)
        labels = torch.tensor(support.labels, dtype=torch.long)
        with torch.no_grad():
            clf.process_support_set(s_inputs, labels)  # a linear head trains, MAML adapts here
            probs = clf(q_inputs).softmax(-1)  # (Q, N)
        ms = (time.perf_counter() - t0) * 1000.0
        with torch.no_grad():
            s_feats, q_feats = self.classifiers.plot_features(clf, s_inputs, q_inputs)
        protos = class_means(s_feats, labels, len(names))  # (N, D)
        S, Q = len(s_feats), len(q_feats)
        xy = pca_2d(torch.cat([s_feats, q_feats, protos]).numpy())  # (S + Q + N, 2)
        preds = [_prediction(names, p, self._image_notes(image, f"query image {i + 1}"))
                 for i, (p, image) in enumerate(zip(probs, query))]
        return FewShotResult(
            preds, names, xy[:S], list(support.labels), xy[S + Q:], xy[S:S + Q], self.name,
            clf.method_name, ms, list(clf.inner_losses) if clf.adapts_weights else None,
            self.encoder.picture(q_inputs), self._support_notes(support))

    def _image_notes(self, image: Image.Image, what: str) -> list[str]:
        """Sentences on how one image was read: the encoder's remarks, a very small image."""
        notes = [f"{what[:1].upper()}{what[1:]}: {r}." for r in self.encoder.remarks(image)]
        small = small_image_note(image, what)
        return notes + ([small] if small else [])

    def _support_notes(self, support: SupportSet) -> list[str]:
        """Notes on the support images, images named by number (from 1, in the order added)
        and class; one sentence per encoder remark for all the images it applies to."""
        by_remark: dict[str, list[str]] = {}
        notes = []
        for i, (image, name) in enumerate(support.items(), start=1):
            for remark in self.encoder.remarks(image):
                by_remark.setdefault(remark, []).append(f"{i} ({name!r})")
            small = small_image_note(image, f"support image {i} ({name!r})")
            if small:
                notes.append(small)
        return [f"Support image{'s' if len(where) > 1 else ''} {', '.join(where)}: {remark}."
                for remark, where in by_remark.items()] + notes

    def clear_cache(self) -> None:
        """Forget every encoded support image (benchmarks time the encoding this way)."""
        self.cache.clear()
