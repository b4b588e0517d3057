"""LiT-style alignment on Debian's openclip-art captions (:mod:`engine.retrieval.clipart`).

* ``build-clipart --n 3000``: render, caption and encode a seeded sample (resumable).
* ``train-lit``: train the projections, report text<->image Recall@K against ConSE.
"""
from __future__ import annotations

import argparse
import sys

from engine.cli import emit


def run_build(args: argparse.Namespace) -> int:
    import torch

    from engine.factory import embedded_encoders
    from engine.retrieval.clipart import build
    torch.set_num_threads(args.threads)
    folder = build(args.n, *embedded_encoders(), args.out,
                   args.seed, progress=lambda m: print(m, file=sys.stderr, flush=True))
    emit({"folder": str(folder), "n": args.n})
    return 0


def run_train(args: argparse.Namespace) -> int:
    import time

    import torch

    from engine.factory import imagenet_class_text
    from engine.retrieval.clipart import evaluate, load, train_lit
    torch.set_num_threads(args.threads)
    data = load(args.data)
    train, test = data.split(False), data.split(True)
    t0 = time.perf_counter()
    net = train_lit(train, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed)
    minutes = (time.perf_counter() - t0) / 60
    table = imagenet_class_text().table.numpy()
    out = {"train": len(train.names), "minutes": round(minutes, 2),
           **evaluate(test, net, table), "command": " ".join(sys.argv)}
    if args.out:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, args.out)
    emit(out)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-clipart", help="render + caption + encode openclipart-svg drawings")
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="default data/clipart")
    p.set_defaults(func=run_build)

    p = sub.add_parser("train-lit", help="LiT-style projections on the clip-art captions")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", default=None)
    p.add_argument("--out", default=None)
    p.set_defaults(func=run_train)
