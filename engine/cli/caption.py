"""``python -m engine caption IMAGE [IMAGE ...] [--model NAME]``: one JSON line per image."""
from __future__ import annotations

import sys

from engine.cli import add_model_option, emit, pipeline_for


def register(sub) -> None:
    p = sub.add_parser("caption", help="caption images (tags + sentence)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_model_option(p, "efficientnet_lite0 (offline tags, the default), a hub captioner "
                        "(blip-base) or scene-captioner (the learned scene-world captioner)")
    p.add_argument("--top-k", type=int, default=5, help="tags per image (1..20)")
    p.add_argument("--decoding", choices=["beam", "nucleus"], default="beam",
                   help="hub captioners: beam search or nucleus sampling")
    p.add_argument("--seed", type=int, default=0, help="seed of nucleus sampling")
    p.add_argument("--attention-dir", default=None,
                   help="scene-captioner: save each word's cross-attention map here as PNG")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.inputs.images import ImageInputError, load_image
    status, pipe, choice_notes = 0, None, []
    for path in args.images:
        try:
            loaded = load_image(path)
        except ImageInputError as exc:  # one bad file does not stop the batch
            sys.stderr.write(f"error: {exc}\n")
            status = 2
            continue
        if args.model == "scene-captioner":  # the scene world's learned captioner
            from engine.cli.scene_captioner import caption_image
            emit({"image": path, **caption_image(loaded.image, args.model, args.decoding,
                                                 seed=args.seed,
                                                 attention_dir=args.attention_dir),
                  "notes": list(loaded.notes)})
            continue
        if pipe is None:  # chosen on the first good image (a hub model may fall back)
            pipe, choice_notes = pipeline_for("caption", args)
        result = pipe(loaded.image, top_k=args.top_k, decoding=args.decoding, seed=args.seed)
        emit({"image": path, **result.to_json(), "notes": list(loaded.notes) + choice_notes})
    return status
