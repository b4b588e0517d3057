"""The Retrieve tab's "Scenes" source: a reference scene + a modification text ranks a gallery
of rendered scenes with a learned composer (TIRG or ARTEMIS, :mod:`engine.models.cir`).

The gallery ships as ``assets/retrieval/scene_gallery.npz`` (written by ``python -m engine
export-scene-gallery``): the first bases of the held-out test split (each base scene and its
edits), their frozen EfficientNet-Lite0 features, their scenes as JSON, and the instructions
whose target is in the gallery (what the tab suggests). Images are rendered from the scenes
when shown. For ARTEMIS every shown result also gets its EM and IS maps: the per-cell
contributions of the backbone's 4x4 grid to the two scores
(:meth:`engine.models.cir.CirNet.score_maps`).
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.errors import UserInputError
from engine.inputs.text import clean_text, english_words, words
from engine.models.cir import CirNet, tokenize
from engine.retrieval.scene_triplets import RENDER_SIZE, SUPERSAMPLE, scene_key
from engine.scenes.render import render
from engine.scenes.scene import Scene

#: The shipped gallery.
GALLERY_PATH = Path(__file__).resolve().parents[2] / "assets" / "retrieval" / "scene_gallery.npz"
#: Most results returned.
MAX_TOP_K = 30
#: Characters of modification text read (the instructions are < 100).
MAX_TEXT_CHARS = 300


@dataclass
class SceneGallery:
    """Gallery scenes, their features and the edits known to have a target in it.

    Attributes:
        features: (N, 1280) float32 pooled backbone features.
        scenes: N scene JSON strings.
        refs, targets: (Q,) int64 indices of each known edit's reference and target.
        texts: Q instructions (the drawn wording).
    """

    features: np.ndarray
    scenes: list[str]
    refs: np.ndarray
    targets: np.ndarray
    texts: list[str]

    @classmethod
    def load(cls, path: str | Path = GALLERY_PATH) -> SceneGallery:
        """Read the ``.npz`` written by :func:`export_gallery`.

        Raises:
            FileNotFoundError: no gallery file.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no scene gallery at {path}: run python -m engine "
                                    f"export-scene-gallery")
        with np.load(path) as z:
            return cls(z["features"].astype(np.float32), z["scenes"].tolist(),
                       z["refs"].astype(np.int64), z["targets"].astype(np.int64),
                       z["texts"].tolist())

    def __len__(self) -> int:
        return len(self.scenes)

    def scene(self, i: int) -> Scene:
        return Scene.from_json(self.scenes[i])

    def suggestions(self, ref: int) -> list[str]:
        """Instructions from scene ``ref`` whose target is in the gallery."""
        return [self.texts[q] for q in np.flatnonzero(self.refs == ref)]

    def references(self) -> list[int]:
        """Scenes that are the reference of at least one known edit (the base scenes)."""
        return sorted(set(int(r) for r in self.refs))


def export_gallery(data, n_bases: int, path: str | Path = GALLERY_PATH) -> Path:
    """Write the first ``n_bases`` groups of a :class:`TripletSet` as the shipped gallery
    (features as float16)."""
    groups = list(dict.fromkeys(int(g) for g in data.groups))[:n_bases]
    keep = np.flatnonzero(np.isin(data.groups, groups))
    new = {int(o): i for i, o in enumerate(keep)}
    qs = [q for q in range(len(data.refs)) if int(data.refs[q]) in new]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, features=data.features[keep].astype(np.float16),
                        scenes=np.array([data.scenes[i] for i in keep]),
                        refs=np.array([new[int(data.refs[q])] for q in qs], np.int64),
                        targets=np.array([new[int(data.targets[q])] for q in qs], np.int64),
                        texts=np.array([data.texts[q][0] for q in qs]))
    return path


@dataclass
class SceneMatch:
    """One ranked gallery scene.

    Attributes:
        index: gallery row; score: the composer's score (scaled cosine, higher is better).
        em, is_: ARTEMIS's explicit-matching and implicit-similarity cosines (None for TIRG).
        image: (128, 128, 3) uint8 render; maps: {"em", "is"} (4, 4) float32 per-cell
            contributions (ARTEMIS only); is_target: the scene graph of a known target of
            this query's (reference, text), None when the text is not a known edit.
    """

    index: int
    score: float
    em: float | None
    is_: float | None
    image: np.ndarray
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    is_target: bool | None = None


@dataclass
class SceneResult:
    """A query's ranking: matches, the reference's render (and its IS map), notes, time."""

    matches: list[SceneMatch]
    reference_image: np.ndarray
    reference_map: np.ndarray | None
    model: str
    notes: list[str]
    ms: float


@functools.lru_cache(maxsize=512)
def _render(scene_json: str) -> np.ndarray:
    return render(Scene.from_json(scene_json), RENDER_SIZE, SUPERSAMPLE).image


class SceneRetrievalPipeline:
    """Composed retrieval over the scene gallery with one composer.

    Args:
        composer: a trained :class:`CirNet` (eval mode).
        gallery: the :class:`SceneGallery`.
        backbone: the frozen EfficientNet-Lite0 (for the attention maps' 4x4 grids).
        text_encoder: MiniLM (:class:`engine.models.minilm.MiniLMEncoder`) when the composer
            reads MiniLM embeddings, else None.
        name: the composer's registry name.
    """

    def __init__(self, composer: CirNet, gallery: SceneGallery, backbone,
                 text_encoder=None, name: str = "scene-artemis") -> None:
        self.net, self.gallery, self.backbone = composer, gallery, backbone
        self.text_encoder, self.name = text_encoder, name
        with torch.no_grad():
            self.feats = torch.from_numpy(gallery.features)
            self.cand = composer.embed_images(self.feats)  # (N, dim), computed once
        vocab = set(composer.config.vocab) or {w for t in gallery.texts for w in tokenize(t)}
        self.vocab = vocab

    def _text(self, text: str):
        if self.net.config.text_encoder == "lstm":
            return [text]
        return self.text_encoder.encode([text]).embeddings

    def _grid(self, image: np.ndarray) -> torch.Tensor:
        """(4, 4, 1280) backbone grid of a 128x128 render (mean = the pooled feature)."""
        pre = self.backbone.preprocess
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        x = (x - torch.tensor(pre.mean).view(1, 3, 1, 1)) / torch.tensor(pre.std).view(1, 3, 1, 1)
        with torch.no_grad():
            return self.backbone(x).head_map[0].permute(1, 2, 0)

    def __call__(self, reference: int, text: str, top_k: int = 10,
                 maps: bool = True) -> SceneResult:
        """Rank the gallery for (scene ``reference``, ``text``).

        Args:
            reference: gallery row of the reference scene.
            text: modification text ("make the large cube purple").
            top_k: results (1..:data:`MAX_TOP_K`).
            maps: compute ARTEMIS's EM/IS maps for the shown results.

        Raises:
            UserInputError: no such scene, empty text, a bad ``top_k``.
        """
        t0 = time.perf_counter()
        n = len(self.gallery)
        if not isinstance(reference, (int, np.integer)) or not 0 <= int(reference) < n:
            raise UserInputError(f"Choose a scene between 0 and {n - 1} (got {reference!r}).")
        if not isinstance(top_k, (int, np.integer)) or not 1 <= int(top_k) <= MAX_TOP_K:
            raise UserInputError(f"Results must be between 1 and {MAX_TOP_K} (got {top_k!r}).")
        cleaned = clean_text(text, field="modification text", max_chars=MAX_TEXT_CHARS)
        notes = list(cleaned.notes)
        toks = words(cleaned.text)
        eng = english_words(toks)
        notes += list(eng.notes)
        if eng.unknown:
            notes.append(f"Words in another script were left out (the text model reads "
                         f"English): {' '.join(eng.unknown)}.")
        if not eng.words:
            raise UserInputError("The modification text has no English words to read: try "
                                 "\"make the large cube purple\".")
        unknown = [w for w in tokenize(" ".join(eng.words)) if w not in self.vocab]
        if unknown:
            notes.append(f"Not words of the scene world's instructions (they mean little to "
                         f"the model): {', '.join(dict.fromkeys(unknown))}. It knows shapes "
                         f"(cube, sphere, cylinder), colours, sizes, materials (rubber, metal) "
                         f"and add / remove / make / turn ... into.")
        query_text = " ".join(eng.words)
        ref = int(reference)
        with torch.no_grad():
            q = self.net.query(self.feats[ref:ref + 1], self._text(query_text))
            s, em, is_ = self.net.scores(q, self.cand, parts=True)
        s = s[0].clone()
        s[ref] = -float("inf")  # the reference itself is not an answer
        top = torch.topk(s, int(top_k)).indices.tolist()
        known = [int(self.gallery.targets[k]) for k in np.flatnonzero(self.gallery.refs == ref)
                 if tokenize(self.gallery.texts[k]) == tokenize(query_text)]
        target_keys = {scene_key(self.gallery.scene(t)) for t in known}
        ref_image = _render(self.gallery.scenes[ref])
        ref_grid = self._grid(ref_image) if maps and em is not None else None
        matches, ref_map = [], None
        for i in top:
            image = _render(self.gallery.scenes[i])
            m = SceneMatch(i, float(s[i]), None if em is None else float(em[0, i]),
                           None if is_ is None else float(is_[0, i]), image)
            if ref_grid is not None:
                out = self.net.score_maps(q, 0, self._grid(image),
                                          ref_grid if ref_map is None else None)
                m.maps = {"em": out["em"].numpy(), "is": out["is"].numpy()}
                if ref_map is None:
                    ref_map = out["is_ref"].numpy()
            if target_keys:
                m.is_target = scene_key(self.gallery.scene(i)) in target_keys
            matches.append(m)
        return SceneResult(matches, ref_image, ref_map, self.name, notes,
                           (time.perf_counter() - t0) * 1000)


__all__ = ["GALLERY_PATH", "MAX_TOP_K", "SceneGallery", "SceneMatch", "SceneResult",
           "SceneRetrievalPipeline", "export_gallery"]
