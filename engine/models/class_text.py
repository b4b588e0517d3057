"""A classifier's class names in a sentence encoder's space: one shared table per process.

Used wherever text meets the ImageNet vocabulary: ConSE image embeddings (retrieval), matching
an instruction's object words to classes (editing). Computed on first use, under a lock of its
own, and read-only afterwards.
"""
from __future__ import annotations

import threading
from typing import Sequence

import torch


class ClassNameEmbeddings:
    """Sentence embeddings of a classifier's class names.

    Args:
        text_encoder: an encoder with ``encode(list[str]) -> .embeddings`` (N, D) unit vectors
            (:class:`engine.models.minilm.MiniLMEncoder`).
        class_names: the classifier's C class names, in logit order.
    """

    def __init__(self, text_encoder, class_names: Sequence[str]) -> None:
        self.text_encoder = text_encoder
        self.class_names = tuple(class_names)
        self._table: torch.Tensor | None = None
        self._lock = threading.Lock()

    @property
    def table(self) -> torch.Tensor:
        """(C, D) float32 unit vectors, row c = class c (shared: do not modify)."""
        if self._table is None:
            with self._lock:
                if self._table is None:
                    self._table = self.text_encoder.encode(list(self.class_names)
                                                           ).embeddings.float()
        return self._table
