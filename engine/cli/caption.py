"""``python -m engine caption IMAGE_OR_DIR [...] [--model NAME] [--batch-size N]``: one JSON
line per image, in the order given (a folder's image files sorted by name).

Many images are decoded by worker threads while the network runs on the previous batch, and
images of equal input size go through it together (the results equal one-image calls). A
progress bar goes to stderr when it is a terminal. A file that cannot be used is reported on
stderr (``error: ...``) and the others are still captioned; the exit status is then 2.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from engine.cli import add_model_option, emit, pipeline_for

#: Images per network batch (``--batch-size``).
BATCH_SIZE = 16


def register(sub) -> None:
    p = sub.add_parser("caption", help="caption images (tags + sentence)")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files and/or folders (a folder: its image files, sorted)")
    add_model_option(p, "efficientnet_lite0 (offline tags, the default), a hub captioner "
                        "(blip-base) or scene-captioner (the learned scene-world captioner)")
    p.add_argument("--top-k", type=int, default=5, help="tags per image (1..20)")
    p.add_argument("--decoding", choices=["beam", "nucleus"], default="beam",
                   help="hub captioners: beam search or nucleus sampling")
    p.add_argument("--seed", type=int, default=0, help="seed of nucleus sampling")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                   help=f"images per network batch (default {BATCH_SIZE})")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding threads (default: CPU cores, at most 4)")
    p.add_argument("--attention-dir", default=None,
                   help="scene-captioner: save each word's cross-attention map here as PNG")
    p.set_defaults(func=run)


def _expand(args_images: list[str]) -> tuple[list[str], int]:
    """Files as given; a folder becomes its image files (sorted, not recursive).

    Returns:
        (paths, exit status so far: 2 if a folder holds no image file, else 0).
    """
    from engine.inputs.files import image_files
    paths, status = [], 0
    for arg in args_images:
        if Path(arg).is_dir():
            found = image_files(arg)
            if not found:
                sys.stderr.write(f"error: {arg}: no image files in this folder\n")
                status = 2
            paths += [str(p) for p in found]
        else:
            paths.append(arg)
    return paths, status


def _scene_captions(paths: list[str], args, status: int) -> int:
    """Caption with the scene captioner (``--model scene-captioner``); returns the exit status."""
    from engine.cli.scene_captioner import caption_image
    from engine.inputs.images import ImageInputError, load_image
    for path in paths:
        try:
            loaded = load_image(path)
        except ImageInputError as exc:  # one bad file does not stop the batch
            sys.stderr.write(f"error: {exc}\n")
            status = 2
            continue
        emit({"image": path, **caption_image(loaded.image, args.model, args.decoding,
                                             seed=args.seed, attention_dir=args.attention_dir),
              "notes": list(loaded.notes)})
    return status


def run(args) -> int:
    from tqdm import tqdm

    from engine.inputs.images import ImageInputError, load_image
    from engine.errors import UserInputError
    from engine.inputs.pool import map_ordered
    from engine.runtime import set_threads
    if args.batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, got {args.batch_size}")
    # measured (docs/benchmarks.md): the network gets the cores, the small tensor ops around it
    # run on one thread (more threads only wait for each other on a busy machine)
    set_threads(1, os.cpu_count())
    paths, status = _expand(args.images)
    if args.model == "scene-captioner":  # the scene world's learned captioner, one at a time
        return _scene_captions(paths, args, status)
    pipe, prepare, choice_notes = None, None, []  # the pipeline is built on the first good image

    def decode(path: str):
        try:
            loaded = load_image(path)
        except ImageInputError as exc:  # one bad file does not stop the batch
            return path, None, exc, None, []
        return path, loaded.image, None, prepare(loaded.image) if prepare else None, \
            list(loaded.notes)

    bar = tqdm(total=len(paths), unit="img", file=sys.stderr, disable=None if len(paths) > 1
               else True, dynamic_ncols=True)
    batch: list = []

    def flush() -> None:
        good = [(im, x) for _, im, _, x, _ in batch if im is not None]
        results = iter(pipe.batch([im for im, _ in good], top_k=args.top_k,
                                  decoding=args.decoding, seed=args.seed,
                                  inputs=[x if x is not None else pipe.prepare(im)
                                          for im, x in good]) if good else [])
        for path, image, error, _, notes in batch:
            if error is not None:
                bar.write(f"error: {error}", file=sys.stderr)
            else:
                result = next(results).to_json()
                result["notes"] = notes + result.get("notes", []) + choice_notes
                emit({"image": path, **result})
        bar.update(len(batch))
        batch.clear()

    try:
        for item in map_ordered(decode, paths, workers=args.workers,
                                ahead=2 * args.batch_size):
            if item[2] is not None:
                status = 2
            elif pipe is None:  # chosen on the first good image (a hub model may fall back)
                pipe, choice_notes = pipeline_for("caption", args)
                prepare = getattr(pipe, "prepare", None)
            batch.append(item)
            if sum(1 for b in batch if b[1] is not None) >= args.batch_size:
                flush()
        flush()
    finally:
        bar.close()
    return status

