"""``python -m engine retrieve --gallery DIR --reference IMAGE --text TEXT [--top-k K]
[--model NAME] [--weight W]``: composed image retrieval, one JSON line.

The gallery's index is cached on disk (see :mod:`engine.retrieval.index`) and reused
while its files are unchanged.
"""
from __future__ import annotations

from engine.cli import add_model_option, emit, pipeline_for


def register(sub) -> None:
    p = sub.add_parser("retrieve", help="composed image retrieval (reference image + text)")
    p.add_argument("--gallery", required=True, metavar="DIR", help="folder of gallery images")
    p.add_argument("--reference", required=True, metavar="IMAGE", help="reference image")
    p.add_argument("--text", required=True, help='modification text, e.g. "at night"')
    p.add_argument("--top-k", type=int, default=10, help="results (1..100)")
    add_model_option(p, "efficientnet_lite0 (offline ConSE + visual features) or "
                        "openclip-vit-b-32 (hub)", default="efficientnet_lite0")
    p.add_argument("--weight", type=float, default=0.5,
                   help="share of the text (explicit) match in [0, 1]; the rest goes to "
                        "similarity with the reference")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.factory import check_model
    from engine.inputs.images import load_image
    from engine.inputs.text import clean_text
    from engine.retrieval.pipeline import image_digest
    check_model("retrieve", args.model)  # an unknown name is refused before anything is read
    clean_text(args.text, field="modification text")  # refuse empty text before indexing
    reference = load_image(args.reference)
    pipeline, choice_notes = pipeline_for("retrieve", args)
    index, notes = pipeline.index_folder(args.gallery)
    result = pipeline(reference.image, args.text, index=index, weight=args.weight,
                      top_k=args.top_k, reference_hash=image_digest(args.reference))
    out = result.to_json()
    out["notes"] = list(reference.notes) + choice_notes + notes + out["notes"]
    emit(out)
    return 0
