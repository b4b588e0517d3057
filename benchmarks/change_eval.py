"""Change-type accuracy of the "Describe the changes" pipeline, per type, on the bundled pairs and
on the evaluation set made from other photos and objects (``assets/make_change_eval.py``).

    python -m benchmarks.change_eval [--set eval|bundled|DIR] [--json FILE] [--verbose]

A pair is correct when the pipeline reports exactly one change of the expected type ("none":
no change at all). Per type: correct / pairs; also the share of pairs whose *first* reported
change has the right type (lenient: extra changes forgiven). Times are the pipeline's own ``ms``.
``DIR``: any folder written by ``assets/make_change_eval.py`` (``pairs.csv`` + JPEGs), e.g. the
``dev`` split used to choose the thresholds.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = ROOT / "assets" / "change_eval"
BUNDLED_DIR = ROOT / "assets" / "examples" / "changes"


def pairs_of(which: str) -> tuple[Path, dict[str, str]]:
    """(folder, {pair name: expected type}) of ``which`` ("bundled", "eval" or a folder)."""
    if which == "bundled":
        sys.path.insert(0, str(ROOT / "assets"))
        from make_change_examples import PAIRS
        return BUNDLED_DIR, dict(PAIRS)
    folder = EVAL_DIR if which == "eval" else Path(which)
    with open(folder / "pairs.csv", newline="") as fh:
        return folder, {r["name"]: r["type"] for r in csv.DictReader(fh)}


def evaluate(which: str = "eval", pipeline=None) -> dict:
    """Run the change pipeline (the factory's embedded one unless given) on every pair.

    Returns:
        {"rows": [{pair, expected, predicted, correct, first_correct, caption, ms}],
        "per_type": {type: {"pairs", "correct", "first_correct"}}, "accuracy": float}.
    """
    from engine.inputs.images import load_image
    folder, expected = pairs_of(which)
    if pipeline is None:
        from engine.factory import get_pipeline
        pipeline = get_pipeline("change")
    rows, per_type = [], defaultdict(lambda: {"pairs": 0, "correct": 0, "first_correct": 0})
    for name, want in expected.items():
        b, a = (load_image(folder / f"{name}_{s}.jpg").image for s in ("before", "after"))
        r = pipeline(b, a)
        got = [c.type for c in r.changes] or ["none"]
        row = {"pair": name, "expected": want, "predicted": got, "correct": got == [want],
               "first_correct": got[0] == want, "caption": r.caption, "ms": round(r.ms),
               "evidence": [{k: v for k, v in c.evidence.items() if "box" not in k}
                            for c in r.changes]}
        rows.append(row)
        t = per_type[want]
        t["pairs"] += 1
        t["correct"] += row["correct"]
        t["first_correct"] += row["first_correct"]
    return {"rows": rows, "per_type": dict(per_type),
            "accuracy": sum(r["correct"] for r in rows) / max(1, len(rows))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default="eval", help="eval (default), bundled, or a folder")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--verbose", action="store_true", help="print the cues of every change")
    args = parser.parse_args()
    figures = evaluate(args.set)
    for r in figures["rows"]:
        print(f"{r['pair']:26s} {r['expected']:10s} -> {','.join(r['predicted']):24s} "
              f"{'ok ' if r['correct'] else 'BAD'} {r['ms']:6d} ms  {r['caption']}")
        if args.verbose:
            print(f"{'':26s} {r['evidence']}")
    print(f"\nchange type accuracy on {args.set} ({len(figures['rows'])} pairs):")
    for t, f in figures["per_type"].items():
        print(f"  {t:10s} {f['correct']:2d}/{f['pairs']:<2d} exact   {f['first_correct']:2d}/"
              f"{f['pairs']:<2d} first change")
    total = len(figures["rows"])
    print(f"  {'all':10s} {sum(r['correct'] for r in figures['rows']):2d}/{total:<2d} exact   "
          f"{sum(r['first_correct'] for r in figures['rows']):2d}/{total:<2d} first change")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
