"""The error a user can fix: every input rule and every refused option raises it.

:class:`UserInputError` messages are one plain sentence meant for the person at the browser or
the terminal; the app shows them as they are and the CLI prints them as ``error: ...``. Any
other exception is a bug: the app logs its traceback and shows a short "internal error" line.
"""
from __future__ import annotations


class UserInputError(ValueError):
    """Input the user can correct (a bad file, an empty text, a support set too small, an
    unknown model name). The message is shown to the user verbatim."""


def unknown_name_message(kind: str, name: object, valid: list[str] | tuple[str, ...]) -> str:
    """The one wording of "unknown <kind> 'x'; valid: a, b, c" used wherever a name is looked up
    (models, tasks, few-shot methods)."""
    return f"unknown {kind} {name!r}; valid: {', '.join(valid)}"
