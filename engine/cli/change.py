"""``python -m engine change BEFORE AFTER [--model NAME] [--threshold T]``: one JSON line with
``changes`` (type, sentence, box in after-image pixels), ``caption``, ``model``, ``ms``."""
from __future__ import annotations

from engine.cli import add_model_option, emit, pipeline_for


def register(sub) -> None:
    p = sub.add_parser("change", help="describe the changes between a before and an after image")
    p.add_argument("before", metavar="BEFORE")
    p.add_argument("after", metavar="AFTER")
    add_model_option(p, "efficientnet_lite0 (offline ImageNet names, the default) or a hub "
                        "captioner (blip-base) describing each region")
    p.add_argument("--threshold", type=float, default=None,
                   help="difference (0..1) above which a pixel counts as changed")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.change.detection import THRESHOLD
    from engine.inputs.images import load_image
    before = load_image(args.before, name=args.before)
    after = load_image(args.after, name=args.after)
    pipe, choice_notes = pipeline_for("change", args)
    result = pipe(before.image, after.image,
                  threshold=THRESHOLD if args.threshold is None else args.threshold)
    emit({"before": args.before, "after": args.after, **result.to_json(),
          "notes": list(before.notes) + list(after.notes) + choice_notes + result.notes})
    return 0
