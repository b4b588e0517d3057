"""Composed retrieval on the scene world (CSS-style triplets; TIRG and ARTEMIS).

* ``build-scene-triplets --split test --bases 1450``: render + encode groups (resumable).
* ``train-scene-cir --method tirg``: train a composer on cached train features.
* ``eval-scene-cir --method tirg``: Recall@1/5/10 on the held-out test gallery.
"""
from __future__ import annotations

import argparse
import sys

from engine.cli import emit


def run_build(args: argparse.Namespace) -> int:
    import torch
    from engine.factory import EMBEDDED_BACKBONE
    from engine.models import load_model
    from engine.retrieval.scene_triplets import build_triplets, triplet_dir
    torch.set_num_threads(args.threads)
    backbone = load_model(EMBEDDED_BACKBONE)
    build_triplets(args.split, args.bases, backbone, args.data_dir,
                   progress=lambda m: print(m, file=sys.stderr, flush=True))
    emit({"split": args.split, "bases": args.bases,
          "folder": str(triplet_dir(args.split, args.data_dir))})
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-scene-triplets",
                       help="render CSS-style scene triplets and cache their features")
    p.add_argument("--split", default="train", help="train, val or test")
    p.add_argument("--bases", type=int, required=True, help="base scenes (each + up to 6 edits)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="default data/scene_cir")
    p.set_defaults(func=run_build)
