"""Caption an image: object tags first, then a sentence, from a tagger and an optional captioner.

Offline (no captioner): EfficientNet-Lite0's grouped ImageNet tags and the top tag's class
activation map (:mod:`engine.captioning.tagger`); the caption is the sentence written from the
tags (:mod:`engine.captioning.sentence`). With a hub captioner (BLIP,
:mod:`engine.captioning.captioners`): the captioner writes the caption (beam search or nucleus
sampling); the tags, their sentence and the CAM are still given.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
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
        model: the name of the model that wrote the caption (the pipeline's ``name``).
        ms: wall milliseconds of the model calls (of a batch: its share of the batch).
        tag_caption: the sentence built from tags (also given with a hub captioner).
        image: the input image (RGB).
        cam: (h, w) float32 >= 0, the top tag's class activation map on the stride-32 grid.
        heatmap: RGB image, the input with the top tag's CAM overlaid (same size as the
            input); drawn on first access (the command line never draws it).
        notes: remarks for the user (an image too small to mean anything).
        device: where the caption was written ("cpu float32", "cuda:0 float16").
    """

    caption: str
    tags: list[Tag]
    model: str
    ms: float
    tag_caption: str
    image: Image.Image = field(repr=False)
    cam: np.ndarray = field(repr=False)
    notes: list[str] = field(default_factory=list)
    device: str = "cpu float32"

    @cached_property
    def heatmap(self) -> Image.Image:
        return overlay_heatmap(self.image, self.cam)

    def to_json(self) -> dict:
        """The result as JSON-ready dict (tags as [name, probability] pairs, no image)."""
        return {"caption": self.caption, "tags": [[t.name, round(t.probability, 4)]
                                                  for t in self.tags],
                "tag_caption": self.tag_caption, "model": self.model, "ms": round(self.ms, 1),
                "device": self.device, "notes": list(self.notes)}


class CaptionPipeline:
    """Caption one image (call it) or many (:meth:`batch`).

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

    def warm_up(self) -> None:
        """Caption a small blank image once: loads whatever the first call would load (the
        runtime session, the class-name table) and discards the result."""
        self.batch([Image.new("RGB", (64, 64), (128, 128, 128))], top_k=1)

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """The tagger's network input for ``image`` (see :meth:`batch`'s ``inputs``)."""
        return self.tagger.prepare(image)

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
        return self.batch([image], top_k=top_k, decoding=decoding, seed=seed)[0]

    def batch(self, images: Sequence[Image.Image], *, top_k: int = 5, decoding: str = "beam",
              seed: int = 0, inputs: Sequence[torch.Tensor] | None = None
              ) -> list[CaptionResult]:
        """Caption many images; each result equals ``self(image)``'s (within float rounding).

        The tagger runs images of equal input size as one batch; a hub captioner writes one
        caption per image (so a seed means the same as for one image).

        Args:
            images: RGB ``PIL.Image`` s.
            top_k, decoding, seed: as for one image.
            inputs: the tagger's prepared inputs (``tagger.prepare(image)``), if computed
                already (e.g. by decoding workers), in ``images`` order.

        Returns:
            One :class:`CaptionResult` per image, in order; ``ms`` is each one's share of the
            batch's wall time.

        Raises:
            UserInputError: unknown decoding, top_k outside 1..20.
            ValueError: an image is not an RGB PIL image (a programming error).
        """
        for image in images:
            require_rgb(image)
        check_decoding(decoding)
        t0 = time.perf_counter()
        tagged = self.tagger.tags_and_cams(images, top_k, inputs)
        tag_captions = [sentence_from_tags(tags) for tags, _ in tagged]
        captions = tag_captions
        if self.captioner is not None:
            captions = [self.captioner.caption([image], decoding=decoding, seed=seed)[0]
                        for image in images]
        ms = (time.perf_counter() - t0) * 1000.0 / max(1, len(images))
        device = "cpu float32" if self.captioner is None else self.captioner.device
        return [CaptionResult(caption, tags, self.name, ms, tag_caption, image, cam,
                              [note] if (note := small_image_note(image)) else [], device)
                for caption, tag_caption, (tags, cam), image
                in zip(captions, tag_captions, tagged, images)]
