"""Draw docs/scenes_sheet.png: 8 random scenes and 4 CLEVR-Change pairs with their captions.

    python assets/scenes/make_contact_sheet.py [--size 192] [--out docs/scenes_sheet.png]

Scenes are seeds 0-7 (``python -m engine render-scene --seed N``); the pairs are seeds 0-3 of
the colour, add, move and distractor types (``render-change --seed N --type T``). The changed
object's mask is outlined in red in both images.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.scenes.changes import sample_change_pair  # noqa: E402
from engine.scenes.render import render  # noqa: E402
from engine.scenes.sampling import sample_scene  # noqa: E402


def outline(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with the border pixels of ``mask`` painted red."""
    m = mask.astype(bool)
    inner = m.copy()
    inner[1:] &= m[:-1]
    inner[:-1] &= m[1:]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    out = image.copy()
    out[m & ~inner] = (255, 40, 40)
    return out


def labelled(image: np.ndarray, text: str, width: int) -> Image.Image:
    """The image with ``text`` written under it."""
    h = image.shape[0]
    tile = Image.new("RGB", (width, h + 18), "white")
    tile.paste(Image.fromarray(image), (0, 0))
    ImageDraw.Draw(tile).text((4, h + 3), text, fill="black")
    return tile


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--out", default=str(ROOT / "docs" / "scenes_sheet.png"))
    args = ap.parse_args()
    s = args.size
    tiles = [labelled(render(sample_scene(i), s).image, f"scene seed {i}", s) for i in range(8)]
    rows = [tiles[:4], tiles[4:]]
    for seed, kind in enumerate(("color", "add", "move", "distractor")):
        pair = sample_change_pair(seed, kind)
        r = pair.render(s)
        before, after = r.before.image, r.after.image
        if pair.changes:
            before = outline(before, r.before_masks[0])
            after = outline(after, r.after_masks[0])
        both = np.concatenate([before, np.full((s, 4, 3), 255, np.uint8), after], 1)
        tile = labelled(both, f"{kind} (seed {seed}): {pair.captions[0]}", 2 * s + 4)
        if seed % 2 == 0:
            rows.append([])
        rows[-1].append(tile)
    gap = 6
    width = max(sum(t.width for t in row) + gap * (len(row) - 1) for row in rows)
    height = sum(max(t.height for t in row) for row in rows) + gap * (len(rows) - 1)
    sheet = Image.new("RGB", (width, height), "white")
    y = 0
    for row in rows:
        x = 0
        for t in row:
            sheet.paste(t, (x, y))
            x += t.width + gap
        y += max(t.height for t in row) + gap
    sheet.save(args.out, optimize=True)
    print(args.out, sheet.size)


if __name__ == "__main__":
    main()
