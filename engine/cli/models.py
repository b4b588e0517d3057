"""``python -m engine list-models``: every registered model, one JSON line each."""
from __future__ import annotations

from engine.cli import emit


def register(sub) -> None:
    p = sub.add_parser("list-models", help="list registered models and few-shot methods")
    p.add_argument("--task", help="only models of this task (backbone, text, caption, ...)")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.fewshot.methods import list_methods
    from engine.models import get_spec, list_models
    for name in list_models(task=args.task):
        spec = get_spec(name)
        emit({"model": name, "task": spec.task, "source": spec.source,
              "description": spec.description, "weights": spec.weights,
              "license": spec.license, "size_mb": spec.size_mb})
    if args.task in (None, "fewshot-method"):
        for name in list_methods():
            emit({"method": name, "task": "fewshot-method"})
    return 0
