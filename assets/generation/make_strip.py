"""Draw docs/generate_strip.png: the denoising strip of one prompt (x_t from pure noise to the
image, 25 DDIM steps, guidance 3, seed 0), each 32x32 frame shown 4x.

    python assets/generation/make_strip.py
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch
    from PIL import Image
    from engine.factory import get_pipeline
    torch.set_num_threads(1)
    r = get_pipeline("generate")("a large blue metal sphere left of a small yellow cube",
                                 seed=0, steps=25, guidance=3.0)
    cell = 128
    gap = 4
    strip = Image.new("RGB", ((cell + gap) * len(r.frames) - gap, cell), "white")
    for k, frame in enumerate(r.frames):
        strip.paste(Image.fromarray(frame).resize((cell, cell), Image.Resampling.NEAREST),
                    (k * (cell + gap), 0))
    strip.save(ROOT / "docs" / "generate_strip.png")
    print("steps:", r.frame_steps)


if __name__ == "__main__":
    main()
