"""A retrieval gallery embedded once: the index the retrieval pipeline searches.

Each gallery image is encoded once, by a :class:`engine.retrieval.encoders.RetrievalEncoder`,
into three arrays (rows in gallery order):

* ``semantic`` (N, Ds): where the image sits in the text space. Embedded model: ConSE
  (:mod:`engine.retrieval.conse`) over EfficientNet-Lite0's ImageNet probabilities and MiniLM
  class-name embeddings, Ds = 384. Hub model: the OpenCLIP image embedding.
* ``visual`` (N, Dv): appearance features for the similarity to the reference. Embedded:
  EfficientNet-Lite0's pooled 1280-d head features, L2-normalised. Hub: the OpenCLIP embedding.
* ``attributes`` (N, 2): colour saturation and brightness (:func:`engine.retrieval.scoring.image_attributes`).

A folder's index is saved as ``<key>.npz`` + ``<key>.json`` (manifest: model, file names and
SHA-256 of their bytes) under :func:`cache_dir`, keyed by the folder and the encoder's model
name, and reused: only new or changed files are encoded again. A folder may carry its own index
in ``<folder>/.index/<model>.{npz,json}`` (the bundled default gallery does, so the app does not
encode it at start-up); it is used as the starting point and is never written by the app. Every
file is read, hashed and decoded through :func:`engine.inputs.images.load_image` by worker
threads (:func:`engine.inputs.pool.map_ordered`), then encoded in batches of :data:`BATCH`.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from engine.errors import UserInputError
from engine.inputs.files import image_files
from engine.inputs.images import ImageInputError, load_image
from engine.inputs.pool import map_ordered
from engine.retrieval.encoders import RetrievalEncoder

#: Images encoded per forward pass.
BATCH = 32
_FORMAT = 1
#: ``progress(done, total)``: called after each encoded batch.
Progress = Callable[[int, int], None]


def cache_dir() -> Path:
    """Where folder indexes are kept: ``$ENGINE_CACHE_DIR/retrieval`` or ~/.cache/vl-demo/retrieval."""
    root = os.environ.get("ENGINE_CACHE_DIR") or Path.home() / ".cache" / "vl-demo"
    return Path(root) / "retrieval"


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


def _encode_all(images: list[Image.Image], encoder: RetrievalEncoder,
                progress: Progress | None) -> dict[str, np.ndarray]:
    """Encode ``images`` in batches of :data:`BATCH` -> the three (N, D) arrays."""
    chunks = []
    for start in range(0, len(images), BATCH):
        chunks.append(encoder.embed_images(images[start:start + BATCH]))
        if progress:
            progress(min(start + BATCH, len(images)), len(images))
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def index_images(items: list[tuple[str, Image.Image]], encoder: RetrievalEncoder,
                 progress: Progress | None = None, hashes: list[str] | None = None
                 ) -> GalleryIndex:
    """Index in-memory images (a user's uploads).

    Args:
        items: (name, RGB image) pairs, at least one.
        encoder: the retrieval encoder (its ``name`` is recorded as the index's model).
        progress: called as ``progress(done, total)`` after each batch.
        hashes: SHA-256 of each image's file bytes, in ``items`` order (default: "" each).

    Returns:
        :class:`GalleryIndex` with ``root=None``.

    Raises:
        UserInputError: no image.
    """
    if not items:
        raise UserInputError("the gallery is empty: add at least one image")
    if hashes is not None and len(hashes) != len(items):
        raise ValueError(f"{len(hashes)} hashes for {len(items)} images")
    arrays = _encode_all([im for _, im in items], encoder, progress)
    return GalleryIndex(encoder.name, [n for n, _ in items],
                        list(hashes) if hashes is not None else [""] * len(items), **arrays)


def index_folder(folder: str | Path, encoder: RetrievalEncoder,
                 progress: Progress | None = None, cache: Path | None = None,
                 write_bundled: bool = False) -> tuple[GalleryIndex, list[str]]:
    """Index every image file of ``folder`` (not recursive), reusing the cached index.

    Files whose bytes are unchanged since the cached (or the folder's bundled) index of the
    same model are not encoded again; new or changed files are; removed files are dropped.
    Files that fail to decode are skipped and named in the notes.

    Args:
        folder: gallery folder.
        encoder: the retrieval encoder; its ``name`` keys the cache and the bundled index.
        progress: ``progress(done, total)`` while encoding.
        cache: cache folder (default :func:`cache_dir`).
        write_bundled: write the index into ``<folder>/.index/`` (to ship it with the folder).

    Returns:
        (index, notes for the user).

    Raises:
        UserInputError: not a folder, or no usable image in it.
    """
    model = encoder.name
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise UserInputError(f"gallery folder {str(folder)!r} does not exist")
    key = hashlib.sha1(f"{folder}|{model}".encode()).hexdigest()[:16]
    stem = (cache or cache_dir()) / key
    bundled = folder / ".index" / model
    old = GalleryIndex.load(stem)
    if old is None or old.model != model:
        old = GalleryIndex.load(bundled)
    if old is not None and old.model != model:
        old = None
    known = {(n, h): i for i, (n, h) in enumerate(zip(old.names, old.hashes))} if old else {}
    files = image_files(folder)

    def read(p: Path):
        """(path, SHA-256, decoded image or None if known, error or None): in a worker."""
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        if (p.name, digest) in known:
            return p, digest, None, None
        try:
            return p, digest, load_image(p).image, None
        except ImageInputError as exc:
            return p, digest, None, exc

    names, hashes, rows, todo, notes = [], [], [], [], []
    for p, digest, image, error in map_ordered(read, files):
        if error is not None:
            notes.append(f"skipped: {error}")
            continue
        if image is None:
            row = ("old", known[p.name, digest])
        else:
            todo.append(image)
            row = ("new", len(todo) - 1)
        names.append(p.name)
        hashes.append(digest)
        rows.append(row)
    if not names:
        raise UserInputError(f"no usable image in gallery folder {str(folder)!r}")
    new = _encode_all(todo, encoder, progress) if todo else None
    arrays = {}
    for k in ("semantic", "visual", "attributes"):
        arrays[k] = np.stack([(getattr(old, k)[i] if src == "old" else new[k][i])
                              for src, i in rows]).astype(np.float32)  # (N, D)
    index = GalleryIndex(model, names, hashes, root=str(folder), **arrays)
    if write_bundled:
        index.save(bundled)
    elif todo or old is None or len(old) != len(index) or old.names != index.names:
        index.save(stem)
    return index, notes
