"""Few-shot classification of handwritten symbols with models meta-trained on Omniglot: the
pipeline's parts.

Every drawing (support and query) is preprocessed like Omniglot by :class:`DrawingEncoder`
(:func:`engine.fewshot.omniglot.preprocess_drawing`: dark strokes on a light background, a dark
canvas inverted and the user told so, cropped to the ink, centred, 28x28). :class:`MetaLearned`
holds the classifier of a checkpoint, loaded once per process by :mod:`engine.factory`, and
hands out a deep copy per request (a classifier keeps the support set on itself, and MAML adapts
its weights). PCA of the model's embeddings gives the 2-D picture; MAML models also report the
support loss per step.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from PIL import Image

from engine.errors import UserInputError, unknown_name_message
from engine.fewshot.methods import FewShotClassifier
from engine.fewshot.omniglot import INVERTED_NOTE, SIZE, drawing_gray, preprocess_drawing
from engine.fewshot.support import SupportLimits
from engine.models.omniglot import MAX_WAY

#: Support sets of drawings: 2..20 classes (the largest N measured), at most 100 drawings.
DRAWING_LIMITS = SupportLimits(
    max_classes=MAX_WAY, max_images=100,
    empty="the support set is empty: draw at least one example of each of 2 or more classes",
    too_few="only one class ({name!r}, {count} example(s)): few-shot classification needs at "
            "least {min} classes",
    too_many="{n} classes given; the handwriting models support at most {max}",
    duplicate="labels {first_name!r} and {name!r} differ only in case, spaces or Unicode "
              "form; use one spelling per class, or names that differ otherwise (e.g. "
              "'A upper', 'a lower')",
    empty_class="class {name!r} has 0 support examples; each class needs at least 1 (examples "
                "per class: {counts})",
    no_query="no query image: draw or upload a symbol to classify")


class DrawingEncoder:
    """Omniglot's preprocessing: a drawing -> (1, 28, 28) ink in [0, 1]; the model embeds it."""

    name = f"omniglot{SIZE}"

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """A drawing of any mode and size -> (1, 28, 28) float32 in [0, 1], ink = 1.

        Raises:
            UserInputError: a blank drawing.
        """
        return preprocess_drawing(image)

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) -> the same: the meta-learned model's backbone embeds them."""
        return batch

    def picture(self, encoded: torch.Tensor) -> np.ndarray:
        """(B, 1, 28, 28) -> (B, 28, 28) float32 in [0, 1]: what the model saw (ink = 1)."""
        return encoded[:, 0].numpy()

    def remarks(self, image: Image.Image) -> list[str]:
        """A dark canvas that was inverted (:data:`~engine.fewshot.omniglot.INVERTED_NOTE`)."""
        return [INVERTED_NOTE] if drawing_gray(image)[1] else []


class MetaLearned:
    """A meta-learned classifier, copied for every request.

    Args:
        classifier: the checkpoint's classifier
            (:func:`engine.fewshot.checkpoints.build_classifier`), never changed here: each
            call works on a deep copy.
    """

    def __init__(self, classifier: FewShotClassifier) -> None:
        self.classifier = classifier.eval()

    @property
    def methods(self) -> list[str]:
        """The one method the checkpoint was trained with."""
        return [self.classifier.method_name]

    @property
    def adapts_weights(self) -> bool:
        return self.classifier.adapts_weights

    def new(self, method: str | None) -> FewShotClassifier:
        """A deep copy of the classifier (``method`` must be None or the checkpoint's).

        Raises:
            UserInputError: another method was asked for.
        """
        if method is not None and method not in self.methods:
            raise UserInputError(unknown_name_message("method", method, self.methods))
        return copy.deepcopy(self.classifier)

    def plot_features(self, clf: FewShotClassifier, support: torch.Tensor,
                      query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's own embeddings (MAML: of its adapted network), (S, D) and (Q, D)."""
        return clf.embed(support), clf.embed(query)


__all__ = ["DRAWING_LIMITS", "DrawingEncoder", "MetaLearned"]
