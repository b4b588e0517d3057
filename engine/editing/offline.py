"""The offline editor: instruction -> region -> one pixel operation, no generative model.

*What* comes from the rule-based parser (:mod:`engine.editing.instruction`); *where* is the
user's painted mask if given, else the region the text names (:class:`engine.editing.localize.
Localiser`: MiniLM matches the words to ImageNet classes, a class activation map finds them,
SLIC superpixels refine the outline; "the background" is the complement of the main object);
*how* is one operation of :mod:`engine.editing.operations` (recolour keeping shading, remove by
inpainting, grayscale, blur, brightness, sepia). Text it cannot carry out is refused with what
it can do.
"""
from __future__ import annotations

import re

import numpy as np
from PIL import Image

from engine.editing import operations as edit_ops
from engine.editing.editor import EditOutput, Progress
from engine.editing.instruction import (BACKGROUND, PAINTED_REGION, WHOLE_IMAGE, Command,
                                        parse_instruction)
from engine.editing.localize import Localiser
from engine.errors import UserInputError
from engine.inputs.text import english_words, words

#: Pixels a *found* object's region is grown by for a removal, so its edge goes too (a painted
#: mask is used as painted).
REMOVE_GROW = 4
#: Below this summed class probability the found region is flagged as a guess.
CONFIDENT_PROBABILITY = 0.02
_NOTHING = re.compile(r"^(?:an? )?(?:nothing|empty|blank|clear|background|plain background)"
                      r"(?: \w+)?$")


class OfflineEditor:
    """Edit by instruction, or by caption + painted mask, with pixel operations.

    Args:
        localiser: finds the region an instruction's object words name.
        name: the model name results report (the localiser's backbone).
    """

    def __init__(self, localiser: Localiser, name: str = "efficientnet_lite0") -> None:
        self.localiser, self.name = localiser, name

    @staticmethod
    def parse(text: str, mask: np.ndarray | None) -> Command:
        """The command ``text`` asks for; with a painted ``mask``, "nothing" means remove.

        Raises:
            UserInputError: an operation the offline editor cannot do (says what it can).
        """
        if mask is not None and _NOTHING.match(text.lower().strip(" .!")):
            return Command("remove", PAINTED_REGION)
        try:
            return parse_instruction(text)
        except UserInputError as exc:
            if mask is None:
                raise
            raise UserInputError(f"{exc} With a painted region the offline editor can also "
                                 "fill it from its surroundings (caption \"nothing\"). It cannot "
                                 "draw new objects; that needs the hub model sd-inpainting."
                                 ) from None

    def region(self, image: Image.Image, command: Command, notes: list[str]) -> np.ndarray:
        """(H, W) bool region of ``command.target``; appends what was matched to ``notes``.

        Raises:
            UserInputError: the target has a word the editor cannot read (another script than
                English's), matches no class, is not in the image or cannot be found.
        """
        W, H = image.size
        if command.target == WHOLE_IMAGE:
            return np.ones((H, W), bool)
        if command.target == BACKGROUND:
            loc = self.localiser(image, None)
            notes.append(f"Background = everything but the main object ({loc.classes[0]}).")
            return ~loc.mask
        read: list[str] = []
        phrase = self.object_phrase(command.target, read)
        try:
            loc = self.localiser(image, phrase)
        except UserInputError as exc:  # say how an emoji was read, then why it was refused
            raise UserInputError(" ".join(read + [str(exc)])) from None
        notes.extend(read)
        notes.append(f"\"{phrase}\" matched ImageNet classes {', '.join(loc.classes[:3])}"
                     f" (similarity {loc.similarity:.2f}; image probability "
                     f"{loc.probability:.2f}).")
        if loc.probability < CONFIDENT_PROBABILITY:
            notes.append("The classifier is not confident this object is in the image; the "
                         "region is a guess. Paint a mask for a precise edit.")
        return loc.mask

    @staticmethod
    def object_phrase(target: str, notes: list[str]) -> str:
        """The English words the localiser matches for ``target``; emoji read by their Unicode
        names ("🐈" -> "cat", said in ``notes``).

        Raises:
            UserInputError: a word in another script ("猫"): the embedded models know English
                object names only, so nothing is edited rather than guessing.
        """
        read = english_words(words(target))
        if read.unknown:
            raise UserInputError(
                f"I don't know what '{read.unknown[0]}' is: the offline editor knows English "
                f"object names (ImageNet's 1,000 classes), so nothing was edited. Paint a mask "
                f"over it in 'Caption + mask' mode instead, or name it in English.")
        notes.extend(read.notes)
        return " ".join(read.words)

    @staticmethod
    def apply(arr: np.ndarray, command: Command, region: np.ndarray, grow: bool,
              seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Run ``command``'s operation on (H, W, 3) uint8 ``arr``.

        Args:
            arr: (H, W, 3) uint8 image.
            command: the parsed command.
            region: (H, W) bool where it applies.
            grow: grow the region of a removal by :data:`REMOVE_GROW` (a found object, whose
                edge should go too), not a painted one.
            seed: seed of a removal's grain.

        Returns:
            (edited (H, W, 3) uint8, region (H, W) bool actually allowed to change).
        """
        op = command.operation
        if op == "remove":
            region = edit_ops.grow(region, REMOVE_GROW) if grow else region
            return edit_ops.remove(arr, region, seed=seed), region
        edited = {"recolour": lambda: edit_ops.recolour(arr, command.colour or "red"),
                  "grayscale": lambda: edit_ops.grayscale(arr),
                  "sepia": lambda: edit_ops.sepia(arr),
                  "blur": lambda: edit_ops.blur(arr),
                  "brighten": lambda: edit_ops.brightness(arr, edit_ops.BRIGHTER),
                  "darken": lambda: edit_ops.brightness(arr, edit_ops.DARKER)}[op]()
        return edited, region

    def edit(self, image: Image.Image, text: str, mask: np.ndarray | None, *, seed: int = 0,
             steps: int = 20, guidance_scale: float = 7.5, image_guidance_scale: float = 1.5,
             progress: Progress | None = None) -> EditOutput:
        """Edit as :meth:`engine.editing.editor.Editor.edit` describes.

        ``seed`` only seeds a removal's grain (every other operation has no randomness);
        ``steps``, the guidance scales and ``progress`` belong to the diffusion editors and
        have no effect here (the offline editor does not sample).

        Raises:
            UserInputError: text it cannot carry out, a target it cannot find, a removal that
                covers the whole image.
        """
        command = self.parse(text, mask)
        notes: list[str] = []
        arr = np.asarray(image, np.uint8)
        region = mask if mask is not None else self.region(image, command, notes)
        edited, region = self.apply(arr, command, region, grow=mask is None, seed=seed)
        target = PAINTED_REGION if mask is not None else command.target
        return EditOutput(edited, region, command.operation, target, notes)
