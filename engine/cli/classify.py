"""``python -m engine classify --support DIR --query IMAGE [...] [--method M] [--model NAME]``.

DIR holds one sub-folder per class (ImageFolder layout; the folder names are the class names,
NFC-normalised with spaces collapsed, and two folders naming one class up to case, spaces or
Unicode form are refused); each query gives one JSON line: ``label`` (null when classes are
tied: ``tied`` lists them), ``probabilities``, ``notes`` (an inverted drawing, a very small
image, a tie or a close call). A photo backbone runs the few-shot pipeline over frozen
features; an Omniglot model (``omniglot-*``) runs the handwriting pipeline, all queries of a
call in one episode.
"""
from __future__ import annotations

from engine.cli import add_model_option, emit, pipeline_for


def register(sub) -> None:
    p = sub.add_parser("classify", help="few-shot classification from a support folder")
    p.add_argument("--support", required=True, metavar="DIR",
                   help="folder with one sub-folder of images per class")
    p.add_argument("--query", required=True, nargs="+", metavar="IMAGE")
    p.add_argument("--method", default=None,
                   help="over a photo backbone: a method offered over frozen features "
                        "(default protonet; see list-models --task fewshot-method)")
    add_model_option(p, "a photo backbone (efficientnet_lite0, openclip-vit-b-32) or a "
                        "meta-learned handwriting model (omniglot-*, see list-models)",
                     default="efficientnet_lite0")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine import factory
    from engine.fewshot.support import read_support_folder
    from engine.inputs.images import load_image
    support = read_support_folder(args.support)
    queries = [load_image(q).image for q in args.query]
    notes: list[str] = []
    if args.model in factory.handwriting_models(include_variants=True):  # drawings (embedded)
        pipeline = factory.handwriting_pipeline(args.model)
    else:
        pipeline, notes = pipeline_for("fewshot", args)
    result = pipeline(support, queries, method=args.method)
    for path, pred in zip(args.query, result.predictions):
        emit({"query": path, "label": pred.answer,  # null when classes are tied
              "probabilities": {k: round(v, 6) for k, v in pred.probabilities.items()},
              "tied": pred.tied, "method": result.method, "model": result.model,
              "ms": round(result.ms / len(queries), 1),  # model call, loading excluded
              "notes": [*notes, *result.notes, *pred.notes]})
    return 0
