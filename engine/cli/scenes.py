"""The scene world's commands (see :mod:`engine.scenes`):

* ``render-scene --seed N --out scene.png [--size 128] [--json scene.json]``: draw a random
  CLEVR-style scene; prints the scene, its description and each object's referring
  expression, box and visible pixels.
* ``render-change --seed N --out-before a.png --out-after b.png [--type color] [--changes K]``:
  a CLEVR-Change pair (``--type``: colour, material, add, drop, move, distractor; ``--changes
  1..3`` for a multi-change pair); prints its type, captions and the changed objects' boxes.
* ``build-scenes --kind scenes --split train --n 8000``: render a dataset's shards (resumable).
* ``train-scene-parser ...`` / ``eval-scene-parser [--split test --n 1000]``: train the scene
  parser; print its object precision / recall / F1 on held-out scenes.
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from engine.cli import emit


def register(sub) -> None:
    p = sub.add_parser("render-scene", help="render a random CLEVR-style scene")
    p.add_argument("--seed", type=int, required=True, help="scene seed (>= 0)")
    p.add_argument("--out", required=True, help="image file (.png, .jpg, ...)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (16..1024)")
    p.add_argument("--supersample", type=int, default=2, help="anti-aliasing factor (1..4)")
    p.add_argument("--json", default=None, help="also write the scene as JSON here")
    p.set_defaults(func=run_render_scene)

    p = sub.add_parser("render-change", help="render a CLEVR-Change pair (before, after)")
    p.add_argument("--seed", type=int, required=True, help="pair seed (>= 0)")
    p.add_argument("--out-before", required=True)
    p.add_argument("--out-after", required=True)
    p.add_argument("--type", default=None, help="color, material, add, drop, move or "
                                                "distractor (default: drawn from the seed)")
    p.add_argument("--changes", type=int, default=None,
                   help="1..3: a multi-change pair of this many changes (instead of --type)")
    p.add_argument("--no-jitter", action="store_true",
                   help="keep the after camera and lights unchanged")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--supersample", type=int, default=2)
    p.add_argument("--json", default=None, help="also write the pair as JSON here")
    p.set_defaults(func=run_render_change)

    p = sub.add_parser("build-scenes", help="render a scene-world dataset to .npz shards")
    p.add_argument("--kind", default="scenes", help="scenes, changes, multichanges or edits")
    p.add_argument("--split", default="train", help="train, val or test")
    p.add_argument("--n", type=int, required=True, help="number of items")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--data-dir", default=None, help="default $SCENES_DATA_DIR or data/scenes")
    p.set_defaults(func=run_build)

    p = sub.add_parser("train-scene-parser", help="train the scene parser on rendered scenes")
    p.add_argument("--n-train", type=int, default=8000)
    p.add_argument("--n-val", type=int, default=500)
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--max-minutes", type=float, default=100.0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="assets/scenes/scene_parser.safetensors")
    p.set_defaults(func=run_train)

    p = sub.add_parser("eval-scene-parser",
                       help="object precision/recall/F1 of the scene parser on held-out scenes")
    p.add_argument("--model", default=None, help="a registered scene parser (default "
                                                 "scene-parser)")
    p.add_argument("--checkpoint", default=None, help="a .safetensors file instead of --model")
    p.add_argument("--split", default="test", help="val or test")
    p.add_argument("--n", type=int, default=1000, help="scenes")
    p.add_argument("--tol", type=float, default=0.5, help="ground-position tolerance")
    p.add_argument("--threshold", type=float, default=None, help="heatmap threshold")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=run_eval)


def _check(args) -> None:
    from engine.errors import UserInputError
    if args.seed < 0:
        raise UserInputError(f"--seed must be >= 0, got {args.seed}")
    if not 16 <= args.size <= 1024:
        raise UserInputError(f"--size must be 16..1024 pixels, got {args.size}")
    if not 1 <= args.supersample <= 4:
        raise UserInputError(f"--supersample must be 1..4, got {args.supersample}")


def _save(image, path: str) -> None:
    from PIL import Image

    from engine.errors import UserInputError
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"folder {target.parent} does not exist")
    try:
        Image.fromarray(image).save(target)
    except ValueError:  # Pillow: unknown extension
        raise UserInputError(f"cannot write {path!r}: use an image extension such as .png") \
            from None


def _objects(scene, rendering) -> list[dict]:
    from engine.scenes.language import referring_expression
    return [{**o.attributes(), "x": round(o.x, 3), "y": round(o.y, 3),
             "rotation": round(o.rotation, 1), "refer": referring_expression(scene, i),
             "box": rendering.boxes[i].tolist(), "pixels": int(rendering.masks[i].sum())}
            for i, o in enumerate(scene.objects)]


def run_render_scene(args) -> int:
    from engine.scenes.language import describe_scene
    from engine.scenes.render import render
    from engine.scenes.sampling import sample_scene
    _check(args)
    scene = sample_scene(args.seed)
    r = render(scene, args.size, args.supersample)
    _save(r.image, args.out)
    if args.json:
        Path(args.json).write_text(json.dumps(scene.to_dict(), indent=1))
    emit({"seed": args.seed, "out": args.out, "size": args.size,
          "description": describe_scene(scene), "objects": _objects(scene, r),
          "scene": scene.to_dict()})
    return 0


def run_render_change(args) -> int:
    from engine.errors import UserInputError
    from engine.scenes.changes import PAIR_TYPES, sample_change_pair, sample_multi_change_pair
    _check(args)
    if args.changes is not None:
        if args.type is not None:
            raise UserInputError("give --type or --changes, not both")
        if not 1 <= args.changes <= 3:
            raise UserInputError(f"--changes must be 1..3, got {args.changes}")
        pair = sample_multi_change_pair(args.seed, args.changes, jitter=not args.no_jitter)
    else:
        if args.type is not None and args.type not in PAIR_TYPES:
            from engine.errors import unknown_name_message
            raise UserInputError(unknown_name_message("change type", args.type, PAIR_TYPES))
        pair = sample_change_pair(args.seed, args.type, jitter=not args.no_jitter)
    r = pair.render(args.size, args.supersample)
    _save(r.before.image, args.out_before)
    _save(r.after.image, args.out_after)
    if args.json:
        Path(args.json).write_text(json.dumps(pair.to_dict(), indent=1))
    changes = [{"type": c.type, "before_index": c.before_index, "after_index": c.after_index,
                "caption": c.captions[0],
                "before_box": r.before.boxes[c.before_index].tolist()
                if c.before_index is not None else None,
                "after_box": r.after.boxes[c.after_index].tolist()
                if c.after_index is not None else None} for c in pair.changes]
    emit({"seed": args.seed, "type": pair.type, "caption": pair.captions[0],
          "captions": list(pair.captions), "changes": changes, "out_before": args.out_before,
          "out_after": args.out_after, "before": _objects(pair.before, r.before),
          "after": _objects(pair.after, r.after)})
    return 0


def run_build(args) -> int:
    from engine.errors import UserInputError
    from engine.scenes.dataset import DatasetSpec, build_dataset
    try:
        spec = DatasetSpec(args.kind, args.split, args.n, args.size)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    folder = build_dataset(spec, args.data_dir,
                           progress=lambda m: sys.stderr.write(m + "\n"))
    emit({"kind": args.kind, "split": args.split, "n": args.n, "size": args.size,
          "folder": str(folder)})
    return 0


def run_train(args) -> int:
    from engine.errors import UserInputError
    from engine.scenes.train_parser import ParserTrainConfig, train_scene_parser
    if not args.out.endswith(".safetensors"):
        raise UserInputError(f"--out must end in .safetensors, got {args.out!r}")
    try:
        cfg = ParserTrainConfig(
            n_train=args.n_train, n_val=args.n_val, steps=args.steps, batch_size=args.batch_size,
            lr=args.lr, width=args.width, seed=args.seed, threads=args.threads,
            checkpoint_every=args.checkpoint_every, max_minutes=args.max_minutes,
            out=args.out, data_dir=args.data_dir,
            command="python -m engine " + shlex.join(sys.argv[1:]))
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    card = train_scene_parser(cfg, log=lambda m: sys.stderr.write(m + "\n"))
    Path(args.out).with_suffix(".json").write_text(json.dumps(card, indent=1))
    emit({"out": args.out, "steps_done": card["steps_done"],
          "train_cpu_time_s": card["train_cpu_time_s"],
          "train_wall_time_s": card["train_wall_time_s"], "validation": card["validation"]})
    return 0


def run_eval(args) -> int:
    import time

    import torch

    from engine.errors import UserInputError
    from engine.scenes.dataset import DatasetSpec, load_dataset
    from engine.scenes.parser import THRESHOLD, SceneParser
    from engine.scenes.scene import Scene
    from engine.scenes.train_parser import evaluate
    if args.split not in ("val", "test"):
        raise UserInputError(f"--split must be val or test (held-out scenes), got {args.split!r}")
    if args.n < 1 or args.tol <= 0:
        raise UserInputError(f"--n must be >= 1 and --tol > 0, got {args.n}, {args.tol}")
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        from engine.models.scene_parser import load_parser
        try:
            parser, name = SceneParser(load_parser(args.checkpoint)), args.checkpoint
        except ValueError as exc:  # not a scene parser checkpoint
            raise UserInputError(str(exc)) from None
    else:
        from engine.factory import SCENE_PARSER, scene_parser
        parser, name = scene_parser(args.model), args.model or SCENE_PARSER
    threshold = THRESHOLD if args.threshold is None else args.threshold
    parser = SceneParser(parser.net, parser.camera, threshold, parser.size)
    data = load_dataset(DatasetSpec("scenes", args.split, args.n, parser.size), args.data_dir)
    scenes = [Scene.from_json(str(s)) for s in data["scenes"]]
    t0 = time.perf_counter()
    score = evaluate(parser, data["images"], scenes, args.tol)
    emit({"model": name, "split": args.split, "n": args.n, "tol": args.tol,
          "threshold": threshold, **score.as_dict(),
          "seconds": round(time.perf_counter() - t0, 1)})
    return 0
