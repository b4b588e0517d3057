"""One results file for the "Papers" panels and docs/results.md (issue 16).

``docs/results.json`` holds rows of two kinds, per tab:

* ``paper``: a published figure, quoted with the paper, its table and where it was read;
* ``measured``: this product's figure for the same metric, written by the eval command itself
  (``python -m engine fewshot-eval ... --record``), with the exact command, the date and the
  machine's load, never typed by hand.

Each tab's Papers panel (``demos.common.papers_panel``) and ``docs/results.md`` (``python -m
engine results --markdown``) render the same rows, so the app and the docs cannot disagree.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

#: The results file.
RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results.json"
#: Tabs that have a Papers panel, in the app's order.
TABS = ("caption", "fewshot", "handwriting", "change", "edit", "retrieve", "segment",
        "generate")
KINDS = ("paper", "measured")
_lock = threading.Lock()


def load(path: Path | None = None) -> dict:
    """The results file (``{"rows": [...]}``; empty when it does not exist); ``path``
    defaults to :data:`RESULTS` (as for every function here)."""
    path = Path(path or RESULTS)
    if not Path(path).is_file():
        return {"rows": []}
    return json.loads(Path(path).read_text(encoding="utf-8"))


def rows(tab: str, path: Path | None = None) -> list[dict]:
    """The rows of ``tab``: papers first, then measured, each in file order.

    Raises:
        ValueError: unknown tab.
    """
    if tab not in TABS:
        raise ValueError(f"tab must be one of {TABS}, got {tab!r}")
    mine = [r for r in load(path)["rows"] if r["tab"] == tab]
    return sorted(mine, key=lambda r: KINDS.index(r["kind"]))


def record(row: dict, path: Path | None = None) -> dict:
    """Add or replace a measured row (same tab, benchmark and model), stamped with the date
    and the 1-minute load average; returns the row written.

    Args:
        row: ``tab``, ``benchmark``, ``metric``, ``value``, ``model``, ``command`` (and e.g.
            ``ci95``).

    Raises:
        ValueError: a missing field or an unknown tab.
    """
    missing = {"tab", "benchmark", "metric", "value", "model", "command"} - set(row)
    if missing:
        raise ValueError(f"a measured row needs {sorted(missing)}")
    if row["tab"] not in TABS:
        raise ValueError(f"tab must be one of {TABS}, got {row['tab']!r}")
    row = {**row, "kind": "measured", "date": time.strftime("%Y-%m-%d"),
           "load_avg": round(os.getloadavg()[0], 2)}
    key = (row["tab"], row["benchmark"], row["model"])
    with _lock:
        data = load(path)
        kept = [r for r in data["rows"] if r["kind"] != "measured"
                or (r["tab"], r["benchmark"], r.get("model")) != key]
        data["rows"] = kept + [row]
        Path(path or RESULTS).write_text(json.dumps(data, indent=1, ensure_ascii=False)
                                         + "\n", encoding="utf-8")
    return row


def _value(r: dict) -> str:
    v = f"{r['value']:g}"
    return f"{v} ± {r['ci95']:g}" if r.get("ci95") is not None else v


def markdown(tab: str, path: Path | None = None) -> str:
    """The Papers table of ``tab`` as Markdown (a sentence when it has no row)."""
    mine = rows(tab, path)
    note = load(path).get("notes", {}).get(tab)
    if not mine:
        return note or "*No published or measured figure for this tab in docs/results.json.*"
    lines = ["| | benchmark | metric | value | who | source / command |",
             "|---|---|---|---|---|---|"]
    for r in mine:
        where = (r.get("source", "") if r["kind"] == "paper" else
                 f"`{r['command']}` ({r['date']}, load {r['load_avg']:g})")
        lines.append(f"| {r['kind']} | {r['benchmark']} | {r['metric']} | {_value(r)} | "
                     f"{r.get('who') or r.get('model', '')} | {where} |")
    return "\n".join(lines + (["", note] if note else []))


def document(path: Path | None = None) -> str:
    """docs/results.md: every tab's table, from the results file."""
    parts = ["# Published figures beside this product's measured ones",
             "",
             "Generated from `docs/results.json` by `python -m engine results --markdown > "
             "docs/results.md`; the app's Papers panels show the same rows. Measured rows are "
             "written by the eval commands (`--record`), never by hand. "
             "[Back to the README](../README.md).", ""]
    for tab in TABS:
        parts += [f"## {tab}", "", markdown(tab, path), ""]
    return "\n".join(parts)


__all__ = ["RESULTS", "TABS", "document", "load", "markdown", "record", "rows"]
