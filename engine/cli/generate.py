"""Text-to-image on the scene world (see :mod:`engine.generation`):

* ``generate --text TEXT [--seed N] [--steps S] [--guidance G] [--size PX] [--strip DIR]
  --out IMG``: writes the generated image (PNG unless OUT says otherwise; ``--size`` upscales
  the model's 32x32 output, nearest-neighbour) and prints one JSON line (words read, notes,
  settings, ms, the scene parser's reading of the image);
* ``train-generator [--n-train 10000 --max-minutes 40 ...]``: train (resumable, seeded, one
  thread) and write ``assets/generation/scene_generator.safetensors`` + its card;
* ``eval-generator [--n 200] [--checkpoint FILE] [--grid grid.png]``: GeNeVA-style object
  precision/recall/F1, attribute and relation accuracy read by the scene parser on held-out
  descriptions, seconds per image; as one JSON line.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from engine.cli import add_model_option, emit, pipeline_for
from engine.errors import UserInputError

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def register(sub) -> None:
    from engine.generation.pipeline import DEFAULT_GUIDANCE, DEFAULT_STEPS
    p = sub.add_parser("generate", help="text -> image with the scene-world diffusion model")
    p.add_argument("--text", required=True,
                   help="1-3 objects, e.g. 'a large blue metal sphere left of a small yellow cube'")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial noise")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="DDIM steps (1-200)")
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE,
                   help="classifier-free guidance scale (0-20; 1 = no guidance)")
    p.add_argument("--size", type=int, default=None,
                   help="write the image upscaled to this side (nearest-neighbour)")
    p.add_argument("--strip", default=None, metavar="DIR",
                   help="also write the denoising strip (x_t frames) as DIR/step-NNN.png")
    add_model_option(p, "scene-generator (the default)")
    p.add_argument("--out", required=True, metavar="OUT", help="where to write the image")
    p.set_defaults(func=run_generate)

    p = sub.add_parser("train-generator", help="train the scene-world text-to-image model")
    p.add_argument("--n-train", type=int, default=10000)
    p.add_argument("--n-val", type=int, default=256)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--drop-text", type=float, default=0.1,
                   help="share of texts replaced by the empty one (classifier-free guidance)")
    p.add_argument("--block-out-channels", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    p.add_argument("--max-minutes", type=float, default=40.0)
    p.add_argument("--data-dir", default=None, help="default $GENERATION_DATA_DIR or data/generation")
    p.add_argument("--out", default="assets/generation/scene_generator.safetensors")
    p.set_defaults(func=run_train)

    p = sub.add_parser("eval-generator",
                       help="object F1 / attribute / relation accuracy of generated images")
    p.add_argument("--checkpoint", default=None, help="a generator file (default: registered)")
    p.add_argument("--n", type=int, default=200, help="held-out test descriptions")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    p.add_argument("--seed", type=int, default=0, help="image i uses seed + i")
    p.add_argument("--grid", default=None, metavar="PNG",
                   help="also write the sample grid (fixed prompts x seeds 0-3)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=run_eval)


def _out_path(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in _IMAGE_SUFFIXES:
        raise UserInputError(f"--out {path}: use a .png, .jpg, .webp, .bmp or .tif file name")
    return out


def run_generate(args) -> int:
    import numpy as np
    from PIL import Image
    out = _out_path(args.out)
    if args.size is not None and not 8 <= args.size <= 2048:
        raise UserInputError(f"--size must be from 8 to 2048 pixels, got {args.size}")
    pipe, notes = pipeline_for("generate", args)
    result = pipe(args.text, seed=args.seed, steps=args.steps, guidance=args.guidance)
    img = Image.fromarray(result.image)
    if args.size:
        img = img.resize((args.size, args.size), Image.Resampling.NEAREST)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    strip = []
    if args.strip:
        folder = Path(args.strip)
        folder.mkdir(parents=True, exist_ok=True)
        for k, frame in zip(result.frame_steps, result.frames):
            p = folder / f"step-{k:03d}.png"
            Image.fromarray(frame).save(p)
            strip.append(str(p))
    from engine.factory import scene_parser
    parsed = scene_parser()(np.asarray(result.image))[0]
    emit({"text": args.text, "out": str(out), "model": pipe.name, "words": list(result.words),
          "seed": result.seed, "steps": result.steps, "guidance": result.guidance,
          "ms": round(result.seconds * 1000, 1), "strip": strip,
          "parsed_objects": [p.object.name() for p in parsed],
          "notes": notes + result.notes})
    return 0


def run_train(args) -> int:
    from engine.generation.train import GeneratorTrainConfig, train_generator
    try:
        cfg = GeneratorTrainConfig(
            n_train=args.n_train, n_val=args.n_val, steps=args.steps, batch_size=args.batch_size,
            lr=args.lr, drop_text=args.drop_text,
            block_out_channels=tuple(args.block_out_channels), seed=args.seed,
            threads=args.threads, checkpoint_minutes=args.checkpoint_minutes,
            max_minutes=args.max_minutes, data_dir=args.data_dir, out=args.out,
            command="python -m engine " + shlex.join(sys.argv[1:]))
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    facts = train_generator(cfg, log=lambda m: sys.stderr.write(m + "\n"))
    emit({"out": args.out, "steps_done": facts["steps_done"],
          "train_wall_time_s": facts["train_wall_time_s"], "val_loss_ema": facts["val_loss_ema"]})
    return 0


def run_eval(args) -> int:
    import torch
    from engine.generation.evaluate import evaluate, sample_grid
    from engine.generation.pipeline import GeneratePipeline, check_settings
    if args.n < 1:
        raise UserInputError(f"--n must be >= 1, got {args.n}")
    check_settings(args.seed, args.steps, args.guidance)
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        from engine.models.scene_generator import load_generator
        try:
            pipe = GeneratePipeline(load_generator(args.checkpoint), name=args.checkpoint)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
    else:
        from engine.factory import get_pipeline
        pipe = get_pipeline("generate")
    from engine.factory import scene_parser
    result = evaluate(pipe, scene_parser(), n=args.n, steps=args.steps, guidance=args.guidance,
                      seed=args.seed, data_dir=args.data_dir,
                      log=lambda m: sys.stderr.write(m + "\n"))
    if args.grid:
        grid = sample_grid(pipe, steps=args.steps, guidance=args.guidance)
        Path(args.grid).parent.mkdir(parents=True, exist_ok=True)
        grid.save(args.grid)
        result["grid"] = args.grid
    emit({"model": pipe.name, **result})
    return 0
