"""``python -m engine``: JSON lines on stdout, one-line errors on stderr, no tracebacks."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import EXAMPLES, ROOT

from engine.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_list_models_prints_every_model_with_source():
    proc = run_cli("list-models")
    assert proc.returncode == 0, proc.stderr
    rows = json_lines(proc.stdout)
    names = {r.get("model") for r in rows}
    assert {"efficientnet_lite0", "minilm", "blip-base", "openclip-vit-b-32"} <= names
    assert {r["source"] for r in rows if "model" in r} == {"embedded", "hub"}


def test_caption_batch_names_the_cat_and_times_the_call():
    proc = run_cli("caption", str(EXAMPLES / "cat.jpg"), str(EXAMPLES / "coffee.jpg"))
    assert proc.returncode == 0, proc.stderr
    cat, coffee = json_lines(proc.stdout)
    assert "cat" in cat["caption"] and "cat" in cat["tags"][0][0]
    assert isinstance(cat["tags"][0][1], float) and cat["model"] == "efficientnet_lite0"
    assert cat["ms"] > 0 and coffee["tags"][0][0] in ("espresso", "cup", "coffee mug")


def test_classify_cat_vs_coffee_from_an_image_folder():
    proc = run_cli("classify", "--support", str(EXAMPLES / "fewshot" / "support"), "--query",
                   str(EXAMPLES / "fewshot" / "query" / "cat_query.jpg"), "--method", "cosine")
    assert proc.returncode == 0, proc.stderr
    (row,) = json_lines(proc.stdout)
    assert row["label"] == "cat" and set(row["probabilities"]) == {"cat", "coffee"}
    assert abs(sum(row["probabilities"].values()) - 1) < 1e-4
    assert row["model"] == "efficientnet_lite0" and row["ms"] > 0


def test_classify_accepts_the_meta_learned_handwriting_models():
    hw = EXAMPLES / "handwriting"
    proc = run_cli("classify", "--support", str(hw / "support"), "--query",
                   str(hw / "query" / "symbol_1_query.png"), str(hw / "query" / "symbol_3_query.png"),
                   "--model", "omniglot-protonet")
    assert proc.returncode == 0, proc.stderr
    rows = json_lines(proc.stdout)
    assert [r["label"] for r in rows] == ["symbol_1", "symbol_3"]
    assert rows[0]["model"] == "omniglot-protonet"
    assert set(rows[0]["probabilities"]) == {"symbol_1", "symbol_2", "symbol_3"}


@pytest.mark.parametrize("args,words", [
    (["caption", "{cases}/junk_bytes.png"], "not an image"),
    (["caption", "{cases}/bomb_header_60000x60000.png"], "megapixels"),
    (["caption", "/no/such/file.png"], "not found"),
    (["caption", "{examples}/cat.jpg", "--model", "nope"], "unknown caption model"),
    (["caption", "{examples}/cat.jpg", "--model", "blip-base", "--no-fallback"],
     "cannot be reached"),
    (["classify", "--support", "/no/such/dir", "--query", "{examples}/cat.jpg"], "does not exist"),
    (["classify", "--support", "{examples}/fewshot/support", "--query", "{cases}/empty_file.jpg"],
     "empty file"),
    (["classify", "--support", "{examples}/fewshot/support", "--query", "{examples}/cat.jpg",
      "--method", "magic"], "unknown method"),
])
def test_bad_input_gives_one_line_error_and_nonzero_exit(cases_dir, args, words):
    args = [a.format(cases=cases_dir, examples=EXAMPLES) for a in args]
    proc = run_cli(*args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and words in lines[0], proc.stderr


@pytest.mark.parametrize("args, words", [
    (["--episodes", "0"], "--episodes must be >= 1"),
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--lr", "nan"], "--lr must be a positive number"),
    (["--inner-lr", "0"], "--inner-lr must be a positive number"),
])
def test_train_fewshot_refuses_impossible_settings_in_one_line(capsys, tmp_path, args, words):
    out = tmp_path / "m.safetensors"
    assert main(["train-fewshot", "--method", "protonet", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert not out.exists()
