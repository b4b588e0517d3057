"""Composed image retrieval scoring in the manner of ARTEMIS (Delmas et al., "ARTEMIS:
Attention-based Retrieval with Text-Explicit Matching and Implicit Similarity", ICLR 2022).

ARTEMIS scores a candidate target image as the sum of two parts:

* **explicit match** (EM): does the candidate show what the modification text asks for?
  Here: cosine similarity of the candidate's semantic embedding with the text's embedding,
  plus, when the text names one, a measurable image attribute ("in black and white" -> low
  colour saturation, "at night" -> low brightness; see :data:`ATTRIBUTE_PHRASES`).
* **implicit similarity** (IS): does the candidate keep what the text did not mention?
  Here: cosine similarity of the candidate's visual features with the reference's.

ARTEMIS learns attention over both; this training-free version standardises each part over the
gallery (zero mean, unit variance, so cosine ranges of different spaces become comparable),
clips it to [-3, 3] (:data:`CLIP_SIGMA`: a near-duplicate of the reference, 8-10 standard
deviations above the rest, must not outweigh every text match) and mixes them with a user
weight ``w``: ``score = w * EM + (1 - w) * IS``. The two weighted terms
are reported separately and sum to the score.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from engine.inputs.text import words

#: Standardised parts are clipped to +- this many standard deviations.
CLIP_SIGMA = 3.0

#: Attribute phrases (regular expressions, lower case) -> (attribute column, sign).
#: Columns are those of :func:`image_attributes`: 0 = colour saturation, 1 = brightness.
ATTRIBUTE_PHRASES: dict[str, tuple[int, float]] = {
    r"black[\s-]*(?:and|&|n)[\s-]*white|b\s*&\s*w|gr[ae]y\s*scale|monochrome|colou?rless|"
    r"desaturated|without colou?rs?": (0, -1.0),
    r"(?:in|full|more|vivid|bright)\s+colou?rs?|colou?rful|saturated": (0, +1.0),
    r"at night|night[\s-]*time|by night|in the dark|darker|dark": (1, -1.0),
    r"during the day|day[\s-]*time|by day|in daylight|brighter|sunny|lighter": (1, +1.0),
}
#: Filler words removed before the text is embedded ("the same but with a dog" -> "dog").
_FILLER = re.compile(
    r"\b(?:the same|same|but|instead|of it|make it|change it to|with|without|a|an|the|"
    r"please|photo|picture|image|one|this|that|in|to|and)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Modification:
    """What a modification text asks for.

    Attributes:
        content: words left for the semantic match ("" when the text only names attributes).
        attributes: (column, sign) pairs of attribute phrases found.
        phrases: the attribute phrases as written, for the UI.
    """

    content: str
    attributes: tuple[tuple[int, float], ...] = ()
    phrases: tuple[str, ...] = field(default_factory=tuple)


def parse_modification(text: str) -> Modification:
    """Split a cleaned modification text into content words and attribute requests.

    Args:
        text: non-empty text (from :func:`engine.inputs.text.clean_text`).

    Returns:
        :class:`Modification`. ``content`` is the words (:func:`engine.inputs.text.words`:
        any script, emoji kept, lower case) of the text minus attribute phrases and filler
        words; it may be empty ("the same"), and then only the attributes (if any) and the
        implicit similarity rank the gallery.
    """
    rest, attrs, phrases = text, [], []
    for pattern, attr in ATTRIBUTE_PHRASES.items():
        found = re.search(rf"\b(?:{pattern})\b", rest, flags=re.IGNORECASE)
        if found:
            attrs.append(attr)
            phrases.append(found.group(0))
            rest = re.sub(rf"\b(?:{pattern})\b", " ", rest, flags=re.IGNORECASE)
    content = " ".join(words(_FILLER.sub(" ", rest)))  # Unicode words; emoji kept as typed
    return Modification(content, tuple(attrs), tuple(phrases))


def image_attributes(pixels: np.ndarray) -> np.ndarray:
    """Measurable appearance attributes of one image.

    Args:
        pixels: (H, W, 3) uint8 RGB.

    Returns:
        (2,) float32: [mean HSV saturation in [0, 1], mean Rec. 601 luma in [0, 1]].
    """
    x = pixels.astype(np.float32) / 255.0
    mx, mn = x.max(-1), x.min(-1)
    sat = np.where(mx > 1e-6, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    luma = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.array([sat.mean(), luma.mean()], dtype=np.float32)


def standardize(x: np.ndarray, clip: float = CLIP_SIGMA) -> np.ndarray:
    """(N,) -> (N,) zero mean, unit variance over the gallery, clipped to [-clip, clip]
    (a constant gives zeros)."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    std = x.std()
    z = (x - x.mean()) / std if std > 1e-9 else np.zeros_like(x)
    return z.clip(-clip, clip).astype(np.float32)


def artemis_scores(semantic_match: np.ndarray | None, attributes: np.ndarray,
                   modification: Modification, visual_similarity: np.ndarray,
                   weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score every gallery image for one (reference, text) query.

    Args:
        semantic_match: (N,) cosine of each candidate's semantic embedding with the text, or
            None when the text has no content words.
        attributes: (N, 2) float32 from :func:`image_attributes`.
        modification: the parsed text.
        visual_similarity: (N,) cosine of each candidate's visual features with the reference.
        weight: w in [0, 1], the share of the explicit match.

    Returns:
        (score, explicit, implicit), each (N,) float32, with score = explicit + implicit,
        explicit = w * mean(standardised EM parts), implicit = (1 - w) * standardised IS
        (standardised = :func:`standardize`, clipped to +-:data:`CLIP_SIGMA`).

    Raises:
        ValueError: ``weight`` outside [0, 1].
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the weight of the text must be in [0, 1], got {weight}")
    parts = [] if semantic_match is None else [standardize(semantic_match)]
    for column, sign in modification.attributes:
        parts.append(standardize(sign * attributes[:, column]))
    n = len(visual_similarity)
    em = np.mean(parts, axis=0) if parts else np.zeros(n, dtype=np.float32)
    explicit = (weight * em).astype(np.float32)
    implicit = ((1.0 - weight) * standardize(visual_similarity)).astype(np.float32)
    return explicit + implicit, explicit, implicit
