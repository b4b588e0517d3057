"""Composed image retrieval: a reference image plus a modification text ("the same but with a
dog", "in black and white", "at night") ranks the images of an indexed gallery.

Embedded mode (offline): the gallery's ConSE semantic embeddings (ImageNet probabilities of
EfficientNet-Lite0 weighting MiniLM embeddings of the class names; Norouzi et al., ICLR 2014)
are matched with the MiniLM embedding of the text's content words; the text's appearance words
are matched with measured colour saturation / brightness; the reference's pooled visual
features give the implicit similarity. The two parts are standardised over the gallery and
mixed with a weight, ARTEMIS-style (Delmas et al., ICLR 2022; see :mod:`engine.retrieval.scoring`).
Hub mode: OpenCLIP image and text embeddings in both parts (Radford et al., 2021).

The gallery is encoded once (:mod:`engine.retrieval.index`); a query encodes only the
reference image and the text, then scores all N images with two matrix-vector products.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from engine.retrieval.scoring import artemis_scores, parse_modification
from engine.retrieval.conse import class_name_embeddings
from engine.retrieval.index import (EMBEDDED_RETRIEVER, GalleryIndex, embed_images,
                                            embed_text, retrieval_models)
from engine.models import load_model as get_model
from engine.inputs.text import clean_text

#: Largest number of results returned.
MAX_TOP_K = 100
#: Gallery rows this close (cosine of visual features) to the reference count as the reference.
SAME_IMAGE_COSINE = 0.9995


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


def image_digest(path: str) -> str:
    """SHA-256 of a file's bytes (how a reference found in the gallery is recognised)."""
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


class RetrievalPipeline:
    """Rank an indexed gallery for a (reference image, modification text) query.

    Usage::

        index, _ = index_folder("assets/galleries/default")
        result = RetrievalPipeline()(image, "in black and white", index=index, weight=0.5)
    """

    def __call__(self, image: Image.Image, text: str, *, index: GalleryIndex,
                 weight: float = 0.5, top_k: int = 10, reference_hash: str | None = None
                 ) -> RetrievalResult:
        """Retrieve.

        Args:
            image: reference, RGB ``PIL.Image`` (from :func:`engine.inputs.images.load_image`).
            text: modification text (cleaned here by :func:`engine.inputs.text.clean_text`).
            index: the gallery, indexed with the model to use (``index.model``).
            weight: share of the explicit (text) match in [0, 1]; 1 - weight goes to the
                implicit similarity with the reference.
            top_k: results returned (1..100, at most the gallery size).
            reference_hash: SHA-256 of the reference file; a gallery file with the same bytes
                (or visual features identical to the reference's) is left out of the results.

        Returns:
            :class:`RetrievalResult`.

        Raises:
            ValueError: non-RGB image, empty text, weight or top_k out of range, empty index.
        """
        if not isinstance(image, Image.Image) or image.mode != "RGB":
            raise ValueError("image must be an RGB PIL image (use engine.inputs.images.load_image)")
        if not 1 <= int(top_k) <= MAX_TOP_K:
            raise ValueError(f"top_k must be in 1..{MAX_TOP_K}, got {top_k}")
        if len(index) == 0:
            raise ValueError("the gallery is empty: index some images first")
        if index.model not in retrieval_models():
            raise ValueError(f"the gallery was indexed with unknown model {index.model!r}")
        cleaned = clean_text(text, field="modification text")
        notes = list(cleaned.notes)
        backbone = get_model(index.model)
        if index.model == EMBEDDED_RETRIEVER:  # load outside the timed call (first use only)
            class_name_embeddings(get_model("minilm"), backbone.class_names)
        t0 = time.perf_counter()
        mod = parse_modification(cleaned.text)
        ref = embed_images([image], index.model)
        visual_sim = index.visual @ ref["visual"][0]  # (N,)
        semantic = None
        if mod.content:
            semantic = index.semantic @ embed_text(mod.content, index.model, notes)  # (N,)
        elif not mod.attributes:
            notes.append("The text names nothing to look for (no object and no 'black and "
                         "white' / 'at night' style attribute): ranked by similarity to the "
                         "reference only.")
        score, explicit, implicit = artemis_scores(semantic, index.attributes, mod,
                                                   visual_sim, float(weight))
        keep = visual_sim < SAME_IMAGE_COSINE
        if reference_hash:
            keep &= np.array([h != reference_hash for h in index.hashes])
        order = [int(i) for i in np.argsort(-score, kind="stable") if keep[i]][:int(top_k)]
        ms = (time.perf_counter() - t0) * 1000.0
        results = [Match(index.path(i), i, float(score[i]), float(explicit[i]),
                         float(implicit[i])) for i in order]
        if not results:
            notes.append("Every gallery image is the reference itself.")
        return RetrievalResult(results, index.model, ms, mod.content, list(mod.phrases), notes)
