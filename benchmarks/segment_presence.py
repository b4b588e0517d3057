"""Does the few-shot segmentation tab say when the query does not contain the painted object?
Rates of correct present / absent decisions of ``PANet.presence`` on the evaluation set.

    python -m benchmarks.segment_presence [--data assets/segmentation/eval] [--json FILE]

1-shot, every image of ``assets/segmentation/eval`` as the support (its exact mask) against
every other image as the query: a query of the same class holds the object (**present**; a
different drawing of that class), a query of another class does not (**absent, other
class**); the colour photos of ``assets/galleries/default`` (``photo_*.jpg`` without the
``_bw`` / ``_night`` variants) hold no drawing at all (**absent, unrelated photo**, as a person
or a cameraman queried with a horse). Also the bundled example (the horse support against its
own query and against the same photos). Prints the rates at the threshold in use
(``engine.segmentation.panet.PRESENCE_RATIO``) and at a few others.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "assets" / "galleries" / "default"
EXAMPLE = ROOT / "assets" / "examples" / "segment"


def evaluate(data_dir: Path, pipeline=None) -> dict:
    """Presence ratio of every (support, query) pair; returns {"rows": [(kind, ratio)], ...}.

    ``kind``: "present", "other class", "photo" (eval supports) and "example present" /
    "example photo" (the bundled horse support).
    """
    from engine.inputs.images import load_image, load_mask
    from engine.segmentation.evaluate import load_pairs
    if pipeline is None:
        from engine.factory import get_pipeline
        pipeline = get_pipeline("segment")
    panet = pipeline.panet
    items = []  # (class, image, mask)
    for cls, pairs in load_pairs(data_dir).items():
        for image_path, mask_path in pairs:
            img = load_image(image_path).image
            items.append((cls, img, load_mask(mask_path, size=img.size, allow_empty=True)))
    photos = [p for p in sorted(PHOTOS.glob("photo_*.jpg"))
              if not p.stem.endswith(("_bw", "_night"))]
    feats = [panet.features(pipeline.tensor(img)) for _, img, _ in items]
    photo_feats = [panet.features(pipeline.tensor(load_image(p).image)) for p in photos]
    rows = []
    for i, (cls, img, mask) in enumerate(items):
        protos = panet.prototypes([pipeline.support_tensors([(img, mask)])])
        for j, (cls_q, _, _) in enumerate(items):
            if j != i:
                ratio = panet.presence(feats[j], protos)
                rows.append(("present" if cls_q == cls else "other class", float(ratio[0])))
        rows += [("photo", float(panet.presence(f, protos)[0])) for f in photo_feats]
    support = load_image(EXAMPLE / "support.jpg").image
    protos = panet.prototypes([pipeline.support_tensors(
        [(support, load_mask(EXAMPLE / "support_mask.png", size=support.size))])])
    query = panet.features(pipeline.tensor(load_image(EXAMPLE / "query.jpg").image))
    rows.append(("example present", float(panet.presence(query, protos)[0])))
    rows += [("example photo", float(panet.presence(f, protos)[0])) for f in photo_feats]
    return {"rows": rows, "photos": [p.name for p in photos], "model": pipeline.name}


def rates(rows: list[tuple[str, float]], threshold: float) -> dict[str, tuple[int, int]]:
    """{kind: (correct decisions, pairs)} at ``threshold`` (present: ratio >= threshold)."""
    out = {}
    for kind in dict.fromkeys(k for k, _ in rows):
        r = np.array([v for k, v in rows if k == kind])
        ok = r >= threshold if "present" in kind else r < threshold
        out[kind] = (int(ok.sum()), int(r.size))
    return out


def main() -> None:
    from engine.segmentation.panet import PRESENCE_RATIO
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "assets" / "segmentation" / "eval")
    parser.add_argument("--json", type=Path, help="also write every ratio as JSON here")
    args = parser.parse_args()
    figures = evaluate(args.data)
    rows = figures["rows"]
    for threshold in sorted({PRESENCE_RATIO, 0.3, 0.5, 0.66}):
        mark = "  <- in use" if threshold == PRESENCE_RATIO else ""
        print(f"threshold {threshold:.2f}{mark}")
        for kind, (ok, n) in rates(rows, threshold).items():
            print(f"  {kind:16s} correct {ok:4d}/{n:<4d} ({ok / n:.3f})")
    eval_rows = [r for r in rows if not r[0].startswith("example")]
    ok = sum(c for c, _ in rates(eval_rows, PRESENCE_RATIO).values())
    print(f"all eval decisions at {PRESENCE_RATIO:g}: {ok}/{len(eval_rows)} "
          f"({ok / len(eval_rows):.3f})")
    try:
        from sklearn.metrics import roc_auc_score
        for neg in ("other class", "photo"):
            sel = [(k == "present", v) for k, v in eval_rows if k in ("present", neg)]
            y, v = zip(*sel)
            print(f"AUC present vs {neg}: {roc_auc_score(y, v):.3f}")
    except ImportError:
        pass
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
