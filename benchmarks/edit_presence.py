"""How sure the classifier is that an object an edit names is in the photo: the figures behind
``engine.editing.localize.MIN_PROBABILITY``.

    python -m benchmarks.edit_presence [--threshold 0.01] [--out FILE]

For each of the 7 bundled photos (``assets/examples/*.jpg``) and each object word of three
lists, the summed probability EfficientNet-Lite0 gives the ImageNet classes the word is matched
to (MiniLM, exactly as the offline editor matches them): the objects the Edit tab's examples
and docs name on that photo (they must still edit), other things the photo shows, and 16
objects none of the photos shows (they must be refused). Prints one JSON object: every
(photo, word, probability) row, and per list how many rows reach the threshold. Only the
classifier runs (no localisation) and each word is embedded once: about 10 s on a loaded
2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"

#: Objects the Edit tab's examples, its docs and its tests name on each photo.
EXAMPLE_OBJECTS = {"cat": ["cat"], "flower": ["flower"], "coffee": ["cup", "coffee cup"],
                   "astronaut": ["helmet"]}
#: Other things the photos show, in the words a user would type.
SHOWN = {"cat": ["kitten", "tabby cat", "eyes"],
         "coffee": ["coffee", "saucer", "mug", "espresso", "spoon", "table", "plate"],
         "flower": ["dahlia", "petals", "leaves"],
         "rocket": ["rocket", "missile", "tower", "lights", "sky"],
         "china_temple": ["temple", "pagoda", "palace", "lake", "building", "roof", "tree"],
         "grace_hopper": ["uniform", "tie", "suit", "hat", "glasses", "flag", "face", "woman"],
         "astronaut": ["astronaut", "suit", "flag", "space shuttle", "face", "hair", "woman"]}
#: Objects none of the bundled photos shows.
ABSENT = ["dog", "motorcycle", "car", "guitar", "banana", "elephant", "airplane", "pizza",
          "horse", "bicycle", "laptop", "keyboard", "boat", "bird", "shoe", "piñata"]
PHOTOS = ["cat", "coffee", "flower", "rocket", "china_temple", "grace_hopper", "astronaut"]


class _Memo:
    """The localiser's text encoder with every word embedded once, in one batch (the words
    repeat over the photos; one-by-one encoding took most of the run)."""

    def __init__(self, encoder, texts: list[str]) -> None:
        from types import SimpleNamespace
        texts = sorted(set(texts))
        rows = encoder.encode(texts).embeddings  # (T, D)
        self.seen = {t: SimpleNamespace(embeddings=rows[i:i + 1]) for i, t in enumerate(texts)}

    def encode(self, texts: list[str]):
        (text,) = texts  # the localiser embeds one phrase at a time
        return self.seen[text]


def measure(threshold: float) -> dict:
    """Probabilities of every (photo, word) pair and the counts at ``threshold``."""
    from engine.editing.localize import MIN_SIMILARITY, Localiser
    from engine.errors import UserInputError
    from engine.factory import get_pipeline
    from engine.inputs.images import load_image
    app = get_pipeline("edit").editor.localiser
    every = ABSENT + [w for lists in (EXAMPLE_OBJECTS, SHOWN) for ws in lists.values()
                      for w in ws]
    localiser = Localiser(app.backbone, app.preprocess, _Memo(app.text_encoder, every),
                          app.class_text)
    rows = []
    for photo in PHOTOS:
        _, probs = localiser._classify(load_image(EXAMPLES / f"{photo}.jpg").image)
        lists = [("example", EXAMPLE_OBJECTS.get(photo, [])), ("shown", SHOWN[photo]),
                 ("absent", ABSENT)]
        for kind, objects in lists:
            for word in objects:
                try:
                    classes, sim = localiser.match_classes(word, probs)
                except UserInputError:  # no class name within MIN_SIMILARITY: refused anyway
                    rows.append({"photo": photo, "word": word, "list": kind,
                                 "probability": None, "similarity_below": MIN_SIMILARITY})
                    continue
                rows.append({"photo": photo, "word": word, "list": kind,
                             "probability": round(float(probs[classes].sum()), 4),
                             "classes": [localiser.class_text.class_names[i]
                                         for i in classes[:3]]})
    summary = {}
    for kind in ("example", "shown", "absent"):
        ps = [r["probability"] for r in rows if r["list"] == kind]
        found = [p for p in ps if p is not None and p >= threshold]
        summary[kind] = {"pairs": len(ps), "edited": len(found),
                         "min": min((p for p in ps if p is not None), default=None),
                         "max": max((p for p in ps if p is not None), default=None)}
    absent_edited = [f"{r['word']} on {r['photo']} ({r['probability']})" for r in rows
                     if r["list"] == "absent" and (r["probability"] or 0) >= threshold]
    return {"threshold": threshold, "summary": summary, "absent_edited": absent_edited,
            "rows": rows}


def main(argv: list[str] | None = None) -> int:
    from engine.editing.localize import MIN_PROBABILITY
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threshold", type=float, default=MIN_PROBABILITY)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    result = measure(args.threshold)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(json.dumps({k: result[k] for k in ("threshold", "summary", "absent_edited")},
                     ensure_ascii=False))
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
