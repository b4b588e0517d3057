"""The learned scene captioner's commands (see :mod:`engine.scenes.captioner`):

* ``train-scene-captioner [--steps 900 ...] [--held-out cylinder --tag-steps 150]``: train
  (resumable, seeded, one thread by default) and write a safetensors checkpoint + its card;
* ``eval-scene-captioner [--split test --n 1000] [--checkpoint FILE] [--held-out cylinder]``:
  BLEU-4, CIDEr-D, hallucination rate (and the held-out word's rate) on held-out scenes, as
  one JSON line.

``python -m engine caption --model scene-captioner IMAGE`` (engine/cli/caption.py) captions an
image with the shipped captioner.
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from engine.errors import UserInputError


def register(sub) -> None:
    p = sub.add_parser("train-scene-captioner",
                       help="train the scene-world captioner (parser grid + Transformer decoder)")
    p.add_argument("--n-train", type=int, default=8000)
    p.add_argument("--n-val", type=int, default=500)
    p.add_argument("--steps", type=int, default=900, help="caption steps")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--held-out", default=None,
                   help="VIVO experiment: a shape no training caption names (e.g. cylinder)")
    p.add_argument("--tag-steps", type=int, default=0,
                   help="VIVO: tag pre-training steps before the caption steps")
    p.add_argument("--caption-images", default="full", choices=["full", "without-held-out"],
                   help="with --held-out: caption steps on the training images (full) or on "
                        "the training scenes re-rendered without the held-out objects")
    p.add_argument("--tag-weight", type=float, default=0.0,
                   help="VIVO: keep the tag loss, with this weight, during the caption steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--max-minutes", type=float, default=60.0)
    p.add_argument("--data-dir", default=None, help="default $SCENES_DATA_DIR or data/scenes")
    p.add_argument("--out", default="assets/scenes/scene_captioner.safetensors")
    p.set_defaults(func=run_train)

    p = sub.add_parser("eval-scene-captioner",
                       help="BLEU-4, CIDEr and hallucination rate of the scene captioner")
    p.add_argument("--checkpoint", default=None,
                   help="a captioner file (default: the registered scene-captioner)")
    p.add_argument("--split", default="test", help="val or test")
    p.add_argument("--n", type=int, default=1000, help="scenes")
    p.add_argument("--held-out", default=None,
                   help="also report how often scenes with this shape get its word")
    p.add_argument("--fill-slots", action="store_true",
                   help="tag-conditioned decoding: the visual vocabulary names every shape slot")
    p.add_argument("--fill-slots-from-parser", action="store_true",
                   help="detector-tag decoding: each shape slot takes the shape of the scene "
                        "parser's object under the word's attention peak")
    p.add_argument("--slot-threshold", type=float, default=None,
                   help="with --fill-slots: a slot may only take a shape whose image-level tag "
                        "logit exceeds this")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=run_eval)


def run_train(args) -> int:
    from engine.scenes.captioner import CaptionerTrainConfig, train_captioner
    try:
        cfg = CaptionerTrainConfig(
            n_train=args.n_train, n_val=args.n_val, steps=args.steps,
            batch_size=args.batch_size, lr=args.lr, d_model=args.d_model, layers=args.layers,
            held_out=args.held_out, tag_steps=args.tag_steps,
            caption_images=args.caption_images, tag_weight=args.tag_weight, seed=args.seed,
            threads=args.threads, checkpoint_every=args.checkpoint_every,
            max_minutes=args.max_minutes, data_dir=args.data_dir, out=args.out,
            command="python -m engine " + shlex.join(sys.argv[1:]))
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    card = train_captioner(cfg, log=lambda m: sys.stderr.write(m + "\n"))
    print(json.dumps({"out": args.out, "steps_done": card["steps_done"],
                      "train_wall_time_s": card["train_wall_time_s"],
                      "validation": card["validation"]}))
    return 0


def run_eval(args) -> int:
    import torch
    from engine.scenes.captioner import evaluate_split
    if args.split not in ("val", "test"):
        raise UserInputError(f"--split must be val or test (held-out scenes), got {args.split!r}")
    if args.n < 1:
        raise UserInputError(f"--n must be >= 1, got {args.n}")
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        from engine.models.scene_captioner import load_captioner
        try:
            net, name = load_captioner(args.checkpoint), args.checkpoint
        except (FileNotFoundError, ValueError) as exc:
            raise UserInputError(str(exc)) from None
    else:
        from engine.factory import SCENE_CAPTIONER, scene_captioner
        net, name = scene_captioner(), SCENE_CAPTIONER
    from engine.factory import scene_parser
    result = evaluate_split(net, args.split, args.n, args.data_dir, args.held_out,
                            log=lambda m: sys.stderr.write(m + "\n"), parser=scene_parser(),
                            fill_slots=args.fill_slots, slot_threshold=args.slot_threshold,
                            fill_from_parser=args.fill_slots_from_parser)
    print(json.dumps({"model": name, "split": args.split, **result}))
    return 0


def caption_image(image, model: str | None = None, decoding: str = "greedy", beam: int = 3,
                  top_p: float = 0.9, seed: int = 0, attention_dir: str | None = None) -> dict:
    """Caption a PIL image with the scene captioner: the JSON the caption command prints
    (caption, words, model, ms) plus, with ``attention_dir``, one PNG per word (the
    word's cross-attention over the image) listed in ``attention``."""
    import time
    import numpy as np
    import torch
    from PIL import Image
    from engine.factory import SCENE_CAPTIONER, scene_captioner
    from engine.models.scene_captioner import detokenize
    net = scene_captioner(model)
    t0 = time.perf_counter()
    size = 128
    arr = np.array(image.convert("RGB").resize((size, size), Image.BILINEAR))
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255.0
    feats = net.grid_features(x)
    if decoding == "greedy":
        ids, maps = net.greedy(feats)
        ids, maps = ids[0], maps[0]
    elif decoding == "beam":
        ids, maps = net.beam_search(feats, beam=beam)
    elif decoding == "nucleus":
        ids, maps = net.sample(feats, top_p=top_p, seed=seed)
        ids, maps = ids[0], maps[0]
    else:
        raise UserInputError(f"unknown decoding {decoding!r}; valid: greedy, beam, nucleus")
    words = net.decode_ids(ids)
    out = {"caption": detokenize(words), "words": words, "model": model or SCENE_CAPTIONER,
           "decoding": decoding, "ms": round((time.perf_counter() - t0) * 1000, 1)}
    if attention_dir is not None:
        from engine.viz import overlay_heatmap
        folder = Path(attention_dir)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for k, (w, m) in enumerate(zip(words, maps)):
            p = folder / f"{k:03d}-{''.join(ch for ch in w if ch.isalnum()) or 'dot'}.png"
            overlay_heatmap(Image.fromarray(arr), m.numpy()).save(p)
            paths.append(str(p))
        out["attention"] = paths
    return out
