"""Write the handwriting examples of the Few-shot tab from held-out Omniglot alphabets.

    python assets/make_handwriting_examples.py      # needs ../shared/data/omniglot (or $OMNIGLOT_DIR)

Picks 3 characters of the *test* alphabet Korean (never seen in meta-training): drawers 1 and 2
become the support set, drawer 3 the queries. Omniglot is MIT-licensed (Lake et al., 2015).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OUT = Path(__file__).resolve().parent / "examples" / "handwriting"
CHARACTERS = ("Korean/character01", "Korean/character05", "Korean/character12")
SUPPORT_DRAWERS, QUERY_DRAWER = (0, 1), 2


def main() -> None:
    from engine.fewshot.omniglot import character_files
    chars = character_files()
    if OUT.exists():
        shutil.rmtree(OUT)
    for n, key in enumerate(CHARACTERS, start=1):
        files = chars[key]
        name = f"symbol_{n}"
        for d in SUPPORT_DRAWERS:
            dst = OUT / "support" / name / f"{name}_drawer{d + 1}.png"
            dst.parent.mkdir(parents=True, exist_ok=True)
            Image.open(files[d]).convert("L").save(dst)
        dst = OUT / "query" / f"{name}_query.png"
        dst.parent.mkdir(parents=True, exist_ok=True)
        Image.open(files[QUERY_DRAWER]).convert("L").save(dst)
    (OUT / "SOURCES.md").write_text(
        "# Handwriting examples\n\nFrom Omniglot (Lake, Salakhutdinov & Tenenbaum, Science 2015; "
        "MIT licence), test alphabet Korean, characters "
        + ", ".join(CHARACTERS) + f"; support = drawers {[d + 1 for d in SUPPORT_DRAWERS]}, "
        f"query = drawer {QUERY_DRAWER + 1}. Written by `python assets/make_handwriting_examples.py`.\n")
    print(f"wrote {len(CHARACTERS)} classes to {OUT}")


if __name__ == "__main__":
    main()
