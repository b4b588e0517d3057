"""A retrieval gallery embedded once: the index the retrieval pipeline searches.

Each gallery image is encoded once into three arrays (rows in gallery order):

* ``semantic`` (N, Ds): where the image sits in the text space. Embedded model: ConSE
  (:mod:`engine.retrieval.conse`) over EfficientNet-Lite0's ImageNet probabilities and MiniLM
  class-name embeddings, Ds = 384. Hub model: the OpenCLIP image embedding.
* ``visual`` (N, Dv): appearance features for the similarity to the reference. Embedded:
  EfficientNet-Lite0's pooled 1280-d head features, L2-normalised. Hub: the OpenCLIP embedding.
* ``attributes`` (N, 2): colour saturation and brightness (:func:`engine.retrieval.scoring.image_attributes`).

A folder's index is saved as ``<key>.npz`` + ``<key>.json`` (manifest: model, file names and
SHA-256 of their bytes) under :func:`cache_dir`, and reused: only new or changed files are
encoded again. A folder may carry its own index in ``<folder>/.index/<model>.{npz,json}`` (the
bundled default gallery does, so the app does not encode it at start-up); it is used as the
starting point and is never written by the app. Every file is decoded through
:func:`engine.inputs.images.load_image`.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from engine.inputs.images import ImageInputError, load_image
from engine.retrieval.scoring import image_attributes
from engine.retrieval.conse import class_name_embeddings, conse_embed
from engine.models import load_model as get_model, get_spec

EMBEDDED_RETRIEVER = "efficientnet_lite0"
#: Hub models with an image and a text tower (open_clip), usable for retrieval.
HUB_RETRIEVERS = ("openclip-vit-b-32",)
#: File suffixes a gallery folder is scanned for (each file is still decoded and checked).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
#: Images encoded per forward pass.
BATCH = 32
_FORMAT = 1
Progress = Callable[[int, int], None]


def retrieval_models() -> list[str]:
    """Models the retrieval pipeline accepts: the embedded one first."""
    return [EMBEDDED_RETRIEVER, *HUB_RETRIEVERS]


def cache_dir() -> Path:
    """Where folder indexes are kept: ``$ENGINE_CACHE_DIR/retrieval`` or ~/.cache/vl-demo/retrieval."""
    root = os.environ.get("ENGINE_CACHE_DIR") or Path.home() / ".cache" / "vl-demo"
    return Path(root) / "retrieval"


def _check_model(model: str) -> None:
    if model not in retrieval_models():
        raise ValueError(f"unknown retrieval model {model!r}; valid: "
                         f"{', '.join(retrieval_models())}")


@torch.no_grad()
def embed_images(images: list[Image.Image], model: str = EMBEDDED_RETRIEVER
                 ) -> dict[str, np.ndarray]:
    """Encode RGB images into the index's three arrays.

    Args:
        images: RGB PIL images (any size; resized whole, no crop, to the model's input size).
        model: one of :func:`retrieval_models`.

    Returns:
        {"semantic": (N, Ds), "visual": (N, Dv), "attributes": (N, 2)} float32 arrays.
    """
    _check_model(model)
    if not images:
        raise ValueError("no images to encode")
    x = get_spec(model).preprocess(images, crop=False)  # (N, 3, S, S)
    if model == EMBEDDED_RETRIEVER:
        backbone, text = get_model(model), get_model("minilm")
        out = backbone(x)
        probs = out.logits.float().softmax(-1)  # (N, 1000)
        semantic = conse_embed(probs, class_name_embeddings(text, backbone.class_names))
        visual = torch.nn.functional.normalize(out.pooled.float(), dim=-1, eps=1e-8)
    else:
        semantic = visual = get_model(model).encode_image(x).float()  # (N, D) unit
    attrs = np.stack([image_attributes(np.asarray(_thumb(im))) for im in images])
    return {"semantic": np.nan_to_num(semantic.numpy()).astype(np.float32),
            "visual": np.nan_to_num(visual.numpy()).astype(np.float32),
            "attributes": attrs.astype(np.float32)}


@torch.no_grad()
def embed_text(text: str, model: str = EMBEDDED_RETRIEVER, notes: list[str] | None = None
               ) -> np.ndarray:
    """Embed cleaned text into the semantic space of ``model`` -> (Ds,) float32 unit vector.

    If the text is longer than the text encoder's context it is cut there (the end-of-text
    token kept) and, when ``notes`` is given, a note for the user is appended to it.
    """
    _check_model(model)
    if model == EMBEDDED_RETRIEVER:
        out = get_model("minilm").encode([text])
        emb = out.embeddings[0]
        if out.truncated[0] and notes is not None:
            from engine.models.minilm import MAX_TOKENS
            notes.append(f"The text is longer than the text encoder's {MAX_TOKENS} tokens; "
                         f"only its beginning was used.")
    else:
        emb = get_model(model).encode_text([text])[0]
    return np.nan_to_num(emb.float().numpy()).astype(np.float32)


def _thumb(image: Image.Image, side: int = 64) -> Image.Image:
    im = image.copy()
    im.thumbnail((side, side), Image.Resampling.BILINEAR)
    return im


@dataclass
class GalleryIndex:
    """Embedded gallery.

    Attributes:
        model: retrieval model that produced the arrays.
        names: N file names (relative to ``root``) or upload names, in row order.
        hashes: N SHA-256 hex digests of the files' bytes ("" for in-memory images).
        semantic, visual, attributes: (N, Ds), (N, Dv), (N, 2) float32 (see module docstring).
        root: folder the names are relative to (None for uploads).
    """

    model: str
    names: list[str]
    hashes: list[str]
    semantic: np.ndarray
    visual: np.ndarray
    attributes: np.ndarray
    root: str | None = None

    def __len__(self) -> int:
        return len(self.names)

    def path(self, i: int) -> str:
        """Full path of row ``i`` (its name for in-memory galleries)."""
        return str(Path(self.root) / self.names[i]) if self.root else self.names[i]

    def save(self, stem: Path) -> None:
        """Write ``stem.npz`` (arrays) and ``stem.json`` (manifest)."""
        stem.parent.mkdir(parents=True, exist_ok=True)
        tmp = stem.with_suffix(".tmp.npz")
        np.savez(tmp, semantic=self.semantic, visual=self.visual, attributes=self.attributes)
        os.replace(tmp, stem.with_suffix(".npz"))
        manifest = {"format": _FORMAT, "model": self.model,
                    "files": [[n, h] for n, h in zip(self.names, self.hashes)]}
        stem.with_suffix(".json").write_text(json.dumps(manifest))

    @classmethod
    def load(cls, stem: Path) -> "GalleryIndex | None":
        """Read an index written by :meth:`save`; None if missing or unreadable."""
        try:
            manifest = json.loads(stem.with_suffix(".json").read_text())
            with np.load(stem.with_suffix(".npz"), allow_pickle=False) as arrays:
                data = {k: arrays[k] for k in ("semantic", "visual", "attributes")}
        except (OSError, ValueError, KeyError):
            return None
        if manifest.get("format") != _FORMAT or len(manifest["files"]) != len(data["visual"]):
            return None
        names = [f[0] for f in manifest["files"]]
        hashes = [f[1] for f in manifest["files"]]
        return cls(manifest["model"], names, hashes, **data)


def _encode_all(images: list[Image.Image], model: str, progress: Progress | None,
                done: int = 0, total: int | None = None) -> dict[str, np.ndarray]:
    total = total or len(images)
    chunks = []
    for start in range(0, len(images), BATCH):
        chunks.append(embed_images(images[start:start + BATCH], model))
        if progress:
            progress(done + min(start + BATCH, len(images)), total)
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def index_images(items: list[tuple[str, Image.Image]], model: str = EMBEDDED_RETRIEVER,
                 progress: Progress | None = None) -> GalleryIndex:
    """Index in-memory images (a user's uploads).

    Args:
        items: (name, RGB image) pairs, at least one.
        model: one of :func:`retrieval_models`.
        progress: called as ``progress(done, total)`` after each batch.

    Returns:
        :class:`GalleryIndex` with ``root=None``.
    """
    if not items:
        raise ValueError("the gallery is empty: add at least one image")
    arrays = _encode_all([im for _, im in items], model, progress)
    return GalleryIndex(model, [n for n, _ in items], [""] * len(items), **arrays)


def index_folder(folder: str | Path, model: str = EMBEDDED_RETRIEVER,
                 progress: Progress | None = None, cache: Path | None = None,
                 write_bundled: bool = False) -> tuple[GalleryIndex, list[str]]:
    """Index every image file of ``folder`` (not recursive), reusing the cached index.

    Files whose bytes are unchanged since the cached index are not encoded again; new or
    changed files are; removed files are dropped. Files that fail to decode are skipped and
    named in the notes.

    Args:
        folder: gallery folder.
        model: one of :func:`retrieval_models`.
        progress: ``progress(done, total)`` while encoding.
        cache: cache folder (default :func:`cache_dir`).
        write_bundled: write the index into ``<folder>/.index/`` (to ship it with the folder).

    Returns:
        (index, notes for the user).

    Raises:
        ValueError: not a folder, or no usable image in it.
    """
    _check_model(model)
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ValueError(f"gallery folder {str(folder)!r} does not exist")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    key = hashlib.sha1(f"{folder}|{model}".encode()).hexdigest()[:16]
    stem = (cache or cache_dir()) / key
    bundled = folder / ".index" / model
    old = GalleryIndex.load(stem)
    if old is None or old.model != model:
        old = GalleryIndex.load(bundled)
    if old is not None and old.model != model:
        old = None
    known = {(n, h): i for i, (n, h) in enumerate(zip(old.names, old.hashes))} if old else {}
    names, hashes, rows, todo, notes = [], [], [], [], []
    for p in files:
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        if (p.name, digest) in known:
            row = ("old", known[p.name, digest])
        else:
            try:
                todo.append(load_image(p).image)
            except ImageInputError as exc:
                notes.append(f"skipped: {exc}")
                continue
            row = ("new", len(todo) - 1)
        names.append(p.name)
        hashes.append(digest)
        rows.append(row)
    if not names:
        raise ValueError(f"no usable image in gallery folder {str(folder)!r}")
    new = _encode_all(todo, model, progress) if todo else None
    arrays = {}
    for k in ("semantic", "visual", "attributes"):
        arrays[k] = np.stack([(getattr(old, k)[i] if src == "old" else new[k][i])
                              for src, i in rows]).astype(np.float32)
    index = GalleryIndex(model, names, hashes, root=str(folder), **arrays)
    if write_bundled:
        index.save(bundled)
    elif todo or old is None or len(old) != len(index) or old.names != index.names:
        index.save(stem)
    return index, notes
