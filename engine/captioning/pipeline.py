"""Caption an image: object tags first, then a sentence, from a tagger and an optional captioner.

Offline (no captioner): EfficientNet-Lite0's grouped ImageNet tags and the top tag's class
activation map (:mod:`engine.captioning.tagger`); the caption is the sentence written from the
tags (:mod:`engine.captioning.sentence`). With a hub captioner (BLIP,
:mod:`engine.captioning.captioners`): the captioner writes the caption (beam search or nucleus
sampling); the tags, their sentence and the CAM are still given.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from PIL import Image

from engine.captioning.captioners import HubCaptioner, check_decoding
from engine.captioning.sentence import Tag, sentence_from_tags
from engine.captioning.tagger import ImageNetTagger
from engine.viz import overlay_heatmap
from engine.inputs.images import require_rgb, small_image_note


@dataclass
class CaptionResult:
    """Result of :class:`CaptionPipeline`.

    Attributes:
        caption: the sentence (the captioner's with a hub captioner, the tag sentence otherwise).
        tags: object tags, most probable first.
        heatmap: RGB image, the input with the top tag's CAM overlaid (same size as the input).
        model: the name of the model that wrote the caption (the pipeline's ``name``).
        ms: wall milliseconds of the model calls.
        tag_caption: the sentence built from tags (also given with a hub captioner).
        notes: remarks for the user (an image too small to mean anything).
    """

    caption: str
    tags: list[Tag]
    heatmap: Image.Image
    model: str
    ms: float
    tag_caption: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The result as JSON-ready dict (tags as [name, probability] pairs, no image)."""
        return {"caption": self.caption, "tags": [[t.name, round(t.probability, 4)]
                                                  for t in self.tags],
                "tag_caption": self.tag_caption, "model": self.model, "ms": round(self.ms, 1),
                "notes": list(self.notes)}


class CaptionPipeline:
    """Caption one image.

    Args:
        tagger: gives the tags and the CAM (:class:`ImageNetTagger`).
        captioner: writes the caption (:class:`HubCaptioner`); None: the tag sentence is the
            caption (offline).
        name: the model name reported in results ("efficientnet_lite0", "blip-base", ...).

    Usage::

        pipe = engine.factory.get_pipeline("caption", "blip-base")
        result = pipe(image, decoding="nucleus", seed=3)
    """

    def __init__(self, tagger: ImageNetTagger, captioner: HubCaptioner | None = None, *,
                 name: str) -> None:
        self.tagger, self.captioner, self.name = tagger, captioner, name

    def __call__(self, image: Image.Image, *, top_k: int = 5, decoding: str = "beam",
                 seed: int = 0) -> CaptionResult:
        """Caption ``image``.

        Args:
            image: RGB ``PIL.Image`` (from :func:`engine.inputs.images.load_image`).
            top_k: tag groups to return (1..20).
            decoding: "beam" or "nucleus" (used by a hub captioner; checked always).
            seed: seed of nucleus sampling.

        Returns:
            :class:`CaptionResult`.

        Raises:
            UserInputError: unknown decoding, top_k outside 1..20.
            ValueError: ``image`` is not an RGB PIL image (a programming error).
        """
        require_rgb(image)
        check_decoding(decoding)
        t0 = time.perf_counter()
        tags, cam = self.tagger.tags_and_cam(image, top_k)
        tag_caption = sentence_from_tags(tags)
        caption = tag_caption
        if self.captioner is not None:
            caption = self.captioner.caption([image], decoding=decoding, seed=seed)[0]
        ms = (time.perf_counter() - t0) * 1000.0
        small = small_image_note(image)
        return CaptionResult(caption, tags, overlay_heatmap(image, cam), self.name, ms,
                             tag_caption, [small] if small else [])
