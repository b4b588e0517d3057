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

    from engine.factory import embedded_encoders
    from engine.retrieval.scene_triplets import build_triplets, triplet_dir
    torch.set_num_threads(args.threads)
    backbone = embedded_encoders()[0]
    build_triplets(args.split, args.bases, backbone, args.data_dir,
                   progress=lambda m: print(m, file=sys.stderr, flush=True))
    emit({"split": args.split, "bases": args.bases,
          "folder": str(triplet_dir(args.split, args.data_dir))})
    return 0


def _minilm_table(data_dir, train, *others):
    """MiniLM embeddings of every wording of ``train`` and the drawn wording of the others,
    cached in ``<data_dir>/minilm_texts.npz`` (only new texts are embedded)."""
    import numpy as np

    from engine.factory import embedded_encoders
    from engine.retrieval.scene_triplets import triplet_dir
    from engine.retrieval.train_cir import TextTable
    path = triplet_dir("train", data_dir).parent / "minilm_texts.npz"
    cache = {}
    if path.exists():
        with np.load(path) as z:
            cache = dict(zip(z["texts"].tolist(), z["embeddings"]))
    texts = [t for ts in train.texts for t in ts] if train is not None else []
    texts += [ts[0] for d in others if d is not None for ts in d.texts]
    missing = sorted(set(texts) - set(cache))
    if missing:
        enc = embedded_encoders()[1]
        print(f"embedding {len(missing)} texts with MiniLM", file=sys.stderr, flush=True)
        emb = enc.encode(missing, batch_size=256).embeddings.numpy()
        cache.update(zip(missing, emb))
        np.savez(path, texts=np.array(list(cache)), embeddings=np.stack(list(cache.values())))
    return TextTable(lambda xs: np.stack([cache[x] for x in xs]), texts)


def run_train(args: argparse.Namespace) -> int:
    import subprocess

    import torch

    from engine.retrieval.scene_triplets import load_triplets
    from engine.retrieval.train_cir import (
        TrainConfig,
        make_net,
        recall_at_k,
        save_checkpoint,
        train,
    )
    torch.set_num_threads(args.threads)
    tr = load_triplets("train", args.train_bases, args.data_dir)
    val = load_triplets("val", None, args.data_dir)
    test = load_triplets("test", None, args.data_dir) if args.test else None
    table = _minilm_table(args.data_dir, tr, val, test) if args.text_encoder == "minilm" else None
    net = make_net(args.method, args.text_encoder, tr, args.dim, args.dropout)
    cfg = TrainConfig(steps=args.steps, groups_per_batch=args.groups, lr=args.lr,
                      weight_decay=args.weight_decay, seed=args.seed,
                      max_minutes=args.max_minutes, eval_every=args.eval_every,
                      negatives=args.negatives, extra_negatives=args.extra_negatives)
    log = train(net, tr, cfg, table, val,
                progress=lambda m: print(m, file=sys.stderr, flush=True))
    card = {"method": args.method, "dropout": args.dropout, "text_encoder": args.text_encoder,
            "train_queries": len(tr.refs), "train_gallery": len(tr.keys),
            "train": {**cfg.__dict__, **{k: v for k, v in log.items() if k != "val"}},
            "val": recall_at_k(net, val, table), "command": " ".join(sys.argv),
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()}
    if test is not None:
        card["test"] = recall_at_k(net, test, table, per_op=True)
    if args.out:
        save_checkpoint(net, args.out, card)
    emit(card)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from engine.retrieval.scene_triplets import load_triplets
    from engine.retrieval.train_cir import load_checkpoint, make_net, recall_at_k
    torch.set_num_threads(args.threads)
    test = load_triplets(args.split, None, args.data_dir)
    if args.checkpoint:
        net = load_checkpoint(args.checkpoint)
    elif args.method == "image-only":
        net = make_net("image-only", "minilm", load_triplets("train", None, args.data_dir))
    else:
        raise SystemExit("error: give --checkpoint (or --method image-only)")
    table = _minilm_table(args.data_dir, None, test) if net.config.text_encoder == "minilm" and \
        net.config.method != "image-only" else None
    out = recall_at_k(net, test, table, per_op=True)
    emit({"method": net.config.method, "text_encoder": net.config.text_encoder,
          "split": args.split, **out})
    return 0


def run_export(args: argparse.Namespace) -> int:
    from engine.retrieval.scene_search import GALLERY_PATH, export_gallery
    from engine.retrieval.scene_triplets import load_triplets
    data = load_triplets("test", args.bases, args.data_dir)
    path = export_gallery(data, args.bases, args.out or GALLERY_PATH)
    emit({"gallery": str(path), "bases": args.bases, "mb": round(path.stat().st_size / 1e6, 2)})
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-scene-triplets",
                       help="render CSS-style scene triplets and cache their features")
    p.add_argument("--split", default="train", help="train, val or test")
    p.add_argument("--bases", type=int, required=True, help="base scenes (each + up to 6 edits)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="default data/scene_cir")
    p.set_defaults(func=run_build)

    p = sub.add_parser("train-scene-cir", help="train TIRG / ARTEMIS / a baseline on scene "
                                               "triplets")
    p.add_argument("--method", default="artemis", help="tirg, artemis, text-only")
    p.add_argument("--text-encoder", default="lstm", help="lstm or minilm")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--groups", type=int, default=32, help="groups (base + edits) per batch")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--negatives", default="sampled", help="sampled or batch")
    p.add_argument("--extra-negatives", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=20.0)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--train-bases", type=int, default=None)
    p.add_argument("--test", action="store_true", help="also measure the test split")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="write the checkpoint here (.safetensors)")
    p.set_defaults(func=run_train)

    p = sub.add_parser("eval-scene-cir", help="Recall@1/5/10 on the held-out scene gallery")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--method", default=None, help="image-only (no checkpoint needed)")
    p.add_argument("--split", default="test")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=run_eval)

    p = sub.add_parser("export-scene-gallery",
                       help="write the Retrieve tab's scene gallery (first test bases)")
    p.add_argument("--bases", type=int, default=150)
    p.add_argument("--out", default=None, help="default assets/retrieval/scene_gallery.npz")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=run_export)
