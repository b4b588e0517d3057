"""The one text-input path: every text box and CLI text argument goes through :func:`clean_text`.

Rules (``../shared/cases/cases.md``, "text"): control characters are removed, runs of white space
become one space, Unicode (emoji, right-to-left scripts) passes through unharmed, and empty or
white-space-only text is refused with a message. Texts longer than a model's context are cut
by the model's tokenizer (which keeps the end-of-text token); :func:`clean_text` reports a cut of
its own character limit so the user can be told.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from engine.errors import UserInputError

#: Characters kept from any text box; longer input is cut and the user told.
MAX_TEXT_CHARS = 1000

_WS = re.compile(r"\s+")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class TextInputError(UserInputError):
    """Text that cannot be used; the message is meant for the user."""


@dataclass(frozen=True)
class CleanText:
    """Cleaned text and what happened to it.

    Attributes:
        text: the cleaned text (non-empty).
        truncated: True if it was cut to ``max_chars`` characters.
        notes: plain-language remarks for the user.
    """

    text: str
    truncated: bool
    notes: tuple[str, ...] = ()


def clean_text(text: str | None, *, field: str = "text", max_chars: int = MAX_TEXT_CHARS
               ) -> CleanText:
    """Normalise a user's text.

    Args:
        text: raw text from a text box or the command line (None counts as empty).
        field: name of the input to quote in messages (e.g. "instruction").
        max_chars: characters kept; the rest is cut at a word boundary when one is near.

    Returns:
        :class:`CleanText`.

    Raises:
        TextInputError: the text is empty or only white space / control characters.
    """
    raw = "" if text is None else str(text)
    raw = _ANSI.sub("", raw)
    kept = "".join(ch for ch in raw
                   if ch in "\t\n\r " or unicodedata.category(ch)[0] != "C"
                   or ch in "\u200d\u200c")  # keep zero-width joiners used by emoji and scripts
    kept = _WS.sub(" ", kept).strip()
    if not kept:
        raise TextInputError(f"The {field} is empty: please type a few words.")
    notes = []
    truncated = len(kept) > max_chars
    if truncated:
        cut = kept[:max_chars]
        space = cut.rfind(" ")
        if space > max_chars * 0.8:
            cut = cut[:space]
        notes.append(f"The {field} was {len(kept)} characters long; only the first {len(cut)} "
                     f"were used.")
        kept = cut
    return CleanText(kept, truncated, tuple(notes))


def normalize_name(name: object) -> str:
    """The one form of a name a user gives to something (a class, a symbol, a folder).

    Unicode NFC (so "café" typed as ``e`` + combining accent, as macOS file names and some
    keyboards send it, is the same string as the precomposed "café"), control characters
    removed, runs of white space collapsed to one space, trimmed: ``"  Café \\t cat "`` ->
    ``"Café cat"``. Case and compatibility forms (full-width letters) are kept: this is the name
    shown to the user. Returns "" for None or a blank name.
    """
    text = unicodedata.normalize("NFC", "" if name is None else str(name))
    kept = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C"
                   or ch in "\t\n\r\u200d\u200c")
    return _WS.sub(" ", kept).strip()


def name_key(name: object) -> str:
    """Key under which two names are the same class: :func:`normalize_name`, then Unicode
    NFKC with case folding (the Unicode standard's caseless matching of identifiers, UAX #31).

    "Cat", "cat ", "CAT" and the full-width "Ｃａｔ" share a key; so do "ﬁsh" (ligature) and
    "fish". Compatibility folding also equates "x²" with "x2": names that close are one class.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize(
        "NFKC", normalize_name(name)).casefold())


# --- words of a text, in any script (the editor's and retrieval's object words) -------------

_JOINERS = "\u200d\ufe0f\ufe0e"  # zero-width joiner, emoji / text variation selectors
_INNER = "'\u2019-"  # apostrophes and hyphens inside a word ("jack-o'-lantern", "t-shirt")


def _letter_follows(text: str, i: int) -> bool:
    """True if a letter or digit comes at ``i`` after any apostrophes / hyphens."""
    while i < len(text) and text[i] in _INNER:
        i += 1
    return i < len(text) and unicodedata.category(text[i])[0] in "LN"


def words(text: str) -> list[str]:
    """The words of a text in any script, lower case, NFC-normalised.

    A word is a run of letters, combining marks and digits (an apostrophe or hyphen between two
    of them stays inside: "t-shirt"); every emoji (a pictographic symbol with its joiners,
    variation selectors and modifiers: "🐈‍⬛") is a word of its own. Everything else
    (punctuation, spaces, maths signs) separates words. "make the piñata red" ->
    ["make", "the", "piñata", "red"]; "a 🐈!" -> ["a", "🐈"]; "猫" -> ["猫"].

    Args:
        text: any text (cleaned or not).

    Returns:
        The words in order (possibly empty).
    """
    text = unicodedata.normalize("NFC", text).lower()
    out: list[str] = []
    cur, kind = "", None  # kind of the word being read: "word", "emoji" or None
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        if cat[0] in "LN" or (cat[0] == "M" and kind == "word"):
            new = "word"
        elif cat == "So" or (kind == "emoji" and (ch in _JOINERS or cat in ("Sk", "Mn", "Me")
                                                   or text[i - 1] == "\u200d")):
            new = "emoji"
        elif ch in _INNER and kind == "word" and _letter_follows(text, i + 1):
            cur += ch
            continue
        else:
            new = None
        if cur and (new != kind or (new == "emoji" and cat == "So" and text[i - 1] != "\u200d")):
            out.append(cur)
            cur = ""
        kind = new
        if new:
            cur += ch
    if cur:
        out.append(cur)
    return out


def _is_emoji(word: str) -> bool:
    return bool(word) and unicodedata.category(word[0]) == "So"


def _latin(word: str) -> bool:
    """True if every letter of ``word`` is a Latin letter (accents included: "piñata")."""
    return all(unicodedata.name(ch, "").startswith("LATIN") for ch in word if ch.isalpha())


@dataclass(frozen=True)
class EnglishWords:
    """Words split into those an English-only text model can read and those it cannot.

    Attributes:
        words: usable words, an emoji replaced by its Unicode name in lower case ("🐈" ->
            "cat", "🚗" -> "automobile").
        unknown: words in a non-Latin script ("猫", "кошка"): the embedded text models
            (MiniLM, ImageNet's class names) are English only.
        notes: one line per emoji read by its name.
    """

    words: tuple[str, ...]
    unknown: tuple[str, ...]
    notes: tuple[str, ...] = ()


def english_words(tokens: list[str]) -> EnglishWords:
    """Map words (from :func:`words`) to what the English-only embedded models can read.

    Args:
        tokens: words, lower case.

    Returns:
        :class:`EnglishWords`: emoji by their Unicode names ("🐈" -> "cat", the first
        pictograph of a sequence: "🐈‍⬛" -> "cat"), words in other scripts set apart as unknown.
    """
    kept, unknown, notes = [], [], []
    for token in tokens:
        if _is_emoji(token):
            name = unicodedata.name(token[0], "").lower()
            if name:
                kept.append(name)
                notes.append(f"'{token}' was read as '{name}' (its Unicode name).")
            else:
                unknown.append(token)
        elif _latin(token):
            kept.append(token)
        else:
            unknown.append(token)
    return EnglishWords(tuple(kept), tuple(unknown), tuple(notes))
