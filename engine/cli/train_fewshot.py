"""``python -m engine train-fewshot``: meta-train a few-shot method on Omniglot, write the
safetensors checkpoint and its JSON card (see :mod:`engine.fewshot.episodic`)."""
from __future__ import annotations

import os
import shlex
import sys

from engine.cli import emit


def register(sub) -> None:
    p = sub.add_parser("train-fewshot", help="meta-train a few-shot method on Omniglot")
    p.add_argument("--method", required=True,
                   help="a meta-trainable method (list-models --task fewshot-method: "
                        "meta_training true)")
    p.add_argument("--way", type=int, default=5)
    p.add_argument("--shot", type=int, default=1)
    p.add_argument("--query", type=int, default=5, help="queries per class per episode")
    p.add_argument("--episodes", type=int, default=2000,
                   help="episodes (mini-batches for baseline / baseline++)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=7.0, help="wall-time budget")
    p.add_argument("--val-checks", type=int, default=5,
                   help="validation checks during training (best weights kept)")
    p.add_argument("--val-episodes", type=int, default=200, help="episodes per validation check")
    p.add_argument("--final-val-episodes", type=int, default=600,
                   help="episodes of the card's validation figure")
    p.add_argument("--inner-steps", type=int, default=2, help="MAML inner steps (training)")
    p.add_argument("--inner-lr", type=float, default=0.4, help="MAML inner step size")
    p.add_argument("--batch-size", type=int, default=64, help="baseline pre-training batch")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)))
    p.add_argument("--out", required=True,
                   help="checkpoint path, e.g. assets/omniglot/NAME.safetensors")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.errors import UserInputError
    from engine.fewshot.episodic import TrainConfig, train_fewshot
    if not args.out.endswith(".safetensors"):
        raise UserInputError(f"--out must end in .safetensors, got {args.out!r}")
    cfg = TrainConfig(method=args.method, way=args.way, shot=args.shot, query=args.query,
                      episodes=args.episodes, lr=args.lr, seed=args.seed,
                      max_minutes=args.max_minutes, val_checks=args.val_checks,
                      val_episodes=args.val_episodes, final_val_episodes=args.final_val_episodes,
                      inner_steps=args.inner_steps,
                      inner_lr=args.inner_lr, batch_size=args.batch_size, threads=args.threads,
                      out=args.out, command="python -m engine " + shlex.join(sys.argv[1:]))
    card = train_fewshot(cfg)
    emit({k: card[k] for k in ("name", "method", "way", "shot", "episodes_done",
                               "train_wall_time_s", "validation")})
    return 0
