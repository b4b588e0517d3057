"""``python -m engine classify`` with the inputs of issue 15: class folders named "Ba$$in",
"prediction" / "query", "café" twice (NFC and NFD), inverted handwriting, tied classes."""
from __future__ import annotations

import shutil
import unicodedata

from conftest import EXAMPLES
from PIL import Image, ImageOps
from test_cli import json_lines, run_cli

FS = EXAMPLES / "fewshot"
HW = EXAMPLES / "handwriting"
QUERIES = [str(FS / "query" / "cat_query.jpg"), str(FS / "query" / "coffee_query.jpg")]


def _support(tmp_path, first: str, second: str, second_from: str = "coffee"):
    root = tmp_path / "support"
    shutil.copytree(FS / "support" / "cat", root / first)
    shutil.copytree(FS / "support" / second_from, root / second)
    return root


def test_dollar_class_name_classifies_and_comes_back_verbatim(tmp_path):
    proc = run_cli("classify", "--support", str(_support(tmp_path, "Ba$$in", "co_f^fee")),
                   "--query", *QUERIES)
    assert proc.returncode == 0, proc.stderr
    rows = json_lines(proc.stdout)
    assert [r["label"] for r in rows] == ["Ba$$in", "co_f^fee"]
    assert set(rows[0]["probabilities"]) == {"Ba$$in", "co_f^fee"}


def test_class_folders_named_like_output_fields_keep_every_field(tmp_path):
    proc = run_cli("classify", "--support", str(_support(tmp_path, "prediction", "query")),
                   "--query", *QUERIES)
    assert proc.returncode == 0, proc.stderr
    rows = json_lines(proc.stdout)
    assert [r["query"] for r in rows] == QUERIES  # the field, not a class
    assert [r["label"] for r in rows] == ["prediction", "query"]
    assert set(rows[0]["probabilities"]) == {"prediction", "query"}


def test_nfc_and_nfd_folders_are_refused_naming_both(tmp_path):
    nfc, nfd = (unicodedata.normalize(f, "café") for f in ("NFC", "NFD"))
    proc = run_cli("classify", "--support", str(_support(tmp_path, nfc, nfd, "cat")),
                   "--query", *QUERIES)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "are one class name" in proc.stderr and "\\u0301" in proc.stderr
    # one more instance: a trailing space
    proc = run_cli("classify", "--support", str(_support(tmp_path / "b", "Cat", "Cat ", "cat")),
                   "--query", *QUERIES)
    assert proc.returncode == 2 and "'Cat' and 'Cat '" in proc.stderr


def test_inverted_handwriting_support_and_queries_are_classified_like_the_originals(tmp_path):
    root = tmp_path / "dark"
    for src in (HW / "support").rglob("*.png"):
        dst = root / "support" / src.parent.name / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        ImageOps.invert(Image.open(src).convert("RGB")).save(dst)
    queries = []
    for src in sorted((HW / "query").glob("*.png")):
        ImageOps.invert(Image.open(src).convert("RGB")).save(root / src.name)
        queries.append(str(root / src.name))
    proc = run_cli("classify", "--support", str(root / "support"), "--query", *queries,
                   "--model", "omniglot-protonet")
    assert proc.returncode == 0, proc.stderr
    rows = json_lines(proc.stdout)
    assert [r["label"] for r in rows] == ["symbol_1", "symbol_2", "symbol_3"]
    notes = rows[0]["notes"]
    assert any(n.startswith("Support images 1 ('symbol_1')") and "inverted" in n for n in notes)
    assert "Query image 1: the drawing was inverted (light strokes on a dark background)." \
        in notes


def test_identical_classes_are_a_tie_with_no_label(tmp_path):
    root = tmp_path / "support"
    photo = min((FS / "support" / "cat").iterdir())
    for name in ("left", "right"):  # the same photo in both classes: equal prototypes
        (root / name).mkdir(parents=True)
        shutil.copy(photo, root / name)
    proc = run_cli("classify", "--support", str(root), "--query", QUERIES[0])
    assert proc.returncode == 0, proc.stderr
    (row,) = json_lines(proc.stdout)
    assert row["label"] is None and row["tied"] == ["left", "right"]
    assert row["notes"][0].startswith("No class is preferred")
