"""Region namers: what a changed region holds, before and after, and how its sentence reads.

Two components with one interface, chosen when the pipeline is built:

* :class:`ImageNetNamer` (offline): the backbone's ImageNet class of each crop, written into a
  template ("The espresso moved from the top left to the top right.", "The moving van at the
  bottom moved to the right."), in the style of
  CLEVR-Change (Park et al., "Robust Change Captioning", ICCV 2019).
* :class:`CaptionNamer` (hub): a captioner's (BLIP's) caption of each crop, quoted
  ('Something appeared at the top left: "a red flower in a vase".').

Places come from :mod:`engine.change.describe`: ``where`` is a place with its preposition
("at the top left", "in the centre"), ``source`` / ``target`` are bare places ("the centre").
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from PIL import Image

from engine.captioning.captioners import HubCaptioner
from engine.captioning.sentence import article
from engine.change.features import CropFeatures


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


class RegionNamer(ABC):
    """Names region crops and phrases one sentence per change type."""

    @abstractmethod
    def names(self, crops: list[Image.Image], features: CropFeatures) -> list[str]:
        """What each crop shows.

        Args:
            crops: N RGB region crops.
            features: the backbone's view of the same crops (one pass, shared).

        Returns:
            N short descriptions.
        """

    @abstractmethod
    def added(self, after: str, where: str) -> str:
        """Sentence for an object that appeared ``where`` (``after``: what is there now)."""

    @abstractmethod
    def removed(self, before: str, where: str) -> str:
        """Sentence for an object that disappeared from ``where``."""

    @abstractmethod
    def replaced(self, before: str, after: str, where: str) -> str:
        """Sentence for ``before`` replaced by ``after`` ``where``."""

    @abstractmethod
    def moved(self, before: str, source: str, target: str) -> str:
        """Sentence for ``before`` moved from place ``source`` to place ``target``."""

    @abstractmethod
    def recoloured(self, before: str, where: str, colours: str) -> str:
        """Sentence for ``before`` ``where`` changing colour (``colours``: "from red to
        blue" or "(now blue)")."""

    @abstractmethod
    def shifted(self, before: str, where: str, direction: str) -> str:
        """Sentence for ``before`` moving a little within one place ``where`` (with its
        preposition), ``direction`` as "to the right", "up and to the left", ..."""


class ImageNetNamer(RegionNamer):
    """Names crops with the backbone's top ImageNet class; template sentences.

    Args:
        class_names: the 1,000 class names in logit order.
    """

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = class_names

    def names(self, crops: list[Image.Image], features: CropFeatures) -> list[str]:
        return [self.class_names[i] for i in features.logits.argmax(-1).tolist()]

    def added(self, after: str, where: str) -> str:
        return f"{_capitalised(article(after))} {after} appeared {where}."

    def removed(self, before: str, where: str) -> str:
        return f"The {before} {where} disappeared."

    def replaced(self, before: str, after: str, where: str) -> str:
        return f"The {before} {where} was replaced by {article(after)} {after}."

    def moved(self, before: str, source: str, target: str) -> str:
        return f"The {before} moved from {source} to {target}."

    def recoloured(self, before: str, where: str, colours: str) -> str:
        return f"The {before} {where} changed colour {colours}."

    def shifted(self, before: str, where: str, direction: str) -> str:
        return f"The {before} {where} moved {direction}."


class CaptionNamer(RegionNamer):
    """Names crops with a captioner's beam-search caption; the captions are quoted.

    Args:
        captioner: e.g. a :class:`~engine.captioning.captioners.HubCaptioner` on BLIP.
    """

    def __init__(self, captioner: HubCaptioner) -> None:
        self.captioner = captioner

    def names(self, crops: list[Image.Image], features: CropFeatures) -> list[str]:
        return self.captioner.caption(crops, decoding="beam")

    def added(self, after: str, where: str) -> str:
        return f"Something appeared {where}: \"{after}\"."

    def removed(self, before: str, where: str) -> str:
        return f"Something disappeared {where}: \"{before}\"."

    def replaced(self, before: str, after: str, where: str) -> str:
        return f"{_capitalised(where)}, \"{before}\" was replaced by \"{after}\"."

    def moved(self, before: str, source: str, target: str) -> str:
        return f"Moved from {source} to {target}: \"{before}\"."

    def recoloured(self, before: str, where: str, colours: str) -> str:
        return f"\"{before}\" {where} changed colour {colours}."

    def shifted(self, before: str, where: str, direction: str) -> str:
        return f"Moved {direction} {where}: \"{before}\"."
