"""``python -m engine change BEFORE AFTER [--model NAME] [--threshold T]``: one JSON line with
``changes`` (type, sentence, box in after-image pixels), ``caption``, ``model``, ``ms``.

``--model duda`` uses the learned change captioner of the scene world instead (DUDA, Park et
al., ICCV 2019): ``caption``, ``no_change``, ``dynamic_attention`` (per word, the weights of the
before / difference / after features) and ``attention`` (paths of the two dual-attention maps,
drawn over the images, in ``--attention DIR``)."""
from __future__ import annotations

import time

from engine.cli import add_model_option, emit, pipeline_for


def register(sub) -> None:
    p = sub.add_parser("change", help="describe the changes between a before and an after image")
    p.add_argument("before", metavar="BEFORE")
    p.add_argument("after", metavar="AFTER")
    add_model_option(p, "efficientnet_lite0 (offline ImageNet names, the default) or a hub "
                        "captioner (blip-base) describing each region; duda: the learned change "
                        "captioner of the scene world")
    p.add_argument("--threshold", type=float, default=None,
                   help="difference (0..1) above which a pixel counts as changed")
    p.add_argument("--attention", default=None, metavar="DIR",
                   help="with --model duda: folder for the attention maps (default: a new "
                        "temporary folder)")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.change.detection import THRESHOLD
    from engine.inputs.images import load_image
    before = load_image(args.before, name=args.before)
    after = load_image(args.after, name=args.after)
    if args.model == "duda":
        return _run_duda(args, before, after)
    pipe, choice_notes = pipeline_for("change", args)
    result = pipe(before.image, after.image,
                  threshold=THRESHOLD if args.threshold is None else args.threshold)
    emit({"before": args.before, "after": args.after, **result.to_json(),
          "notes": list(before.notes) + list(after.notes) + choice_notes + result.notes})
    return 0


def _run_duda(args, before, after) -> int:
    import tempfile
    from pathlib import Path

    import numpy as np

    from engine.factory import change_captioner
    from engine.viz import overlay_heatmap
    t0 = time.perf_counter()
    captioner = change_captioner("duda")
    size = captioner.image_size
    imgs = [im.image.convert("RGB").resize((size, size)) for im in (before, after)]
    result = captioner(np.asarray(imgs[0]), np.asarray(imgs[1]))[0]
    folder = Path(args.attention) if args.attention else Path(tempfile.mkdtemp(prefix="duda-"))
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} does not exist")
    paths = {}
    for side, img, amap in (("before", before.image, result.map_before),
                            ("after", after.image, result.map_after)):
        path = folder / f"duda_attention_{side}.png"
        overlay_heatmap(img.convert("RGB"), amap, alpha=0.5).save(path)
        paths[side] = str(path)
    notes = list(before.notes) + list(after.notes)
    if max(before.image.size) > 4 * size:
        notes.append(f"DUDA reads {size}x{size} renders of the scene world; on photos its "
                     f"caption is not meaningful")
    emit({"before": args.before, "after": args.after, "model": "duda", **result.to_json(),
          "attention": paths, "ms": round(1000 * (time.perf_counter() - t0), 1),
          "notes": notes})
    return 0
