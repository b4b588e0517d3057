"""Command line: one sub-command per task, each printing one JSON object per result on stdout.

A sub-command lives in its own module here exposing ``register(subparsers)``, which adds an
argparse parser whose ``func(args) -> int`` runs it; add the module to :data:`COMMANDS`.
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
            "scenes"]


def emit(obj: dict[str, Any]) -> None:
    """Print one result as a JSON line on stdout (UTF-8, unicode kept)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


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
