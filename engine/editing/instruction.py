"""Parse an editing instruction ("make the cat red", "remove the cup", "blur the background")
into an operation, its parameter and the words naming the target.

A small rule-based parser (keyword patterns, as the GeNeVA / CoDraw-style command sets are
small and regular); what it cannot parse is refused with the list of what it can do.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from engine.colours import NAMED_COLOURS
from engine.errors import UserInputError
from engine.inputs.text import words as text_words

#: Operations of the embedded editor.
OPERATIONS = ("recolour", "remove", "grayscale", "blur", "brighten", "darken", "sepia")
#: What the embedded editor can do, with one example each (shown when an instruction is refused).
CAPABILITIES = ("recolour to a named colour ('make the cat red'), remove ('remove the cup'), "
                "black and white ('turn it black and white'), blur ('blur the background'), "
                "brightness ('make the flower brighter' / 'darker'), sepia restyle ('make it "
                "look vintage')")
WHOLE_IMAGE = "the whole image"
BACKGROUND = "the background"
#: The target of every caption + mask edit.
PAINTED_REGION = "the painted region"

_PATTERNS = [
    ("grayscale", r"black(?: and | ?& ?)white|\bb ?& ?w\b|gr[ae]y ?scale|monochrome|"
                  r"desaturat\w*|\bcolou?rless\b|\bno colou?rs?\b"),
    ("remove", r"\b(?:remove|erase|delete|get rid of|take (?:away|out)|eliminate|"
               r"make \w+(?: \w+)? disappear|without)\b"),
    ("blur", r"\bblur\w*|\bout of focus\b|\bbokeh\b|\bdefocus\w*"),
    ("brighten", r"\b(?:bright(?:er|en)|light(?:er|en)|more light|illuminate)\b"),
    ("darken", r"\b(?:dark(?:er|en)|dimm?(?:er)?|less light)\b"),
    ("sepia", r"\b(?:sepia|vintage|old[- ](?:photo|fashioned|style)|antique)\b"),
]
_STOP = set("""a an the it its this that these those to into in on of with and or please
make turn change paint colour color colou recolour recolor dye let be more less much bit little
slightly very really look looks like so all some photo image picture scene whole entire
everything can you could would i want me my is are do should become now area region part
""".split())
_WHOLE = {"", "it", "image", "photo", "picture", "everything", "scene", "all", "whole"}


@dataclass(frozen=True)
class Command:
    """A parsed instruction.

    Attributes:
        operation: one of :data:`OPERATIONS`.
        target: the words naming what to edit ("cat", "coffee cup", in any script and emoji
            kept as typed: "piñata", "🐈", "猫"); :data:`WHOLE_IMAGE` or :data:`BACKGROUND`
            for those.
        colour: named colour of a recolouring, else None.
    """

    operation: str
    target: str
    colour: str | None = None


def _normalise(text: str) -> str:
    """NFC, lower case, single spaces; letters of any script, digits, marks, symbols (emoji)
    and ``& ' -`` kept, other punctuation made a space."""
    text = unicodedata.normalize("NFC", text).lower()
    kept = "".join(ch if ch in "&'-\u200d" or unicodedata.category(ch)[0] in "LMNS" else " "
                   for ch in text)
    return " ".join(kept.split())


def _colour_in(text: str) -> str | None:
    found = [(m.start(), c) for c in NAMED_COLOURS
             for m in re.finditer(rf"\b{c}\b", text)]
    return min(found)[1] if found else None


def parse_instruction(text: str) -> Command:
    """Parse a cleaned instruction.

    Args:
        text: instruction (from :func:`engine.inputs.text.clean_text`), any case.

    Returns:
        :class:`Command`.

    Raises:
        UserInputError: no operation the embedded editor can carry out; the message lists
            :data:`CAPABILITIES`.
    """
    low = _normalise(text)
    operation, colour, span = None, None, None
    for op, pattern in _PATTERNS:
        m = re.search(pattern, low)
        if m:
            operation, span = op, m
            break
    if operation is None:
        colour = _colour_in(low)
        if colour:
            operation = "recolour"
    if operation is None:
        raise UserInputError(f"The offline editor cannot carry out \"{text}\". It can: "
                         f"{CAPABILITIES}. For other edits choose a hub model "
                         f"(InstructPix2Pix) when the model hub is reachable.")
    rest = low if span is None else low[:span.start()] + " " + low[span.end():]
    words = [w for w in text_words(rest) if w not in _STOP and w not in NAMED_COLOURS]
    if colour is None and operation == "recolour":
        colour = _colour_in(low)
    phrase = " ".join(words)
    if "background" in words or "backdrop" in words or "surroundings" in words:
        target = BACKGROUND
    elif phrase in _WHOLE or all(w in _WHOLE for w in words):
        target = WHOLE_IMAGE
    else:
        target = phrase
    return Command(operation, target, colour)
