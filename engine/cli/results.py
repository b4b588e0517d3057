"""``python -m engine results [--tab TAB] [--markdown]``: the published and measured figures of
``docs/results.json`` (one JSON line per row, or Markdown: ``--markdown`` without ``--tab``
prints the whole of docs/results.md). Rows are written by the eval commands (``--record``)."""
from __future__ import annotations

import sys

from engine.cli import emit


def register(sub) -> None:
    from engine.results import TABS
    p = sub.add_parser("results", help="published vs measured figures (docs/results.json)")
    p.add_argument("--tab", choices=TABS, default=None)
    p.add_argument("--markdown", action="store_true", help="Markdown instead of JSON lines")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.results import TABS, document, markdown, rows
    if args.markdown:
        sys.stdout.write((markdown(args.tab) if args.tab else document()) + "\n")
        return 0
    for tab in ([args.tab] if args.tab else TABS):
        for row in rows(tab):
            emit(row)
    return 0
