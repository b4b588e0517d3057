"""ImageNet tags of a photo, grouped into objects, and the class activation map of the top one.

EfficientNet-Lite0's 1,000 ImageNet classes are the vocabulary. Near-synonymous candidates
("tabby cat", "tiger cat") are grouped when they share a head noun or their MiniLM embeddings
are similar, and their probabilities summed. Each group's class activation map (CAM, Zhou et
al., "Learning Deep Features for Discriminative Localization", CVPR 2016) is the
probability-weighted sum of its classes' CAMs; its peak places the object.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from engine.captioning.sentence import Tag
from engine.errors import UserInputError

if TYPE_CHECKING:
    from engine.models.class_text import ClassNameEmbeddings
    from engine.models.efficientnet import EfficientNetLite0
    from engine.models.minilm import MiniLMEncoder
    from engine.models.preprocess import Preprocess

#: Cosine similarity (MiniLM) above which two tag names count as the same kind of object.
SYNONYM_SIMILARITY = 0.6
#: The number of tag groups a caller may ask for.
TOP_K_RANGE = (1, 20)


class ImageNetTagger:
    """Tags (grouped ImageNet classes) and the top tag's CAM of one image or of many.

    Args:
        backbone: the ImageNet classifier; it must expose ``class_names`` (1,000 names in logit
            order), ``classifier_weight`` (1000, C) and a forward giving ``logits`` (B, 1000)
            and ``head_map`` (B, C, H/32, W/32) (as :class:`EfficientNetLite0` does).
        text_encoder: sentence encoder with ``encode(texts).embeddings`` (N, D) unit vectors
            (as :class:`MiniLMEncoder`), used to group synonyms; None when ``class_text`` is
            given.
        preprocess: the backbone's preprocessing (whole image, aspect ratio kept).
        class_text: the backbone's class names already embedded by that encoder
            (:class:`~engine.models.class_text.ClassNameEmbeddings`, shipped precomputed): the
            rows of the candidate classes are looked up instead of encoding their names per
            image (same vectors within float rounding; no text model is run or loaded).

    Raises:
        ValueError: neither ``text_encoder`` nor ``class_text``.
    """

    def __init__(self, backbone: EfficientNetLite0, text_encoder: MiniLMEncoder | None,
                 preprocess: Preprocess, *, class_text: ClassNameEmbeddings | None = None
                 ) -> None:
        if text_encoder is None and class_text is None:
            raise ValueError("the tagger needs a text encoder or embedded class names")
        self.backbone, self.text_encoder, self.preprocess = backbone, text_encoder, preprocess
        self.class_text = class_text

    def _group(self, names: list[str], classes: list[int] | None = None) -> list[list[int]]:
        """Indices of ``names`` grouped greedily: a name joins the first group whose leader
        shares its last word or is similar (>= :data:`SYNONYM_SIMILARITY`) in meaning.
        ``classes``: the names' class indices (their rows of ``class_text``)."""
        if self.class_text is not None and classes is not None:
            emb = self.class_text.table[classes]  # (K, D) unit vectors
        else:
            emb = self.text_encoder.encode(names).embeddings  # (K, D) unit vectors
        sim = emb @ emb.T  # (K, K) cosine similarity
        groups: list[list[int]] = []
        for k in range(len(names)):
            for g in groups:
                same_noun = names[k].split()[-1].lower() == names[g[0]].split()[-1].lower()
                if same_noun or float(sim[k, g[0]]) >= SYNONYM_SIMILARITY:
                    g.append(k)
                    break
            else:
                groups.append([k])
        return groups

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """The backbone's input for ``image``: (1, 3, H, W) float32, aspect ratio kept (what
        decoding workers compute ahead of :meth:`tags_and_cams`)."""
        return self.preprocess.whole_image(image)

    def tags_and_cam(self, image: Image.Image, top_k: int = 5
                     ) -> tuple[list[Tag], np.ndarray]:
        """ImageNet tags (grouped) and the top group's CAM.

        Args:
            image: RGB image.
            top_k: number of tag groups returned (1..20).

        Returns:
            (tags, cam): at most ``top_k`` tags, most probable first, and cam an (h, w) float32
            array >= 0 on the backbone's stride-32 grid (h, w = H/32, W/32 of the resized
            image), unnormalised.

        Raises:
            UserInputError: ``top_k`` outside 1..20.
        """
        return self.tags_and_cams([image], top_k)[0]

    def tags_and_cams(self, images: Sequence[Image.Image], top_k: int = 5,
                      inputs: Sequence[torch.Tensor] | None = None
                      ) -> list[tuple[list[Tag], np.ndarray]]:
        """:meth:`tags_and_cam` of many images, run in batches of equal input size.

        Images whose prepared inputs have the same (H, W) go through the backbone together, so
        each result equals the one-image result (within float rounding).

        Args:
            images: RGB images.
            top_k: number of tag groups per image (1..20).
            inputs: their :meth:`prepare` outputs, if already computed (same order).

        Returns:
            One (tags, cam) per image, in order (see :meth:`tags_and_cam`).

        Raises:
            UserInputError: ``top_k`` outside 1..20.
        """
        lo, hi = TOP_K_RANGE
        if not lo <= top_k <= hi:
            raise UserInputError(f"top_k must be in {lo}..{hi}, got {top_k}")
        xs = list(inputs) if inputs is not None else [self.prepare(im) for im in images]
        if len(xs) != len(images):
            raise ValueError(f"{len(xs)} inputs for {len(images)} images")
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(xs):
            by_shape.setdefault(tuple(x.shape[-2:]), []).append(i)
        results: list = [None] * len(xs)
        for rows in by_shape.values():
            with torch.inference_mode():
                x = xs[rows[0]] if len(rows) == 1 else torch.cat([xs[i] for i in rows])
                out = self.backbone(x)  # (b, ...) one input size
            for j, i in enumerate(rows):
                results[i] = self._tags_of(out.logits[j], out.head_map[j], top_k)
        return results

    def _tags_of(self, logits: torch.Tensor, head_map: torch.Tensor, top_k: int
                 ) -> tuple[list[Tag], np.ndarray]:
        """Tags and CAM from one image's (1000,) logits and (C, h, w) head map."""
        with torch.inference_mode():
            probs = logits.float().softmax(-1)  # (1000,)
            top_p, top_i = probs.topk(max(10, 2 * top_k))  # (K,), K candidate classes
            # CAM of each candidate class: (K, C) x (C, h, w) -> (K, h, w)
            cams = torch.einsum("kc,chw->khw", self.backbone.classifier_weight[top_i],
                                head_map).clamp(min=0)
            classes = top_i.tolist()
            names = [self.backbone.class_names[i] for i in classes]
            groups = self._group(names, classes)
            h, w = cams.shape[1:]
            tags = []
            for g in groups:
                cam = sum(cams[k] * top_p[k] for k in g)  # (h, w)
                peak = int(torch.argmax(cam))  # flat index into (h, w)
                tags.append(Tag(names[g[0]], float(top_p[g].sum()), [names[k] for k in g],
                                ((peak % w + 0.5) / w, (peak // w + 0.5) / h)))
            tags.sort(key=lambda t: -t.probability)
            best = next(g for g in groups if names[g[0]] == tags[0].name)
            cam = sum(cams[k] * top_p[k] for k in best).numpy()
        return tags[:top_k], np.nan_to_num(cam.astype(np.float32))
