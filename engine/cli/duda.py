"""DUDA change captioning on the scene world (Park et al., ICCV 2019):

* ``train-duda [--n-train N] [--steps S] [--seed K] ...``: train (resumable) and write
  ``assets/scenes/duda.safetensors`` plus ``duda.json`` (the run's facts);
* ``eval-duda [--split test] [--n 1000]``: BLEU-4, CIDEr, "no change" rate and pointing game,
  total and per change type, as one JSON line;
* ``change --model duda BEFORE AFTER`` (in :mod:`engine.cli.change`) captions one pair.
"""
from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

from engine.cli import emit


def register(sub) -> None:
    p = sub.add_parser("train-duda", help="train the DUDA change captioner on CLEVR-Change pairs")
    p.add_argument("--n-train", type=int, default=8000, help="training pairs")
    p.add_argument("--n-val", type=int, default=500, help="validation pairs")
    p.add_argument("--size", type=int, default=128, help="image side in pixels")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--encoder", default="parser",
                   help="parser: the frozen scene parser's features (cached per pair); cnn: a "
                        "small CNN trained with the captioner")
    p.add_argument("--entropy-weight", type=float, default=0.003,
                   help="weight of the dynamic speaker's entropy bonus (the paper's "
                        "regulariser; 0 turns it off)")
    p.add_argument("--attention-supervision", type=float, default=0.0,
                   help="weight of an auxiliary loss (not in the paper) pulling each attention "
                        "map onto the changed object's mask; 0 = the paper's DUDA")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--max-minutes", type=float, default=60.0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="assets/scenes/duda.safetensors")
    p.set_defaults(func=run_train)

    p = sub.add_parser("eval-duda", help="BLEU-4 / CIDEr / no-change accuracy / pointing game "
                                         "of DUDA on held-out CLEVR-Change pairs")
    p.add_argument("--model", default=None, help="a registered change captioner (default duda)")
    p.add_argument("--checkpoint", default=None, help="a .safetensors file instead of --model")
    p.add_argument("--split", default="test", help="val or test")
    p.add_argument("--n", type=int, default=1000, help="pairs")
    p.add_argument("--meteor", action="store_true", help="also METEOR (needs Java)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=run_eval)


def run_train(args) -> int:
    from engine.errors import UserInputError
    from engine.scenes.train_duda import DudaTrainConfig, train_duda
    if not args.out.endswith(".safetensors"):
        raise UserInputError(f"--out must end in .safetensors, got {args.out!r}")
    try:
        cfg = DudaTrainConfig(
            n_train=args.n_train, n_val=args.n_val, size=args.size, width=args.width,
            hidden=args.hidden, encoder=args.encoder, entropy_weight=args.entropy_weight,
            steps=args.steps, batch_size=args.batch_size, lr=args.lr,
            attention_supervision=args.attention_supervision, seed=args.seed,
            threads=args.threads, checkpoint_every=args.checkpoint_every,
            max_minutes=args.max_minutes, out=args.out, data_dir=args.data_dir,
            command="python -m engine " + shlex.join(sys.argv[1:]))
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    card = train_duda(cfg, log=lambda m: sys.stderr.write(m + "\n"))
    Path(args.out).with_suffix(".json").write_text(json.dumps(card, indent=1))
    emit({"out": args.out, "steps_done": card["steps_done"],
          "train_cpu_time_s": card["train_cpu_time_s"],
          "train_wall_time_s": card["train_wall_time_s"], "validation": card["validation"]})
    return 0


def _captioner(args):
    import torch

    from engine.errors import UserInputError
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        from engine.models.duda import load_duda
        from engine.scenes.duda import DudaCaptioner
        try:
            return DudaCaptioner(load_duda(args.checkpoint))
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
    from engine.factory import change_captioner
    return change_captioner(args.model)


def run_eval(args) -> int:
    from engine.errors import UserInputError
    from engine.scenes.dataset import DatasetSpec, load_dataset
    from engine.scenes.duda import evaluate
    if args.split not in ("val", "test"):
        raise UserInputError(f"--split must be val or test, got {args.split!r}")
    if args.n < 1:
        raise UserInputError(f"--n must be >= 1, got {args.n}")
    captioner = _captioner(args)
    data = load_dataset(DatasetSpec("changes", args.split, args.n, captioner.image_size),
                        args.data_dir)
    t0 = time.perf_counter()
    scores = evaluate(captioner, data, with_meteor=args.meteor)
    emit({"split": args.split, "n": args.n, "size": captioner.image_size,
          "seconds": round(time.perf_counter() - t0, 1), **scores})
    return 0
