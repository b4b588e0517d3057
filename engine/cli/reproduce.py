"""``python -m engine reproduce RECIPE [--files DIR ...]``: run a result's reproduce JSON again.

The recipe (the "Reproduce" download beside a caption, an edit or a few-shot result; format in
:mod:`engine.recipe`) names its input images by the hash of their decoded pixels; they are
looked for in ``--files`` folders (or files), the recipe's folder and ``assets/`` (the bundled
examples). Prints one JSON line: ``reproduced`` (the new output equals the recorded one),
``output``, ``recorded``, and the library versions that differ from the recipe's. Exit status
0 when reproduced, 1 when the output differs, 2 for a user's mistake (a missing input, not a
recipe). A hub model the machine cannot reach falls back as elsewhere, which the notes say (its
output then differs).
"""
from __future__ import annotations

from pathlib import Path

from engine.cli import emit


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="run a result's reproduce JSON again and compare")
    p.add_argument("recipe", metavar="RECIPE", help="the reproduce JSON")
    p.add_argument("--files", nargs="*", default=[], metavar="DIR",
                   help="folders (searched recursively) or files holding the input images")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.factory import choose_pipeline
    from engine.recipe import ASSETS, find_inputs, read_recipe, run as run_recipe, versions
    recipe = read_recipe(args.recipe)
    folders = [Path(f) for f in args.files] + [Path(args.recipe).resolve().parent, ASSETS]
    inputs = find_inputs(recipe, folders)
    choice = choose_pipeline(recipe["command"], recipe["model"])
    output = run_recipe(recipe, inputs, choice.pipeline)
    now = versions()
    differ = {k: [v, now.get(k)] for k, v in recipe.get("versions", {}).items()
              if now.get(k) != v}
    same = output == recipe["output"]
    emit({"recipe": args.recipe, "command": recipe["command"], "model": choice.model,
          "reproduced": same, "output": output, "recorded": recipe["output"],
          "versions_differ": differ, "notes": [choice.note] if choice.note else []})
    return 0 if same else 1
