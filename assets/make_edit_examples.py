"""Write the painted masks of the "Edit by text" tab's caption + mask examples.

    python assets/make_edit_examples.py       # writes assets/examples/edit/*.png (deterministic)

Each mask is an RGBA layer like the one Gradio's image editor produces: opaque white where the
region is painted, transparent elsewhere, at the size of its photo in ``assets/examples``.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

SRC = Path(__file__).resolve().parent / "examples"
OUT = SRC / "edit"

#: mask file -> (photo, shape, box (x0, y0, x1, y1) in the photo's pixels, example caption)
MASKS = {
    "astronaut_shuttle_mask.png": ("astronaut.jpg", "rectangle", (340, 0, 472, 272), "nothing"),
    "astronaut_helmet_mask.png": ("astronaut.jpg", "ellipse", (282, 330, 512, 512), "gold"),
    "coffee_saucer_mask.png": ("coffee.jpg", "ellipse", (60, 55, 555, 390), "green"),
}


def make_mask(photo: str, shape: str, box: tuple[int, int, int, int]) -> Image.Image:
    """An RGBA layer the size of ``photo`` with ``box`` painted (opaque white)."""
    size = Image.open(SRC / photo).size
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    (draw.rectangle if shape == "rectangle" else draw.ellipse)(box, fill=(255, 255, 255, 255))
    return layer


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (photo, shape, box, _) in MASKS.items():
        make_mask(photo, shape, box).save(OUT / name)
        print(name)


if __name__ == "__main__":
    main()
