"""``python -m engine classify --support DIR --query IMAGE [...] [--method M] [--model NAME]``.

DIR holds one sub-folder per class (ImageFolder layout); each query gives one JSON line.
"""
from __future__ import annotations

from pathlib import Path

from engine.cli import emit

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


def register(sub) -> None:
    p = sub.add_parser("classify", help="few-shot classification from a support folder")
    p.add_argument("--support", required=True, metavar="DIR",
                   help="folder with one sub-folder of images per class")
    p.add_argument("--query", required=True, nargs="+", metavar="IMAGE")
    p.add_argument("--method", default="protonet",
                   help="over a photo backbone: protonet, cosine or linear")
    p.add_argument("--model", default="efficientnet_lite0",
                   help="a photo backbone (efficientnet_lite0, openclip-vit-b-32) or a "
                        "meta-learned handwriting model (omniglot-*, see list-models)")
    p.set_defaults(func=run)


def read_support_folder(root: str | Path) -> list[tuple[str, list]]:
    """Load an ImageFolder-layout support set: [(class name, [RGB images])], sorted by name.

    Raises:
        ValueError: DIR missing, or no class sub-folders; bad images name the file.
    """
    from engine.inputs.images import load_image
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"support folder {str(root)!r} does not exist")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"support folder {str(root)!r} has no class sub-folders")
    support = []
    for folder in classes:
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        support.append((folder.name, [load_image(f).image for f in files]))
    return support


def run(args) -> int:
    from engine.inputs.images import load_image
    from engine.fewshot.pipeline import FewShotPipeline
    from engine.models import list_models
    support = read_support_folder(args.support)
    queries = [load_image(q).image for q in args.query]
    if args.model in list_models(task="fewshot"):  # meta-learned on Omniglot: drawings
        from engine.fewshot.handwriting import classify_handwriting
        images = [img for _, imgs in support for img in imgs]
        labels = [name for name, imgs in support for _ in imgs]
        result = classify_handwriting(images, labels, queries, args.model,
                                      classes=[name for name, _ in support])
    else:
        result = FewShotPipeline()(support, queries, method=args.method, model=args.model)
    for path, pred in zip(args.query, result.predictions):
        emit({"query": path, "label": pred.label,
              "probabilities": {k: round(v, 6) for k, v in pred.probabilities.items()},
              "method": result.method, "model": result.model,
              "ms": round(result.ms / len(queries), 1)})  # model call, loading excluded
    return 0
