"""Draw docs/scene_captioner_attention.png: held-out test scenes, the shipped captioner's greedy
caption, and the cross-attention map of each object noun (where the decoder looked when it
wrote the word).

    python assets/scenes/make_caption_attention.py [--seeds 2000001 2000002] [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import numpy as np
    import torch
    from matplotlib import pyplot as plt
    from PIL import Image

    from engine.models.scene_captioner import detokenize, load_captioner
    from engine.scenes.captioner import grid_features
    from engine.scenes.dataset import SPLIT_SEEDS, DatasetSpec, scene_item
    from engine.scenes.render import render
    from engine.scenes.scene import SHAPES
    from engine.viz import overlay_heatmap

    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, nargs="+", default=[1, 2],
                    help="items of the test split (seed 2,000,000 + item)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "scene_captioner_attention.png"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = load_captioner()
    spec = DatasetSpec("scenes", "test", max(args.items) + 1)
    rows = []
    for i in args.items:
        scene, _ = scene_item(spec, i)
        img = render(scene, 128).image
        big = Image.fromarray(render(scene, 256).image)
        ids, maps = net.greedy(grid_features(net, img[None]).float())
        words = net.decode_ids(ids[0])
        nouns = [k for k, w in enumerate(words) if w in SHAPES][:6]
        rows.append((big, detokenize(words), [(words[k], maps[0][k].numpy()) for k in nouns]))
    cols = 1 + max(len(r[2]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.2 * cols, 2.9 * len(rows)))
    axes = np.atleast_2d(axes)
    for r, (big, caption, nouns) in enumerate(rows):
        for ax in axes[r]:
            ax.axis("off")
        axes[r, 0].imshow(big)
        axes[r, 0].set_title(f"test item {args.items[r]}", fontsize=8)
        for c, (word, m) in enumerate(nouns, start=1):
            axes[r, c].imshow(overlay_heatmap(big, m, alpha=0.55))
            axes[r, c].set_title(f'word {c}: "{word}"', fontsize=8)
        fig.text(0.01, 1 - (r + 1) / len(rows) + 0.005, "\n".join(textwrap.wrap(caption, 170)),
                 fontsize=6.5, va="bottom")
    fig.tight_layout(rect=(0, 0.0, 1, 1), h_pad=3.0)
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
