"""Composed image retrieval: a reference image plus a modification text ("the same but with a
dog", "in black and white", "at night") ranks the images of an indexed gallery.

Embedded encoder (offline): the gallery's ConSE semantic embeddings (ImageNet probabilities of
EfficientNet-Lite0 weighting MiniLM embeddings of the class names; Norouzi et al., ICLR 2014)
are matched with the MiniLM embedding of the text's content words; the text's appearance words
are matched with measured colour saturation / brightness; the reference's pooled visual
features give the implicit similarity. The two parts are standardised over the gallery and
mixed with a weight, ARTEMIS-style (Delmas et al., ICLR 2022; see :mod:`engine.retrieval.scoring`).
Hub encoder: OpenCLIP image and text embeddings in both parts (Radford et al., 2021). The
encoder is a component (:mod:`engine.retrieval.encoders`) given to :class:`RetrievalPipeline`.

The gallery is encoded once (:mod:`engine.retrieval.index`); a query encodes only the
reference image and the text, then scores all N images with two matrix-vector products.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from engine.errors import UserInputError
from engine.inputs.files import decode_uploads
from engine.inputs.text import clean_text, english_words
from engine.retrieval.encoders import RetrievalEncoder
from engine.retrieval.index import GalleryIndex, Progress, index_folder, index_images
from engine.retrieval.scoring import artemis_scores, parse_modification
from engine.inputs.images import require_rgb, small_image_note

#: Largest number of results returned.
MAX_TOP_K = 100
#: Gallery rows this close (cosine of visual features) to the reference count as the reference.
SAME_IMAGE_COSINE = 0.9995
#: The bundled default gallery (its index ships in ``.index/``).
DEFAULT_GALLERY = Path(__file__).resolve().parents[2] / "assets" / "galleries" / "default"
#: Most images an uploaded gallery may hold, and their long side in pixels (as the default's).
MAX_GALLERY, GALLERY_SIDE = 500, 192


@dataclass
class Match:
    """One ranked gallery image.

    Attributes:
        path: gallery path (folder galleries) or upload name; index: its row in the index.
        score: explicit + implicit (standardised units; higher is better).
        explicit: weighted explicit-match contribution (text -> candidate).
        implicit: weighted implicit-similarity contribution (reference -> candidate).
    """

    path: str
    index: int
    score: float
    explicit: float
    implicit: float


@dataclass
class RetrievalResult:
    """Result of :class:`RetrievalPipeline`.

    Attributes:
        results: best first.
        model: retrieval model used; ms: wall milliseconds of the query (encoding the
            reference and the text, scoring, ranking; model loading excluded).
        content: the words used for the semantic match ("" if none).
        attributes: appearance phrases recognised ("black and white", "at night", ...).
        notes: remarks for the user.
    """

    results: list[Match]
    model: str
    ms: float
    content: str
    attributes: list[str]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"results": [{"path": m.path, "score": round(m.score, 4),
                             "explicit": round(m.explicit, 4), "implicit": round(m.implicit, 4)}
                            for m in self.results],
                "model": self.model, "ms": round(self.ms, 1), "content": self.content,
                "attributes": self.attributes, "notes": self.notes}


def image_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (how a reference found in the gallery is recognised)."""
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


@dataclass
class UploadedGallery:
    """A user's own gallery, decoded and indexed (kept per session by the app).

    Attributes:
        index: its :class:`GalleryIndex` (names = upload or zip member names, hashes = SHA-256
            of each file's bytes, ``root=None``).
        images: the N RGB images (long side <= :data:`GALLERY_SIDE`), in index row order.
        notes: one line per refused file, naming it and why.
    """

    index: GalleryIndex
    images: list[Image.Image]
    notes: list[str]


class RetrievalPipeline:
    """Rank an indexed gallery for a (reference image, modification text) query.

    Args:
        encoder: the image/text encoder (:class:`engine.retrieval.encoders.ConseEncoder`
            offline, :class:`engine.retrieval.encoders.ClipEncoder` on the hub). Galleries are
            indexed with it and only its indexes are searched.
        default_gallery: folder of the bundled gallery (:meth:`default_index`).

    Usage::

        pipe = RetrievalPipeline(encoder)
        index, notes = pipe.index_folder("assets/galleries/default")
        result = pipe(image, "in black and white", index=index, weight=0.5)
    """

    def __init__(self, encoder: RetrievalEncoder,
                 default_gallery: str | Path = DEFAULT_GALLERY) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.default_gallery = Path(default_gallery)
        self._default: GalleryIndex | None = None
        self._default_lock = threading.Lock()

    def index_folder(self, folder: str | Path, progress: Progress | None = None,
                     cache: Path | None = None) -> tuple[GalleryIndex, list[str]]:
        """Index a gallery folder with this pipeline's encoder, reusing its cached index.

        See :func:`engine.retrieval.index.index_folder` (same arguments, same returns).
        """
        return index_folder(folder, self.encoder, progress=progress, cache=cache)

    def default_index(self) -> GalleryIndex:
        """The bundled gallery's index (built or read once per pipeline; read-only, shared)."""
        if self._default is None:
            with self._default_lock:
                if self._default is None:
                    self._default = self.index_folder(self.default_gallery)[0]
        return self._default

    def index_uploads(self, paths: list[str | Path], progress: Progress | None = None
                      ) -> UploadedGallery:
        """Decode uploaded files (images and/or .zip archives of images) and index them.

        Args:
            paths: local paths of the uploads.
            progress: ``progress(done, total)`` while encoding.

        Returns:
            :class:`UploadedGallery`; refused files are named in its notes.

        Raises:
            UserInputError: no usable image (the refused files named), more than
                :data:`MAX_GALLERY` images, or a zip archive that breaks a guard.
        """
        files, notes = decode_uploads(list(paths), max_side=GALLERY_SIDE,
                                      max_images=MAX_GALLERY)  # counted before decoding
        if not files:
            raise UserInputError(" ".join(["No usable image in the upload" + (":" if notes
                                                                              else "."), *notes]))
        if len(files) > MAX_GALLERY:  # members without an image suffix that decoded as images
            raise UserInputError(f"{len(files)} images were uploaded; at most {MAX_GALLERY} can "
                                 f"be used.")
        index = index_images([(f.name, f.image) for f in files], self.encoder, progress,
                             hashes=[f.sha256 for f in files])
        return UploadedGallery(index, [f.image for f in files], notes)

    def _text_notes(self, content: str) -> list[str]:
        """Notes on content words the text models cannot read: another script than English's
        (left out of the search), emoji (read by their Unicode names) and, for the offline
        encoder, words with no meaning for it ("asdf qwerty": kept, but said so)."""
        read = english_words(content.split())
        notes = list(read.notes)
        if read.unknown:
            listed = ", ".join(f"'{w}'" for w in read.unknown)
            one = len(read.unknown) == 1
            notes.append(f"I don't know what {listed} {'is' if one else 'are'}: the text models "
                         f"read English words only, so {'it was' if one else 'they were'} left "
                         f"out of the search.")
        unknown = self.encoder.unknown_words(list(read.words))
        if unknown:
            listed = ", ".join(f"'{w}'" for w in unknown)
            notes.append(f"{listed} match{'es' if len(unknown) == 1 else ''} nothing the "
                         f"`{self.name}` model knows (not a word of its vocabulary, and close "
                         f"to none of the 1,000 ImageNet object names it can look for): the "
                         f"text part of the scores may mean little.")
        return notes

    def __call__(self, image: Image.Image, text: str, *, index: GalleryIndex,
                 weight: float = 0.5, top_k: int = 10, reference_hash: str | None = None
                 ) -> RetrievalResult:
        """Retrieve.

        Args:
            image: reference, RGB ``PIL.Image`` (from :func:`engine.inputs.images.load_image`).
            text: modification text (cleaned here by :func:`engine.inputs.text.clean_text`).
            index: the gallery, indexed with this pipeline's encoder (``index.model == name``).
            weight: share of the explicit (text) match in [0, 1]; 1 - weight goes to the
                implicit similarity with the reference.
            top_k: results returned (1..100, at most the gallery size).
            reference_hash: SHA-256 of the reference file; a gallery file with the same bytes
                (or visual features identical to the reference's) is left out of the results.

        Returns:
            :class:`RetrievalResult`.

        Raises:
            UserInputError: empty text, weight or top_k out of range, empty index.
            ValueError: non-RGB image, or an index built with another model (programming
                errors: the caller picks the pipeline of ``index.model``).
        """
        require_rgb(image, "the reference image")
        if not 1 <= int(top_k) <= MAX_TOP_K:
            raise UserInputError(f"top_k must be in 1..{MAX_TOP_K}, got {top_k}")
        if len(index) == 0:
            raise UserInputError("the gallery is empty: index some images first")
        if index.model != self.name:
            raise ValueError(f"the gallery was indexed with {index.model!r}; this pipeline runs "
                             f"{self.name!r}")
        cleaned = clean_text(text, field="modification text")
        weight = float(weight)
        if not 0.0 <= weight <= 1.0:
            raise UserInputError(f"the weight of the text must be in [0, 1], got {weight}")
        notes = list(cleaned.notes)
        self.encoder.prepare()  # one-off work outside the timed call (first use only)
        t0 = time.perf_counter()
        mod = parse_modification(cleaned.text)
        notes += self._text_notes(mod.content)
        content = " ".join(english_words(mod.content.split()).words)
        small = small_image_note(image, "reference image")
        notes += [small] if small else []
        ref = self.encoder.embed_images([image])
        visual_sim = index.visual @ ref["visual"][0]  # (N, Dv) @ (Dv,) -> (N,)
        semantic = None
        if content:
            query, truncated = self.encoder.embed_text(content)  # (Ds,)
            if truncated:
                notes.append(f"The text is longer than the text encoder's "
                             f"{self.encoder.text_context} tokens; only its beginning was used.")
            semantic = index.semantic @ query  # (N, Ds) @ (Ds,) -> (N,)
        elif not mod.attributes:
            notes.append("The text names nothing to look for (no object and no 'black and "
                         "white' / 'at night' style attribute): ranked by similarity to the "
                         "reference only.")
        mod = replace(mod, content=content)
        score, explicit, implicit = artemis_scores(semantic, index.attributes, mod,
                                                   visual_sim, weight)
        keep = visual_sim < SAME_IMAGE_COSINE
        if reference_hash:
            keep &= np.array([h != reference_hash for h in index.hashes])
        order = [int(i) for i in np.argsort(-score, kind="stable") if keep[i]][:int(top_k)]
        ms = (time.perf_counter() - t0) * 1000.0
        results = [Match(index.path(i), i, float(score[i]), float(explicit[i]),
                         float(implicit[i])) for i in order]
        if not results:
            notes.append("Every gallery image is the reference itself.")
        return RetrievalResult(results, self.name, ms, mod.content, list(mod.phrases), notes)
