"""``python -m engine segment --support IMAGE MASK [--support IMAGE MASK ...] --query IMAGE
--out MASK.png [--model NAME]``: few-shot segmentation (PANet), one JSON line.

``python -m engine segment-eval --data DIR --way N --shot K --episodes E``: mean IoU over
N-way K-shot episodes (see :mod:`engine.segmentation.evaluate`).

Both get their pipeline through :func:`engine.cli.pipeline_for` ("segment", ``--model``): a hub
model the machine cannot reach falls back to the embedded one and ``notes`` say so
(``--no-fallback``: the one-line hub message and exit status 2 instead).
"""
from __future__ import annotations

from pathlib import Path

from engine.cli import add_model_option, emit, pipeline_for

#: Lossless formats the query's mask may be written in, by --out suffix (JPEG would blur 0/255).
MASK_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


def register(sub) -> None:
    p = sub.add_parser("segment", help="few-shot segmentation from 1-5 masked support images")
    p.add_argument("--support", nargs=2, action="append", required=True,
                   metavar=("IMAGE", "MASK"), help="a support image and its mask (white = "
                   "object); repeat for up to 5")
    p.add_argument("--query", required=True, metavar="IMAGE")
    p.add_argument("--out", required=True, metavar="MASK.png",
                   help="where to write the query's binary mask (0/255, query size) as PNG, "
                        "or BMP / TIFF by its suffix")
    add_model_option(p, "efficientnet_lite0 (offline, default) or smp-convnext-tiny (hub)")
    p.add_argument("--threshold", type=float, default=0.5, help="foreground probability cut")
    p.set_defaults(func=run)
    e = sub.add_parser("segment-eval", help="mean IoU of few-shot segmentation in episodes")
    e.add_argument("--data", required=True, metavar="DIR",
                   help="DIR/<class>/<name>.jpg with <name>_mask.png beside it")
    e.add_argument("--way", type=int, default=1)
    e.add_argument("--shot", type=int, default=1)
    e.add_argument("--episodes", type=int, default=20)
    e.add_argument("--seed", type=int, default=0)
    add_model_option(e, "efficientnet_lite0 (offline, default) or smp-convnext-tiny (hub)")
    e.add_argument("--refine-steps", type=int, default=None,
                   help="self-support refinement rounds (default: the pipeline's, 2; 0: plain "
                        "PANet)")
    e.set_defaults(func=run_eval)


def run(args) -> int:
    import numpy as np
    from PIL import Image

    from engine.errors import UserInputError
    from engine.inputs.images import load_image, load_mask
    out_format = MASK_FORMATS.get(Path(args.out).suffix.lower())
    if out_format is None:  # refused before any image is read or model loaded
        raise UserInputError(f"--out {args.out}: a mask is written losslessly; use a .png, "
                             f".bmp or .tif file name")
    support = []
    for image_path, mask_path in args.support:
        img = load_image(image_path).image
        support.append((img, load_mask(mask_path, size=img.size)))
    query = load_image(args.query)
    pipe, choice_notes = pipeline_for("segment", args)
    result = pipe(support, query.image, threshold=args.threshold)
    mask = Image.fromarray(result.mask.astype(np.uint8) * 255)
    if mask.size != query.original_size:  # the query was downscaled on load: back to its size
        mask = mask.resize(query.original_size, Image.Resampling.NEAREST)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    mask.save(args.out, format=out_format)
    out = result.to_json()
    out.update(size=list(mask.size), out=args.out)
    out["foreground_pixels"] = int((np.asarray(mask) > 0).sum())
    out["notes"] = list(query.notes) + choice_notes + out["notes"]
    emit(out)
    return 0


def run_eval(args) -> int:
    from engine.segmentation.evaluate import evaluate
    pipe, choice_notes = pipeline_for("segment", args)
    res = evaluate(pipe, args.data, args.way, args.shot, args.episodes, args.seed,
                   args.refine_steps)
    res["ms"] = round(res["ms"], 1)
    res["miou"], res["foreground_iou"] = round(res["miou"], 4), round(res["foreground_iou"], 4)
    res["per_class"] = {k: round(v, 4) for k, v in res["per_class"].items()}
    res["data"] = args.data
    res["notes"] = choice_notes
    emit(res)
    return 0
