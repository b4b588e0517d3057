"""The lecture's panels (issue 16): every tab's Papers panel renders docs/results.json (which
docs/results.md renders too), eval commands write measured rows themselves, and the presenter
view (larger text, advanced controls hidden) is one checkbox or ``?presenter`` away."""
from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from engine import results
from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def app():
    from app import build_app
    return build_app()


def _blocks(app, kind):
    return [b for b in app.blocks.values() if isinstance(b, kind)]


def test_every_tab_has_a_papers_panel_rendered_from_the_results_file(app):
    panels = [b for b in _blocks(app, gr.Accordion) if "vl-papers" in (b.elem_classes or [])]
    shown = [next(c.value for c in p.children if isinstance(c, gr.Markdown)) for p in panels]
    assert sorted(shown) == sorted(results.markdown(tab) for tab in results.TABS)
    assert len(panels) == len(results.TABS)


def test_each_tab_panel_shows_exactly_its_rows():
    data = results.load()
    for tab in results.TABS:
        lines = [x for x in results.markdown(tab).splitlines()
                 if x.startswith(("| paper |", "| measured |"))]
        mine = [r for r in data["rows"] if r["tab"] == tab]
        assert len(lines) == len(mine)
        for row, line in zip(results.rows(tab), lines):
            assert f"| {row['kind']} | {row['benchmark']} | {row['metric']} | {row['value']:g}" \
                in line
        if not mine:  # a tab without figures says why, from the same file
            assert results.markdown(tab) == data["notes"][tab]
    hw = results.markdown("handwriting")
    assert "| paper | Omniglot 5-way 1-shot |" in hw and "| measured | Omniglot 5-way 1-shot |" in hw


def test_docs_render_the_same_results_file():
    assert (ROOT / "docs" / "results.md").read_text(encoding="utf-8") == results.document() + "\n"


def test_measured_rows_carry_their_command_and_papers_their_source():
    for row in results.load()["rows"]:
        assert row["kind"] in results.KINDS and row["tab"] in results.TABS
        if row["kind"] == "measured":
            assert row["command"].startswith("python -m engine ") and row["date"]
            assert "load_avg" in row
        else:
            assert row["source"] and row["who"]


def test_record_replaces_the_same_measurement_and_stamps_it(tmp_path):
    path = tmp_path / "results.json"
    row = {"tab": "handwriting", "benchmark": "Omniglot 5-way 1-shot", "metric": "accuracy %",
           "value": 90.0, "model": "m", "command": "python -m engine x"}
    results.record(row, path)
    results.record({**row, "value": 91.0}, path)
    results.record({**row, "model": "other"}, path)
    rows = results.load(path)["rows"]
    assert [(r["model"], r["value"]) for r in rows] == [("m", 91.0), ("other", 90.0)]
    assert all(r["kind"] == "measured" and r["date"] for r in rows)
    with pytest.raises(ValueError, match="command"):
        results.record({k: v for k, v in row.items() if k != "command"}, path)
    with pytest.raises(ValueError, match="tab"):
        results.record({**row, "tab": "nope"}, path)


def test_fewshot_eval_record_writes_the_row_it_printed(tmp_path, monkeypatch, capsys):
    path = tmp_path / "results.json"
    monkeypatch.setattr(results, "RESULTS", path)
    assert main(["fewshot-eval", "--model", "omniglot-protonet", "--episodes", "3",
                 "--record"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    [row] = results.load(path)["rows"]
    assert row["value"] == round(100 * printed["accuracy"], 1)
    assert row["command"] == ("python -m engine fewshot-eval --model omniglot-protonet --way 5 "
                              "--shot 1 --episodes 3 --seed 0 --record")
    assert row["tab"] == "handwriting" and row["benchmark"] == "Omniglot 5-way 1-shot"


def test_results_command_prints_rows_and_markdown(capsys):
    assert main(["results", "--tab", "segment"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert lines == results.rows("segment")
    assert main(["results", "--markdown", "--tab", "segment"]) == 0
    assert capsys.readouterr().out == results.markdown("segment") + "\n"


def test_presenter_view_toggles_a_body_class_and_hides_advanced_controls(app):
    from demos.common import ADVANCED, PRESENTER_CSS
    [box] = [b for b in _blocks(app, gr.Checkbox) if b.elem_id == "vl-presenter-toggle"]
    fns = [d for d in app.fns.values() if any(t[0] == box._id for t in d.targets)]
    assert any("classList.toggle('vl-presenter', on)" in (d.js or "") for d in fns)
    # ?presenter in the URL switches it on at load
    loads = [d for d in app.fns.values() if box._id in [o._id for o in d.outputs]]
    assert any("URLSearchParams" in (d.js or "") for d in loads)
    assert f"body.vl-presenter .{ADVANCED} {{ display: none !important; }}" in PRESENTER_CSS
    assert "--input-text-size: 22px" in PRESENTER_CSS
    hidden = [b for b in app.blocks.values() if ADVANCED in (getattr(b, "elem_classes", None)
                                                             or [])]
    reproduce = [b for b in _blocks(app, gr.File) if b.label and b.label.startswith("Reproduce")]
    assert len(reproduce) == 3 and all(r in hidden for r in reproduce)  # caption, edit, photos
