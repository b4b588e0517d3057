"""Command line: one sub-command per task, each printing one JSON object per result on stdout.

A sub-command lives in its own module here exposing ``register(subparsers)``, which adds an
argparse parser whose ``func(args) -> int`` runs it; add the module to :data:`COMMANDS`.
A sub-command with a ``--model`` gets it from :func:`add_model_option` and its pipeline from
:func:`pipeline_for`: a hub model the machine cannot reach falls back to the embedded model,
as in the app, and the JSON's ``notes`` say so (``--no-fallback`` refuses instead, exit 2).
A user's mistake (:class:`engine.errors.UserInputError`, an unreachable hub, a missing file)
gives a one-line message on stderr and exit status 2, never a traceback; an internal error (a
bug) prints its traceback and exits with status 1.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from typing import Any

#: Modules of engine.cli that define sub-commands, in --help order.
COMMANDS = ["models", "caption", "classify", "train_fewshot", "fewshot_eval", "change", "retrieve", "edit", "segment",
            "scenes", "scene_captioner", "duda", "generate", "scene_cir", "clipart", "doctor",
            "reproduce", "results"]


def emit(obj: dict[str, Any]) -> None:
    """Print one result as a JSON line on stdout (UTF-8, unicode kept)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def add_model_option(parser: argparse.ArgumentParser, help: str, default: str | None = None
                     ) -> None:
    """Add ``--model`` and ``--no-fallback`` (see :func:`pipeline_for`) to a sub-command."""
    parser.add_argument("--model", default=default, help=help)
    parser.add_argument("--no-fallback", action="store_true",
                        help="if --model is a hub model the machine cannot reach, stop with "
                             "exit status 2 instead of using the embedded model")


def pipeline_for(task: str, args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The pipeline of ``task`` on ``args.model``, as the app chooses it.

    Returns:
        (pipeline, notes): a hub model that cannot be reached is replaced by the task's
        embedded model and the notes hold the one-sentence reason
        (:func:`engine.factory.choose_pipeline`); with ``--no-fallback`` no replacement.

    Raises:
        engine.errors.UserInputError: the task does not accept the model.
        engine.models.HubUnavailableError: ``--no-fallback`` and the hub is unreachable.
    """
    from engine.factory import choose_pipeline, get_pipeline
    from engine.models import HubUnavailableError
    if getattr(args, "no_fallback", False):
        try:
            return get_pipeline(task, args.model), []
        except HubUnavailableError:
            raise HubUnavailableError(f"{args.model}: the model hub cannot be reached from this "
                                      f"machine, and --no-fallback forbids using the embedded "
                                      f"model instead.") from None
    choice = choose_pipeline(task, args.model)
    return choice.pipeline, [choice.note] if choice.note else []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine",
                                     description="Vision-and-language lecture demo: engine CLI.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"engine.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from engine.runtime import quiet_libraries
    quiet_libraries()
    args = build_parser().parse_args(argv)
    from engine.errors import UserInputError
    from engine.models import HubUnavailableError
    try:
        return int(args.func(args) or 0)
    except (UserInputError, HubUnavailableError, FileNotFoundError) as exc:
        # FileNotFoundError: a path named on the command line (or a data archive) is missing
        message = " ".join(str(exc).split())
        sys.stderr.write(f"error: {message}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:
        logging.getLogger("engine.cli").exception("internal error (a bug, not your input)")
        return 1
