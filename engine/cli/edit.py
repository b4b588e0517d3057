"""``python -m engine edit IMAGE --text TEXT [--mask MASK] [--seed N] [--model NAME] --out OUT``:
writes the edited image to OUT (PNG unless OUT's extension says otherwise) and prints one JSON
line with ``operation``, ``target``, ``changed_fraction``, ``model``, ``ms``."""
from __future__ import annotations

from pathlib import Path

from engine.cli import add_model_option, emit, pipeline_for


def register(sub) -> None:
    p = sub.add_parser("edit", help="edit an image by text (instruction, or caption + mask)")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--text", required=True,
                   help="instruction ('make the cat red') or caption of the masked region")
    p.add_argument("--mask", default=None,
                   help="mask image (white or opaque = region to change), resized to IMAGE")
    p.add_argument("--seed", type=int, default=0, help="seed of hub models' sampling")
    add_model_option(p, "efficientnet_lite0 (offline editor, the default) or a hub editor "
                        "(instruct-pix2pix, sd-inpainting)")
    p.add_argument("--steps", type=int, default=20, help="hub models: denoising steps")
    p.add_argument("--guidance", type=float, default=7.5, help="hub models: text guidance")
    p.add_argument("--image-guidance", type=float, default=1.5,
                   help="instruct-pix2pix: image guidance")
    p.add_argument("--out", required=True, metavar="OUT", help="where to write the edited image")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.errors import UserInputError
    from engine.inputs.images import load_image, load_mask
    from engine.inputs.text import clean_text
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"):
        raise UserInputError(f"--out {args.out}: use a .png, .jpg, .webp, .bmp or .tif file name")
    loaded = load_image(args.image, name=args.image)
    text = clean_text(args.text, field="instruction")
    mask = None if args.mask is None else load_mask(args.mask, size=loaded.image.size,
                                                    name=args.mask)
    pipe, choice_notes = pipeline_for("edit", args)
    result = pipe(loaded.image, text.text, mask, seed=args.seed, steps=args.steps,
                  guidance_scale=args.guidance, image_guidance_scale=args.image_guidance)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(out)
    emit({"image": args.image, "out": str(out), **result.to_json(),
          "notes": list(loaded.notes) + list(text.notes) + choice_notes + result.notes})
    return 0
