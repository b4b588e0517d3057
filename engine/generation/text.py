"""Descriptions -> token ids for the scene generator's text encoder.

The generator was trained on the scene world's descriptions ("a large blue metal sphere is
left of a small yellow cube."), whose words form a closed vocabulary
(:data:`engine.models.scene_generator.WORDS`). A text is lower-cased and split into words and
full stops; a few synonyms are mapped to the world's words ("ball" -> sphere, "grey" -> gray,
"shiny" -> metal, "matte" -> rubber, "big" -> large, "tiny" -> small, "block" -> cube);
function words ("a", "the", "is", "of", "in", ...) carry nothing the model uses and are
dropped; any other word is skipped and reported in the notes (unicode passes through to the
note unharmed). Ids are ``[BOS] words... [EOS]``; a text longer than the context is truncated
at the end, keeping EOS, and the note says how many words were cut.

    >>> from engine.generation.text import tokenize
    >>> t = tokenize("A large blue metal sphere left of a small yellow cube", vocab)
    >>> t.words     # ['large', 'blue', 'metal', 'sphere', 'left', 'small', 'yellow', 'cube']
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from engine.errors import UserInputError

#: Words mapped to the world's words.
SYNONYMS = {"ball": "sphere", "balls": "sphere", "spheres": "sphere", "cubes": "cube",
            "block": "cube", "blocks": "cube", "cylinders": "cylinder", "grey": "gray",
            "shiny": "metal", "metallic": "metal", "matte": "rubber", "big": "large",
            "tiny": "small", "little": "small", "beside": "next"}
#: Function words dropped without a note.
FILLERS = frozenset("a an the is are there of in to and with on it its one".split())
#: Characters shown of an unknown word in a note, and unknown words listed.
_NOTE_WORD_CHARS, _NOTE_WORDS = 20, 6


@dataclass(frozen=True)
class Tokens:
    """A tokenised description.

    Attributes:
        ids: token ids, ``[BOS] ... [EOS]`` (length <= the context).
        words: the world's words kept, in order (without BOS/EOS).
        notes: sentences for the user (skipped words, truncation); empty when none.
    """

    ids: tuple[int, ...]
    words: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def split_words(text: str) -> list[str]:
    """Lower-case words and full stops of ``text`` (NFKC-normalised; any other punctuation
    separates words)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+|\.", text)


def tokenize(text: str, vocab: tuple[str, ...], max_tokens: int) -> Tokens:
    """Token ids of ``text`` for a generator with vocabulary ``vocab`` and context
    ``max_tokens`` (BOS and EOS included).

    Raises:
        UserInputError: ``text`` is empty or blank (:func:`engine.inputs.text.clean_text`,
            which also cuts texts over 1,000 characters with a note), or holds none of the
            world's words (the message lists them).
    """
    from engine.inputs.text import clean_text
    cleaned = clean_text(text, field="description")  # the one text path (control chars,
    # white space, empty text, 1,000-character limit)
    index = {w: i for i, w in enumerate(vocab)}
    kept, unknown = [], []
    for w in split_words(cleaned.text):
        w = SYNONYMS.get(w, w)
        if w in FILLERS:
            continue
        if w in index and index[w] >= 3:
            kept.append(w)
        else:
            unknown.append(w)
    # a leading or doubled full stop says nothing
    words: list[str] = []
    for w in kept:
        if w == "." and (not words or words[-1] == "."):
            continue
        words.append(w)
    content = [w for w in words if w != "."]
    if not content:
        known = ", ".join(w for w in vocab[3:] if w != ".")
        raise UserInputError("the description has none of the scene world's words; it knows: "
                             + known)
    notes = list(cleaned.notes)
    if unknown:
        shown = ", ".join(repr(w[:_NOTE_WORD_CHARS]) for w in unknown[:_NOTE_WORDS])
        more = f" and {len(unknown) - _NOTE_WORDS} more" if len(unknown) > _NOTE_WORDS else ""
        notes.append(f"words the generator does not know were ignored: {shown}{more}")
    room = max_tokens - 2
    if len(words) > room:
        cut = len(words) - room
        words = words[:room]
        notes.append(f"the description was cut to the model's context of {room} words "
                     f"({cut} words at the end were dropped)")
    ids = (1,) + tuple(index[w] for w in words) + (2,)
    return Tokens(ids, tuple(words), tuple(notes))


def null_ids() -> tuple[int, ...]:
    """The empty description ``[BOS, EOS]``: the unconditional input of classifier-free
    guidance (what training drops 10 % of the texts to)."""
    return (1, 2)


def pad_batch(seqs: list[tuple[int, ...]], length: int | None = None):
    """(B, L) int64 tensor of ``seqs`` padded with PAD (0) to ``length`` (default: longest)."""
    import torch
    length = length or max(len(s) for s in seqs)
    out = torch.zeros(len(seqs), length, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s[:length], dtype=torch.long)
    return out
