"""Figures of the "Describe the changes" and "Edit by text" tabs on their bundled examples.

    python -m benchmarks.change_edit_eval [--out FILE]

* change: for every pair of ``assets/examples/changes`` (expected types in
  ``assets/make_change_examples.PAIRS``), the predicted change types and whether they are exactly
  the expected one (type accuracy), and the pipeline's own ``ms``.
* edit: for every instruction and caption + mask example of the Edit tab, the operation, the
  share of changed pixels, the share of changed pixels *outside* the edited region
  (``changed_fraction_outside``) and ``ms``.
Timings are wall milliseconds of the pipeline call with models already loaded (the first call of
each pipeline is a warm-up and not counted), on whatever CPU runs this.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"


def evaluate() -> dict:
    """Run both pipelines on every bundled example; returns the figures as a dict."""
    sys.path.insert(0, str(ROOT / "assets"))
    from make_change_examples import PAIRS

    from demos.edit import INSTRUCTION_EXAMPLES, MASK_EXAMPLES
    from engine.inputs.images import load_image, load_mask
    from engine.factory import get_pipeline
    change, edit = get_pipeline("change"), get_pipeline("edit")
    d = EXAMPLES / "changes"
    pair = lambda n: [load_image(d / f"{n}_{s}.jpg").image for s in ("before", "after")]  # noqa
    change(*pair(next(iter(PAIRS))))  # warm-up
    rows = []
    for name, expected in PAIRS.items():
        r = change(*pair(name))
        got = [c.type for c in r.changes] or ["none"]
        rows.append({"pair": name, "expected": expected, "predicted": got,
                     "correct": got == [expected], "caption": r.caption, "ms": round(r.ms)})
    edits = []
    cat = load_image(EXAMPLES / "cat.jpg").image
    edit(cat, "make the cat red")  # warm-up
    jobs = [(p, t, None) for p, t in INSTRUCTION_EXAMPLES] + \
        [(p, c, m) for p, m, c in MASK_EXAMPLES]
    for photo, text, mask_file in jobs:
        image = load_image(EXAMPLES / photo).image
        mask = None if mask_file is None else load_mask(EXAMPLES / "edit" / mask_file,
                                                        size=image.size)
        r = edit(image, text, mask)
        edits.append({"image": photo, "text": text, "mask": mask_file,
                      "operation": r.operation, "target": r.target,
                      "changed_fraction": round(r.changed_fraction, 4),
                      "changed_fraction_outside": r.changed_fraction_outside,
                      "ms": round(r.ms)})
    return {"change": rows, "change_type_accuracy": sum(r["correct"] for r in rows) / len(rows),
            "edit": edits,
            "edit_max_changed_fraction_outside": max(e["changed_fraction_outside"]
                                                     for e in edits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    figures = evaluate()
    for r in figures["change"]:
        print(f"change {r['pair']:24s} expected {r['expected']:10s} predicted "
              f"{','.join(r['predicted']):12s} {'ok ' if r['correct'] else 'BAD'} {r['ms']:6d} ms")
    print(f"change type accuracy: {figures['change_type_accuracy']:.3f}")
    for e in figures["edit"]:
        print(f"edit {e['image']:17s} {e['text'][:28]:28s} {e['operation']:9s} changed "
              f"{e['changed_fraction']:.3f} outside {e['changed_fraction_outside']:.4f} "
              f"{e['ms']:6d} ms")
    print(f"edit max changed_fraction_outside: {figures['edit_max_changed_fraction_outside']}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
