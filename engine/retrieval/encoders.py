"""Image and text encoders of composed image retrieval: one interface, an offline and a hub one.

An encoder turns gallery images into the three arrays of a gallery index
(:class:`engine.retrieval.index.GalleryIndex`) and a text into a vector of its semantic space:

* :class:`ConseEncoder` (embedded, offline): ConSE over EfficientNet-Lite0's ImageNet
  probabilities and MiniLM class-name embeddings for ``semantic`` (Norouzi et al., ICLR 2014),
  Lite0's pooled head features for ``visual``, MiniLM for the text.
* :class:`ClipEncoder` (hub): one OpenCLIP image embedding for both ``semantic`` and ``visual``
  and the OpenCLIP text tower for the text (Radford et al., ICML 2021; Cherti et al., CVPR 2023).

Both give ``attributes`` = colour saturation and brightness of a 64-pixel thumbnail
(:func:`engine.retrieval.scoring.image_attributes`). :mod:`engine.factory` picks one when it
builds the pipeline; the index and the pipeline never ask which one they hold.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from PIL import Image

from engine.models.class_text import ClassNameEmbeddings
from engine.models.preprocess import Preprocess
from engine.retrieval.conse import conse_embed
from engine.retrieval.scoring import image_attributes

#: Long side (pixels) of the thumbnail the appearance attributes are measured on.
ATTRIBUTE_SIDE = 64
#: A word the offline text model splits into sub-word pieces ("asdf" -> "as", "##df") is
#: still known if its MiniLM similarity to some ImageNet class name reaches this ("espresso"
#: 1.0, "teapot" 1.0; "asdf" 0.42, "qwerty" 0.48, "hjkl" 0.55, "piñata" 0.53).
KNOWN_WORD_SIMILARITY = 0.6


class RetrievalEncoder(Protocol):
    """What the retrieval index and pipeline need from an encoder.

    Attributes:
        name: registry name of the model (indexes record it; cached indexes are keyed by it).
        text_context: tokens the text encoder reads; longer text is cut there.
    """

    name: str
    text_context: int

    def prepare(self) -> None:
        """Do the one-off work of the first query now (so query timings exclude it)."""

    def embed_images(self, images: list[Image.Image]) -> dict[str, np.ndarray]:
        """N RGB images -> {"semantic": (N, Ds), "visual": (N, Dv), "attributes": (N, 2)}."""

    def embed_text(self, text: str) -> tuple[np.ndarray, bool]:
        """Cleaned text -> ((Ds,) float32 unit vector, whether the text was truncated)."""

    def unknown_words(self, words: list[str]) -> list[str]:
        """The words (lower case) the text encoder has no meaning for (an empty list when it
        cannot tell)."""


def _check_images(images: list[Image.Image]) -> None:
    if not images:
        raise ValueError("no images to encode")


def _attributes(images: list[Image.Image]) -> np.ndarray:
    """(N, 2) float32 saturation and brightness, measured on thumbnails."""
    thumbs = []
    for image in images:
        thumb = image.copy()
        thumb.thumbnail((ATTRIBUTE_SIDE, ATTRIBUTE_SIDE), Image.Resampling.BILINEAR)
        thumbs.append(image_attributes(np.asarray(thumb)))
    return np.stack(thumbs).astype(np.float32)


def _array(x: torch.Tensor) -> np.ndarray:
    """float32 numpy copy with NaN/inf replaced (a degenerate image must not poison scores)."""
    return np.nan_to_num(x.float().numpy()).astype(np.float32)


class ConseEncoder:
    """Offline encoder: EfficientNet-Lite0 + ConSE semantic embeddings + MiniLM text.

    Args:
        backbone: an ImageNet classifier whose forward gives ``.logits`` (N, C) and ``.pooled``
            (N, Dv) (:class:`engine.models.efficientnet.EfficientNetLite0`, Dv = 1280).
        preprocess: the backbone's :class:`~engine.models.preprocess.Preprocess` (images are
            resized whole, no crop).
        text_encoder: sentence encoder with ``encode(list[str])`` giving ``.embeddings``
            (N, Ds) unit vectors and ``.truncated`` (N bools), reading at most
            :data:`engine.models.minilm.MAX_TOKENS` tokens
            (:class:`~engine.models.minilm.MiniLMEncoder`).
        class_text: the backbone's C class names embedded by ``text_encoder`` (shared table).
        name: registry name of the backbone (default "efficientnet_lite0").

    Raises:
        ValueError: ``class_text`` was embedded by another text encoder (the spaces differ).
    """

    def __init__(self, backbone, preprocess: Preprocess, text_encoder,
                 class_text: ClassNameEmbeddings, name: str = "efficientnet_lite0") -> None:
        if class_text.text_encoder is not text_encoder:
            raise ValueError("class_text must be embedded by the same text encoder")
        from engine.models.minilm import MAX_TOKENS
        self.backbone, self.preprocess = backbone, preprocess
        self.text_encoder, self.class_text = text_encoder, class_text
        self.name, self.text_context = name, MAX_TOKENS

    def prepare(self) -> None:
        """Embed the class names now (about 1 s once per process, shared by every user)."""
        self.class_text.table  # noqa: B018  (computed on first access)

    @torch.inference_mode()
    def embed_images(self, images: list[Image.Image]) -> dict[str, np.ndarray]:
        """Encode RGB images into the index's three arrays.

        Args:
            images: N >= 1 RGB PIL images of any size (resized whole to the input size).

        Returns:
            {"semantic": (N, Ds) unit, "visual": (N, 1280) unit, "attributes": (N, 2) in
            [0, 1]} float32 arrays (Ds = the text encoder's size, 384 for MiniLM).
        """
        _check_images(images)
        x = self.preprocess(images, crop=False)  # (N, 3, S, S)
        out = self.backbone(x)
        probs = out.logits.float().softmax(-1)  # (N, C)
        semantic = conse_embed(probs, self.class_text.table)  # (N, Ds)
        visual = torch.nn.functional.normalize(out.pooled.float(), dim=-1, eps=1e-8)  # (N, Dv)
        return {"semantic": _array(semantic), "visual": _array(visual),
                "attributes": _attributes(images)}

    @torch.inference_mode()
    def embed_text(self, text: str) -> tuple[np.ndarray, bool]:
        """Embed cleaned text with the sentence encoder.

        Returns:
            ((Ds,) float32 unit vector, True if the text was cut at :attr:`text_context` tokens).
        """
        out = self.text_encoder.encode([text])
        return _array(out.embeddings[0]), bool(out.truncated[0])

    @torch.no_grad()
    def unknown_words(self, words: list[str]) -> list[str]:
        """Words the offline model has no meaning for: not a whole word of the text encoder's
        vocabulary (it splits them into pieces or reads [UNK]) *and* not within
        :data:`KNOWN_WORD_SIMILARITY` of any ImageNet class name ("asdf", "qwerty").

        Args:
            words: lower-case words (from :func:`engine.inputs.text.words`).

        Returns:
            The unknown ones, in order (empty if the encoder has no tokenizer to ask).
        """
        tokenizer = getattr(self.text_encoder, "tokenizer", None)
        if tokenizer is None or not words:
            return []
        split = [w for w in words if len(pieces := tokenizer.tokenize(w)) != 1
                 or pieces[0] == tokenizer.unk_token]
        if not split:
            return []
        emb = self.text_encoder.encode(split).embeddings.float()  # (U, Ds)
        best = (emb @ self.class_text.table.T).max(dim=1).values  # (U,)
        return [w for w, b in zip(split, best.tolist()) if b < KNOWN_WORD_SIMILARITY]


class ClipEncoder:
    """Hub encoder: OpenCLIP image and text towers in one joint space.

    Args:
        clip: an encoder with ``encode_image((N, 3, S, S)) -> (N, D)`` and
            ``encode_text(list[str]) -> (N, D)`` unit embeddings
            (:class:`engine.models.openclip.OpenClipEncoder`).
        preprocess: the model's :class:`~engine.models.preprocess.Preprocess`.
        name: registry name of the model (default "openclip-vit-b-32").
    """

    def __init__(self, clip, preprocess: Preprocess, name: str = "openclip-vit-b-32") -> None:
        self.clip, self.preprocess, self.name = clip, preprocess, name
        self.text_context = int(getattr(clip.tokenizer, "context_length", 77) or 77)

    def prepare(self) -> None:
        """Nothing to precompute."""

    @torch.inference_mode()
    def embed_images(self, images: list[Image.Image]) -> dict[str, np.ndarray]:
        """Encode RGB images: the CLIP embedding is both ``semantic`` and ``visual``.

        Args:
            images: N >= 1 RGB PIL images of any size (resized whole to the input size).

        Returns:
            {"semantic": (N, D) unit, "visual": (N, D) unit (the same array values),
            "attributes": (N, 2) in [0, 1]} float32 arrays.
        """
        _check_images(images)
        x = self.preprocess(images, crop=False)  # (N, 3, S, S)
        emb = _array(self.clip.encode_image(x))  # (N, D)
        return {"semantic": emb, "visual": emb.copy(), "attributes": _attributes(images)}

    @torch.inference_mode()
    def embed_text(self, text: str) -> tuple[np.ndarray, bool]:
        """Embed cleaned text with the CLIP text tower.

        Returns:
            ((D,) float32 unit vector, False): open_clip's tokenizer cuts text at
            :attr:`text_context` tokens without saying so, so truncation is not reported.
        """
        return _array(self.clip.encode_text([text])[0]), False

    def unknown_words(self, words: list[str]) -> list[str]:
        """Not checked: CLIP's byte-level tokenizer and web-scale vocabulary read any word
        (empty list)."""
        return []
