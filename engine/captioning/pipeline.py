"""Caption an image: object tags first, then a sentence built from them (VIVO / Oscar idea:
tags name the objects, including ones a caption corpus never paired with text).

Embedded mode (offline): EfficientNet-Lite0 gives ImageNet tags and a class activation map (CAM,
Zhou et al., CVPR 2016); near-synonymous tags ("tabby cat", "tiger cat") are grouped with MiniLM
similarity or a shared head noun, and their probabilities summed; the sentence names the leading object and, when a
second object is confidently elsewhere in the image, where it is relative to the first.
Hub mode: BLIP writes the caption (beam search or nucleus sampling); the tags and the CAM stay.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from engine.models import load_model as get_model, get_spec, list_models
from engine.viz import overlay_heatmap

EMBEDDED_CAPTIONER = "efficientnet_lite0"
#: Cosine similarity (MiniLM) above which two tag names count as the same kind of object.
SYNONYM_SIMILARITY = 0.6
_lock = threading.Lock()


@dataclass
class Tag:
    """An object tag: a group of near-synonymous ImageNet classes.

    Attributes:
        name: the group's most probable class name.
        probability: summed softmax probability of the group's classes, in [0, 1].
        members: class names in the group, most probable first.
        center: (x, y) of the CAM peak, as fractions of width and height in [0, 1].
    """

    name: str
    probability: float
    members: list[str]
    center: tuple[float, float]


@dataclass
class CaptionResult:
    """Result of :class:`CaptionPipeline`.

    Attributes:
        caption: the sentence (BLIP's in hub mode, the tag sentence otherwise).
        tags: object tags, most probable first.
        heatmap: RGB image, the input with the top tag's CAM overlaid.
        model: the captioning model used.
        ms: wall milliseconds of the model calls.
        tag_caption: the sentence built from tags (also given in hub mode).
        notes: remarks for the user.
    """

    caption: str
    tags: list[Tag]
    heatmap: Image.Image
    model: str
    ms: float
    tag_caption: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"caption": self.caption, "tags": [[t.name, round(t.probability, 4)]
                                                  for t in self.tags],
                "tag_caption": self.tag_caption, "model": self.model, "ms": round(self.ms, 1)}


def caption_models() -> list[str]:
    """Models the caption pipeline accepts: the embedded tagger first, then hub captioners."""
    return [EMBEDDED_CAPTIONER] + list_models(task="caption")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _relation(a: tuple[float, float], b: tuple[float, float]) -> str:
    """Where b is relative to a, in words."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    if abs(dx) >= abs(dy):
        return "to the right of" if dx > 0 else "to the left of"
    return "below" if dy > 0 else "above"


def sentence_from_tags(tags: list[Tag], min_second: float = 0.1,
                       min_distance: float = 0.3) -> str:
    """Write one sentence from tags.

    Args:
        tags: object tags, most probable first (at least one).
        min_second: probability a second object needs to be mentioned.
        min_distance: CAM peaks closer than this (fraction of the image) are one object.

    Returns:
        A sentence such as "a photo of a tabby cat." or "a photo of a laptop to the left of a
        coffee mug."; hedged ("what looks like", "might show") when the top tag is uncertain.
    """
    if not tags:
        raise ValueError("no tags to write a sentence from")
    first = tags[0]
    if first.probability >= 0.5:
        head = f"a photo of {_article(first.name)} {first.name}"
    elif first.probability >= 0.2:
        head = f"a photo of what looks like {_article(first.name)} {first.name}"
    else:
        head = f"a photo that might show {_article(first.name)} {first.name}"
    for other in tags[1:]:
        dist = float(np.hypot(other.center[0] - first.center[0],
                              other.center[1] - first.center[1]))
        if other.probability >= min_second and dist >= min_distance:
            return (f"{head} {_relation(other.center, first.center)} "
                    f"{_article(other.name)} {other.name}.")
    return head + "."


class CaptionPipeline:
    """Caption one image.

    Usage::

        result = CaptionPipeline()(image)              # embedded, offline
        result = CaptionPipeline()(image, model="blip-base", decoding="nucleus", seed=3)
    """

    def tags_and_cam(self, image: Image.Image, top_k: int = 5
                     ) -> tuple[list[Tag], np.ndarray]:
        """ImageNet tags (grouped) and the top group's CAM.

        Args:
            image: RGB image.
            top_k: number of tag groups returned (1..20).

        Returns:
            (tags, cam) with cam an (h, w) float32 array >= 0 at stride 32.
        """
        if not 1 <= top_k <= 20:
            raise ValueError(f"top_k must be in 1..20, got {top_k}")
        backbone = get_model(EMBEDDED_CAPTIONER)
        x = get_spec(EMBEDDED_CAPTIONER).preprocess.whole_image(image)
        with torch.no_grad():
            out = backbone(x)
            probs = out.logits.float().softmax(-1)[0]  # (1000,)
            top_p, top_i = probs.topk(max(10, 2 * top_k))
            # CAM of each candidate class: (K, h, w)
            cams = torch.einsum("kc,chw->khw", backbone.classifier_weight[top_i],
                                out.head_map[0]).clamp(min=0)
        names = [backbone.class_names[i] for i in top_i.tolist()]
        text = get_model("minilm")
        sim = (lambda e: e @ e.T)(text.encode(names).embeddings)  # (K, K)
        groups: list[list[int]] = []
        for k in range(len(names)):
            for g in groups:
                same_noun = names[k].split()[-1].lower() == names[g[0]].split()[-1].lower()
                if same_noun or float(sim[k, g[0]]) >= SYNONYM_SIMILARITY:
                    g.append(k)
                    break
            else:
                groups.append([k])
        h, w = cams.shape[1:]
        tags = []
        for g in groups:
            cam = sum(cams[k] * top_p[k] for k in g)
            peak = int(torch.argmax(cam))
            tags.append(Tag(names[g[0]], float(top_p[g].sum()), [names[k] for k in g],
                            ((peak % w + 0.5) / w, (peak // w + 0.5) / h)))
        tags.sort(key=lambda t: -t.probability)
        best = next(g for g in groups if names[g[0]] == tags[0].name)
        cam = sum(cams[k] * top_p[k] for k in best).numpy()
        return tags[:top_k], np.nan_to_num(cam.astype(np.float32))

    def __call__(self, image: Image.Image, *, model: str = EMBEDDED_CAPTIONER, top_k: int = 5,
                 decoding: str = "beam", seed: int = 0) -> CaptionResult:
        """Caption ``image``.

        Args:
            image: RGB ``PIL.Image`` (from :func:`engine.inputs.images.load_image`).
            model: one of :func:`caption_models`.
            top_k: tag groups to return (1..20).
            decoding: hub captioners only: "beam" or "nucleus".
            seed: seed of nucleus sampling.

        Returns:
            :class:`CaptionResult`.

        Raises:
            ValueError: unknown model or decoding, bad top_k, non-RGB image.
            engine.models._hub.HubUnavailableError: a hub model while the hub is unreachable.
        """
        import time
        if model not in caption_models():
            raise ValueError(f"unknown caption model {model!r}; valid: {', '.join(caption_models())}")
        if not isinstance(image, Image.Image) or image.mode != "RGB":
            raise ValueError("image must be an RGB PIL image (use engine.inputs.images.load_image)")
        if decoding not in ("beam", "nucleus"):
            raise ValueError(f"decoding must be 'beam' or 'nucleus', got {decoding!r}")
        for name in (EMBEDDED_CAPTIONER, "minilm") + ((model,) if model != EMBEDDED_CAPTIONER
                                                     else ()):
            get_model(name)  # load outside the timed call (first use only)
        t0 = time.perf_counter()
        tags, cam = self.tags_and_cam(image, top_k)
        tag_caption = sentence_from_tags(tags)
        caption = tag_caption
        if model != EMBEDDED_CAPTIONER:
            from engine.models.blip import preprocess_for_blip
            captioner = get_model(model)
            pixels = preprocess_for_blip([image], get_spec(model).preprocess)
            with _lock:
                caption = captioner.generate(pixels, decoding=decoding, seed=seed)[0]
        ms = (time.perf_counter() - t0) * 1000.0
        heatmap = overlay_heatmap(image, cam)
        return CaptionResult(caption, tags, heatmap, model, ms, tag_caption)
