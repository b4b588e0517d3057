"""``python -m engine list-models``: every registered model and few-shot method, one JSON line
each (a method's line says where it is offered: over photos' frozen features, meta-training)."""
from __future__ import annotations

from engine.cli import emit


def register(sub) -> None:
    p = sub.add_parser("list-models", help="list registered models and few-shot methods")
    p.add_argument("--task", help="only models of this task (backbone, text, caption, ...; "
                                  "fewshot-method for the few-shot methods)")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.errors import UserInputError, unknown_name_message
    from engine.factory import list_models, model_info
    from engine.fewshot.methods import list_methods, method_class
    tasks = sorted({model_info(n).task for n in list_models()}) + ["fewshot-method"]
    if args.task is not None and args.task not in tasks:
        raise UserInputError(unknown_name_message("task", args.task, tasks))
    for name in list_models(task=args.task):
        spec = model_info(name)
        emit({"model": name, "task": spec.task, "source": spec.source,
              "description": spec.description, "weights": spec.weights,
              "license": spec.license, "size_mb": spec.size_mb})
    if args.task in (None, "fewshot-method"):
        for name in list_methods():
            cls = method_class(name)
            emit({"method": name, "task": "fewshot-method", "title": cls.title,
                  "photos": cls.frozen_defaults is not None,
                  "meta_training": cls.train_setup is not None})
    return 0
