"""Episodic evaluation of few-shot segmentation: mean IoU over N-way K-shot episodes drawn from
a folder of (image, mask) pairs grouped by class (the FSS protocol of PANet / OSLSM: per class,
intersections and unions summed over all episodes, then the mean over classes).

Folder layout: ``DIR/<class>/<name>.<jpg|png|...>`` with its mask ``DIR/<class>/<name>_mask.png``
(white = object); images are the files :func:`engine.inputs.files.image_files` lists (any
suffix of ``IMAGE_SUFFIXES``, hidden files skipped). Each episode draws N classes, and for each
class K support pairs and one query pair (all different); the N foreground prototypes and one
background prototype (from every support image) label each query pixel as background or one of
the N classes.
"""
from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.errors import UserInputError
from engine.inputs.files import class_folders, image_files
from engine.inputs.images import load_image, load_mask
from engine.inputs.text import name_key, normalize_name
from engine.segmentation.panet import PANet
from engine.segmentation.pipeline import SegmentPipeline


def load_pairs(data_dir: str | Path) -> dict[str, list[tuple[Path, Path]]]:
    """{class: [(image path, mask path), ...]} of a dataset folder, sorted.

    Class names are the folder names, NFC-normalised with spaces collapsed
    (:func:`engine.inputs.text.normalize_name`).

    Raises:
        UserInputError: not a folder, no class folder with an (image, mask) pair, or two
            folders naming one class (equal up to case, spaces and Unicode form).
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise UserInputError(f"segmentation data folder {str(root)!r} does not exist")
    out, folders = {}, {}
    for cls in class_folders(root):
        pairs = [(p, p.with_name(f"{p.stem}_mask.png")) for p in image_files(cls)
                 if not p.stem.endswith("_mask") and p.with_name(f"{p.stem}_mask.png").is_file()]
        if pairs:
            other = folders.setdefault(name_key(cls.name), cls.name)
            if other != cls.name:
                raise UserInputError(
                    f"class folders {other!r} and {cls.name!r} are one class name (equal up to "
                    f"case, spaces and Unicode form: {other!a} vs {cls.name!a}); "
                    f"merge them or rename one")
            out[normalize_name(cls.name)] = pairs
    if not out:
        raise UserInputError(f"no <class>/<name>.jpg + <name>_mask.png pairs in {str(root)!r}")
    return out


def evaluate(pipeline: SegmentPipeline, data_dir: str | Path, way: int = 1, shot: int = 1,
             episodes: int = 20, seed: int = 0, refine_steps: int | None = None) -> dict:
    """Mean IoU of a segmentation pipeline's PANet over random N-way K-shot episodes.

    Args:
        pipeline: the pipeline whose encoder, preprocessing and PANet are evaluated (not
            modified).
        data_dir: dataset folder (see module docstring).
        way: classes per episode (N >= 1); shot: support pairs per class (K >= 1).
        episodes: number of episodes; seed: seed of the episode sampler.
        refine_steps: self-support refinement rounds (None: the pipeline's; 0: plain PANet),
            for ablations.

    Returns:
        {"miou", "per_class" {class: IoU}, "foreground_iou" (mean per-query IoU of the query's
        class), "way", "shot", "episodes", "classes", "model", "refine_steps", "ms" (wall
        milliseconds, all episodes)}.

    Raises:
        UserInputError: a bad folder, way/shot/episodes < 1, refine_steps < 0, too few classes
            for N or too few pairs per class for K + 1, an image or mask that does not decode,
            or a class whose support masks are all empty in an episode.
    """
    pairs = load_pairs(data_dir)
    usable = sorted(c for c, v in pairs.items() if len(v) >= shot + 1)
    if way < 1 or shot < 1 or episodes < 1:
        raise UserInputError(f"way, shot and episodes must be >= 1, got {way}, {shot}, "
                             f"{episodes}")
    if len(usable) < way:
        raise UserInputError(f"{way}-way {shot}-shot needs {way} classes with at least "
                             f"{shot + 1} pairs; {data_dir} has {len(usable)}")
    panet = pipeline.panet
    if refine_steps is not None:
        if refine_steps < 0:
            raise UserInputError(f"refine_steps must be >= 0, got {refine_steps}")
        # a PANet of its own over the same encoder: the (shared) pipeline stays unchanged
        panet = PANet(panet.encoder, panet.feature_indices, panet.alpha, refine_steps)

    @lru_cache(maxsize=None)
    def item(path: Path, mask_path: Path):
        img = load_image(path).image
        mask = load_mask(mask_path, size=img.size, allow_empty=True)
        return img, mask

    rng = np.random.default_rng(seed)
    inter, union, per_query = {c: 0 for c in usable}, {c: 0 for c in usable}, []
    t0 = time.perf_counter()
    for _ in range(episodes):
        classes = [usable[i] for i in rng.choice(len(usable), way, replace=False)]
        support, queries = [], []
        for c in classes:
            picks = rng.choice(len(pairs[c]), shot + 1, replace=False)
            shots = [item(*pairs[c][i]) for i in picks[:shot]]
            support.append(pipeline.support_tensors(shots))
            queries.append(item(*pairs[c][picks[-1]]))
        try:
            protos = panet.prototypes(support)
        except ValueError as exc:  # every support mask of a class is empty
            raise UserInputError(str(exc)) from None
        for k, (c, (img, true)) in enumerate(zip(classes, queries)):
            probs, _ = panet(pipeline.tensor(img), protos, (img.height, img.width))
            pred = (probs.argmax(0) == k + 1).numpy()  # (H, W) bool: labelled as class k
            i, u = int((pred & true).sum()), int((pred | true).sum())
            inter[c] += i
            union[c] += u
            per_query.append(i / u if u else 1.0)
    ms = (time.perf_counter() - t0) * 1000.0
    per_class = {c: inter[c] / union[c] for c in usable if union[c]}
    return {"miou": float(np.mean(list(per_class.values()))), "per_class": per_class,
            "foreground_iou": float(np.mean(per_query)), "way": way, "shot": shot,
            "episodes": episodes, "classes": len(usable), "model": pipeline.name,
            "refine_steps": panet.refine_steps, "ms": ms}
