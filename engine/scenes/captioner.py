"""The learned scene captioner: its captions, training (``python -m engine
train-scene-captioner``), evaluation (``eval-scene-captioner``) and the hallucination check.

Captions are :func:`~engine.scenes.language.describe_scene` descriptions: the objects from left
to right, each pair tied by a true CLEVR relation chosen at random ("a large red metal cube is
left of a small cyan rubber sphere. a small cyan rubber sphere is behind ..."). Each scene has
:data:`N_REFERENCES` references (different relation choices), the several references CIDEr
needs; training draws one of them per step.

The network (:mod:`engine.models.scene_captioner`) reads the frozen scene parser's feature grid,
so training computes the grid of every training scene once (cached under
``<data_dir>/runs``) and then trains only the projection and the decoder, with teacher forcing
(cross-entropy on the next word).

Hallucination rate (Rohrbach et al., "Object Hallucination in Image Captioning", EMNLP 2018,
CHAIR_i): the share of object mentions in the generated captions that name no object of the
scene; a mention is an optional size, colour and material followed by a shape noun ("a large
red cube"), and it exists when some object of the scene has every attribute it names. Checked
against the ground-truth scene (held-out scenes) or against the scene parser's reading of the
image (:func:`scene_from_parser`).

VIVO (Hu et al., "VIVO: Visual Vocabulary Pre-Training for Novel Object Captioning", AAAI
2021): with ``held_out`` = "cylinder" no training caption names a cylinder (captions describe
the scene without its cylinders, while the images keep them), but the tag data (image -> the
set of object words of its scene) does; ``tag_steps`` > 0 pre-trains the visual vocabulary
(multi-label tags scored against the decoder's own word embeddings) before the caption steps.
With ``caption_images="without-held-out"`` the caption data are the training scenes re-rendered
*without* their held-out objects (nocaps' set-up: the caption data never show the novel object,
only the tag data do), and ``tag_weight`` > 0 keeps the tag loss during the caption steps.
At inference, :func:`fill_shape_slots` lets the visual vocabulary name each object the caption
mentions (tag-conditioned decoding, in the spirit of the constrained beam search of Anderson et
al., "Guided Open Vocabulary Image Captioning with Constrained Beam Search", EMNLP 2017, which
nocaps uses with detector tags).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from engine.models.scene_captioner import (BOS, EOS, PAD, SPECIALS, SceneCaptionerConfig,
                                           SceneCaptionerNet, detokenize, save_captioner,
                                           tokenize)
from engine.scenes.dataset import DatasetSpec, default_data_dir, load_dataset
from engine.scenes.language import describe_scene
from engine.scenes.scene import COLOR_NAMES, MATERIALS, SHAPES, SIZE_NAMES, Scene

#: References per scene (relation choices of describe_scene).
N_REFERENCES = 5
#: Every word a scene description uses.
CAPTION_WORDS = (("a", "an", "is", "left", "right", "of", "in", "front", "behind", "next", "to",
                  "there", "nothing", ".") + SIZE_NAMES + COLOR_NAMES + MATERIALS + SHAPES)
#: The words of tags (VIVO's visual vocabulary): attribute values and shape nouns.
TAG_WORDS = SIZE_NAMES + COLOR_NAMES + MATERIALS + SHAPES
_ATTRIBUTE_OF = {**{w: "size" for w in SIZE_NAMES}, **{w: "color" for w in COLOR_NAMES},
                 **{w: "material" for w in MATERIALS}}


def without_shape(scene: Scene, shape: str | None) -> Scene:
    """The scene with every object of ``shape`` removed (None: unchanged)."""
    if shape is None:
        return scene
    return Scene(tuple(o for o in scene.objects if o.shape != shape), scene.camera,
                 scene.lighting)


def references(scene: Scene, n: int = N_REFERENCES, held_out: str | None = None) -> list[str]:
    """``n`` descriptions of ``scene`` (relation choices seeded by k = 0..n-1), without the
    objects of shape ``held_out``."""
    s = without_shape(scene, held_out)
    return [describe_scene(s, np.random.default_rng(k)) for k in range(n)]


def tags(scene: Scene) -> set[str]:
    """The scene's object words (VIVO's tags): every size, colour, material and shape."""
    return {getattr(o, a) for o in scene.objects for a in ("size", "color", "material", "shape")}


# -- hallucination ---------------------------------------------------------------------------
def mentions(caption: str) -> list[dict[str, str]]:
    """Object mentions of a caption: ``[{"shape": "cube", "color": "red", ...}, ...]``, one per
    shape noun, with the attribute words just before it."""
    out, attrs = [], {}
    for w in tokenize(caption):
        if w in SHAPES:
            out.append({**attrs, "shape": w})
            attrs = {}
        elif w in _ATTRIBUTE_OF:
            attrs[_ATTRIBUTE_OF[w]] = w
        else:
            attrs = {}
    return out


def exists(mention: dict[str, str], scene: Scene) -> bool:
    """Whether some object of ``scene`` has every attribute the mention names."""
    return any(all(getattr(o, a) == v for a, v in mention.items()) for o in scene.objects)


@dataclass(frozen=True)
class HallucinationScore:
    """CHAIR-style counts over a set of captions.

    Attributes:
        mentions: object mentions in the captions. hallucinated: those naming no object of
        their scene. captions, captions_with_hallucination: captions, and those with >= 1.
        objects, objects_named: ground-truth objects, and those named with all four
        attributes by some mention of their caption (object recall).
    """

    mentions: int
    hallucinated: int
    captions: int
    captions_with_hallucination: int
    objects: int
    objects_named: int

    @property
    def rate(self) -> float:
        """CHAIR_i: hallucinated / mentions (0 when nothing is mentioned)."""
        return self.hallucinated / self.mentions if self.mentions else 0.0

    def as_dict(self) -> dict:
        return {"hallucination_rate": round(self.rate, 4),
                "captions_with_hallucination": round(
                    self.captions_with_hallucination / max(1, self.captions), 4),
                "object_recall": round(self.objects_named / max(1, self.objects), 4),
                "mentions": self.mentions, "hallucinated": self.hallucinated,
                "captions": self.captions}


def hallucination(captions: Sequence[str], scenes: Sequence[Scene]) -> HallucinationScore:
    """Count hallucinated mentions of ``captions[i]`` against ``scenes[i]``.

    Raises:
        ValueError: the lists differ in length.
    """
    if len(captions) != len(scenes):
        raise ValueError(f"{len(captions)} captions for {len(scenes)} scenes")
    m = h = ch = n_obj = named = 0
    for cap, scene in zip(captions, scenes):
        ms = mentions(cap)
        bad = sum(not exists(x, scene) for x in ms)
        m, h, ch = m + len(ms), h + bad, ch + (bad > 0)
        full = [x for x in ms if len(x) == 4]
        n_obj += len(scene.objects)
        named += sum(any(all(getattr(o, a) == v for a, v in x.items()) for x in full)
                     for o in scene.objects)
    return HallucinationScore(m, h, len(captions), ch, n_obj, named)


def scene_from_parser(parsed_objects) -> Scene:
    """A Scene of the scene parser's objects (``[ParsedObject, ...]`` of one image), for the
    hallucination check of an image without ground truth."""
    return Scene(tuple(p.object for p in parsed_objects))


# -- data ------------------------------------------------------------------------------------
def encode_batch(net: SceneCaptionerNet, captions: Sequence[str]) -> torch.Tensor:
    """(B, T) ids ``<bos> words <eos> <pad>...`` (T = longest + 2, at most max_len)."""
    c = net.config
    ids = [[SPECIALS.index(BOS)] + net.encode_text(t)[: c.max_len - 2] + [SPECIALS.index(EOS)]
           for t in captions]
    out = torch.full((len(ids), max(map(len, ids))), SPECIALS.index(PAD), dtype=torch.long)
    for i, s in enumerate(ids):
        out[i, :len(s)] = torch.tensor(s)
    return out


def caption_loss(net: SceneCaptionerNet, feats: torch.Tensor, tokens: torch.Tensor
                 ) -> torch.Tensor:
    """Teacher forcing: mean cross-entropy of each next word (padding ignored)."""
    logits, _ = net(feats, tokens[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1),
                           ignore_index=SPECIALS.index(PAD))


def tag_loss(net: SceneCaptionerNet, feats: torch.Tensor, targets: torch.Tensor,
             word_ids: torch.Tensor) -> torch.Tensor:
    """VIVO's tag pre-training: binary cross-entropy of every tag word (B, n_tags) targets."""
    return F.binary_cross_entropy_with_logits(net.tag_logits(feats)[:, word_ids], targets)


def grid_features(net: SceneCaptionerNet, images: np.ndarray, batch: int = 100
                  ) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, C, g, g) float16 frozen parser grids."""
    out = []
    for a in range(0, len(images), batch):
        x = torch.from_numpy(images[a:a + batch]).permute(0, 3, 1, 2).float() / 255.0
        out.append(net.grid_features(x).half())
    return torch.cat(out)


def _cached_features(net, spec: DatasetSpec, data_dir: Path, work: Path, log):
    path = work / f"captioner-grid-{spec.split}-{spec.n}-{spec.size}px.pt"
    data = load_dataset(spec, data_dir)
    scenes = [Scene.from_json(str(s)) for s in data["scenes"]]
    if path.exists():
        return torch.load(path), scenes, data["images"]
    t0 = time.perf_counter()
    feats = grid_features(net, data["images"])
    torch.save(feats, path)
    log(f"grid features of {spec.split} ({spec.n}) in {time.perf_counter() - t0:.0f}s")
    return feats, scenes, data["images"]


def _removed_features(net, spec: DatasetSpec, scenes: Sequence[Scene], held_out: str,
                      work: Path, log) -> torch.Tensor:
    """Grid features of ``scenes`` re-rendered without their ``held_out`` objects (same camera
    and lights, the dataset's size and supersampling), cached under ``work``."""
    from engine.scenes.render import render
    path = work / f"captioner-grid-{spec.split}-{spec.n}-{spec.size}px-without-{held_out}.pt"
    if path.exists():
        return torch.load(path)
    t0 = time.perf_counter()
    out = []
    for a in range(0, len(scenes), 100):
        images = np.stack([render(without_shape(s, held_out), spec.size, spec.supersample).image
                           for s in scenes[a:a + 100]])
        out.append(grid_features(net, images))
        log(f"rendered {a + len(images)}/{len(scenes)} scenes without {held_out}s "
            f"({time.perf_counter() - t0:.0f}s)")
    feats = torch.cat(out)
    torch.save(feats, path)
    return feats


# -- training --------------------------------------------------------------------------------
#: What the caption steps of a held-out run see (:class:`CaptionerTrainConfig`).
CAPTION_IMAGES = ("full", "without-held-out")


@dataclass(frozen=True)
class CaptionerTrainConfig:
    """Settings of a run (all recorded in the checkpoint's metadata).

    Attributes:
        n_train, n_val: scenes of the train / validation splits.
        d_model, layers, heads, ff: the decoder.
        steps, batch_size, lr, weight_decay, warmup: caption optimisation.
        held_out: a shape no training caption names (VIVO experiment), or None.
        tag_steps: VIVO tag pre-training steps before the caption steps (0: none).
        caption_images: with ``held_out``, what the caption steps see: "full" (the training
            images, described without their held-out objects) or "without-held-out" (every
            training scene re-rendered without its held-out objects, described fully).
        tag_weight: weight of the tag loss added to every caption step (0: captions only).
        seed, threads, checkpoint_every, max_minutes, out, data_dir, work_dir, command: as in
            the scene parser's trainer.
        parser: the scene parser checkpoint whose CNN is the frozen encoder.
    """

    n_train: int = 8000
    n_val: int = 500
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    ff: int = 384
    steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup: int = 100
    held_out: str | None = None
    tag_steps: int = 0
    caption_images: str = "full"
    tag_weight: float = 0.0
    seed: int = 0
    threads: int = 1
    checkpoint_every: int = 100
    max_minutes: float = 60.0
    out: str = "assets/scenes/scene_captioner.safetensors"
    parser: str = "assets/scenes/scene_parser.safetensors"
    data_dir: str | None = None
    work_dir: str | None = None
    command: str = ""

    def __post_init__(self):
        for name in ("n_train", "n_val", "steps", "batch_size", "threads", "checkpoint_every",
                     "d_model", "layers", "heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.tag_steps < 0 or self.tag_weight < 0:
            raise ValueError(f"tag_steps and tag_weight must be >= 0, got {self.tag_steps}, "
                             f"{self.tag_weight}")
        if self.caption_images not in CAPTION_IMAGES:
            raise ValueError(f"caption_images must be one of {', '.join(CAPTION_IMAGES)}, got "
                             f"{self.caption_images!r}")
        if self.caption_images != "full" and self.held_out is None:
            raise ValueError(f"caption_images={self.caption_images!r} needs held_out")
        if self.held_out is not None and self.held_out not in SHAPES:
            raise ValueError(f"held_out must be one of {', '.join(SHAPES)}, got {self.held_out!r}")


def new_captioner(cfg: CaptionerTrainConfig) -> SceneCaptionerNet:
    """A fresh network with the parser's (frozen) weights as encoder."""
    from engine.models.scene_parser import load_parser
    torch.manual_seed(cfg.seed)
    net = SceneCaptionerNet(SceneCaptionerConfig(
        words=CAPTION_WORDS, d_model=cfg.d_model, layers=cfg.layers, heads=cfg.heads, ff=cfg.ff))
    net.encoder.load_state_dict(load_parser(cfg.parser).state_dict())
    return net


def _lr(cfg: CaptionerTrainConfig, step: int, total: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, total - cfg.warmup)
    return cfg.lr * 0.5 * (1 + np.cos(np.pi * min(t, 1.0)))


def train_captioner(cfg: CaptionerTrainConfig, log: Callable[[str], None] = print) -> dict:
    """Train (or resume), save ``cfg.out`` and return the card's facts. The run is
    ``tag_steps`` tag steps (if any) then ``steps`` caption steps; batches are drawn from
    ``seed`` and the step, so a resumed run sees the same batches."""
    torch.set_num_threads(cfg.threads)
    data_dir = Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    work = Path(cfg.work_dir) if cfg.work_dir else data_dir / "runs"
    work.mkdir(parents=True, exist_ok=True)
    ckpt_path = work / (Path(cfg.out).stem + ".ckpt.pt")
    net = new_captioner(cfg)
    feats, scenes, _ = _cached_features(net, DatasetSpec("scenes", "train", cfg.n_train),
                                        data_dir, work, log)
    vfeats, vscenes, _ = _cached_features(net, DatasetSpec("scenes", "val", cfg.n_val),
                                          data_dir, work, log)
    refs = [references(s, held_out=cfg.held_out) for s in scenes]
    cap_feats = feats
    if cfg.caption_images == "without-held-out":
        cap_feats = _removed_features(net, DatasetSpec("scenes", "train", cfg.n_train), scenes,
                                      cfg.held_out, work, log)
    tag_ids = torch.tensor([net.config.vocab.index(w) for w in TAG_WORDS])
    tag_targets = torch.tensor([[w in tags(s) for w in TAG_WORDS] for s in scenes],
                               dtype=torch.float32)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, wall, cpu = 0, 0.0, 0.0
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("command", "max_minutes")}
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        if ck["settings"] == settings:
            net.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            step, wall, cpu = ck["step"], ck["wall_time_s"], ck.get("cpu_time_s", 0.0)
            log(f"resumed at step {step} ({wall:.0f}s of training so far)")
        else:
            log(f"{ckpt_path} has other settings: starting afresh")
    total = cfg.tag_steps + cfg.steps
    history: list[dict] = []
    t0, c0 = time.perf_counter() - wall, time.process_time() - cpu
    running = None
    stopped = False
    while step < total:
        rng = np.random.default_rng([cfg.seed, step])
        idx = np.sort(rng.choice(cfg.n_train, cfg.batch_size, replace=False))
        phase = "tag" if step < cfg.tag_steps else "caption"
        n_phase = cfg.tag_steps if phase == "tag" else cfg.steps
        k_phase = step if phase == "tag" else step - cfg.tag_steps
        if phase == "caption" and k_phase == 0 and cfg.tag_steps:
            opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, k_phase, n_phase)
        net.train()
        x = feats[idx].float()
        if phase == "tag":
            loss = tag_loss(net, x, tag_targets[idx], tag_ids)
        else:
            caps = [refs[i][int(rng.integers(N_REFERENCES))] for i in idx]
            loss = caption_loss(net, cap_feats[idx].float(), encode_batch(net, caps))
            if cfg.tag_weight:
                loss = loss + cfg.tag_weight * tag_loss(net, x, tag_targets[idx], tag_ids)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        lv = float(loss.detach())
        running = lv if running is None or k_phase == 0 else 0.95 * running + 0.05 * lv
        step += 1
        elapsed = time.perf_counter() - t0
        stopped = elapsed > cfg.max_minutes * 60
        if step % cfg.checkpoint_every == 0 or step == total or stopped:
            net.eval()
            with torch.no_grad():
                vx = vfeats[:200].float()
                vl = float(caption_loss(net, vx, encode_batch(net, [references(
                    s, 1, cfg.held_out)[0] for s in vscenes[:200]])))
            history.append({"step": step, "phase": phase, "wall_time_s": round(elapsed, 1),
                            "cpu_time_s": round(time.process_time() - c0, 1),
                            "loss": round(running, 4), "val_loss_200": round(vl, 4)})
            log(json.dumps(history[-1]))
            torch.save({"settings": settings, "model": net.state_dict(),
                        "optimizer": opt.state_dict(), "step": step, "wall_time_s": elapsed,
                        "cpu_time_s": time.process_time() - c0}, ckpt_path)
            if stopped:
                log(f"wall-time budget of {cfg.max_minutes} min spent at step {step}")
                break
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    net.eval()
    val = evaluate(net, vfeats, vscenes, held_out=cfg.held_out)
    card = {"config": settings, "command": cfg.command, "steps_done": step,
            "budget_stopped": stopped, "train_wall_time_s": round(wall, 1),
            "train_cpu_time_s": round(cpu, 1), "threads": cfg.threads, "validation": val,
            "history": history}
    save_captioner(net, cfg.out, {"card": card})
    log(json.dumps({"validation": val, "train_wall_time_s": round(wall, 1)}))
    return card


# -- evaluation ------------------------------------------------------------------------------
@torch.no_grad()
def fill_shape_slots(net: SceneCaptionerNet, feats: torch.Tensor, words: list[str],
                     maps: torch.Tensor, shapes: Sequence[str] = SHAPES,
                     threshold: float | None = None) -> list[str]:
    """Tag-conditioned decoding: the visual vocabulary names the object of every shape slot.

    Each shape noun the decoder wrote ("cube", ...) is replaced by the shape word whose
    visual-vocabulary score (:meth:`SceneCaptionerNet.tag_logits`' per-cell score, the cell's
    memory vector against the word's embedding) is highest where the decoder looked while
    writing it (the word's cross-attention map as weights over the cells). A word that no
    caption trained on (VIVO's novel object) can so fill a slot, as detector tags do in the
    constrained beam search that nocaps uses (Anderson et al., EMNLP 2017); only the nouns
    change, so the caption's structure stays the decoder's. With ``threshold``, a slot may only
    take a word the image's tags detect (:meth:`SceneCaptionerNet.tag_logits` above
    ``threshold``: the words of the image's constraint set); with none detected the decoder's
    word stays.

    Args:
        net: the captioner.
        feats: (1, C, g, g) grid features of the image.
        words: the decoded words (no specials).
        maps: (len(words), g, g) their cross-attention maps (each sums to 1).
        shapes: the words a slot may take (those in the vocabulary).
        threshold: least image-level tag logit of a word a slot may take (None: any word).

    Returns:
        The words with every shape slot filled.

    Raises:
        ValueError: ``maps`` does not have one map per word.
    """
    if len(maps) != len(words):
        raise ValueError(f"{len(maps)} attention maps for {len(words)} words")
    vocab = net.config.vocab
    shapes = [w for w in shapes if w in vocab]
    slots = [k for k, w in enumerate(words) if w in shapes]
    if not slots:
        return list(words)
    if threshold is not None:
        logits = net.tag_logits(feats.float())[0]                      # (V,)
        shapes = [w for w in shapes if float(logits[vocab.index(w)]) > threshold]
        if not shapes:
            return list(words)
    m = net.memory(feats.float())[0]                                   # (S, d)
    e = net.embed.weight[[vocab.index(w) for w in shapes]]             # (n_shapes, d)
    cell_scores = m @ e.T / math.sqrt(net.config.d_model)              # (S, n_shapes)
    out = list(words)
    for k in slots:
        score = maps[k].reshape(-1).float() @ cell_scores              # (n_shapes,)
        out[k] = shapes[int(score.argmax())]
    return out


def fill_shape_slots_from_objects(words: list[str], maps: torch.Tensor, objects,
                                  image_size: int = 128, radius: float = 12.0) -> list[str]:
    """Slot filling with a detector's tags (nocaps' constrained decoding uses detector tags,
    Anderson et al., EMNLP 2017): every shape noun becomes the shape of the detected object
    nearest the peak of the word's cross-attention map, if one lies within ``radius`` pixels.

    Args:
        words: the decoded words. maps: (len(words), g, g) their attention maps.
        objects: the scene parser's :class:`~engine.scenes.parser.ParsedObject` list of the
            image (``uv`` in pixels of an ``image_size`` square image).
        radius: largest distance (pixels) from the peak cell's centre to an object's centre.

    Returns:
        The words with the shape slots filled (unchanged where no object is near).

    Raises:
        ValueError: ``maps`` does not have one map per word.
    """
    if len(maps) != len(words):
        raise ValueError(f"{len(maps)} attention maps for {len(words)} words")
    out = list(words)
    if not objects:
        return out
    g = maps.shape[-1]
    cell = image_size / g
    uv = np.array([o.uv for o in objects], np.float64)                  # (n, 2) pixels
    for k, w in enumerate(words):
        if w not in SHAPES:
            continue
        r, c = divmod(int(maps[k].reshape(-1).argmax()), g)
        d = np.hypot(uv[:, 0] - (c + 0.5) * cell, uv[:, 1] - (r + 0.5) * cell)
        j = int(d.argmin())
        if d[j] <= radius:
            out[k] = objects[j].object.shape
    return out


def caption_batch(net: SceneCaptionerNet, feats: torch.Tensor, batch: int = 100,
                  fill_slots: bool = False, slot_threshold: float | None = None,
                  objects=None) -> list[str]:
    """Greedy captions of (N, C, g, g) grid features (with ``fill_slots``, every shape noun
    chosen by :func:`fill_shape_slots`, gated by ``slot_threshold``; with ``objects``, the
    scene parser's objects of each image, by :func:`fill_shape_slots_from_objects`)."""
    out = []
    for a in range(0, len(feats), batch):
        fb = feats[a:a + batch].float()
        ids, maps = net.greedy(fb)
        for i, (s, m) in enumerate(zip(ids, maps)):
            words = net.decode_ids(s)
            if fill_slots:
                words = fill_shape_slots(net, fb[i:i + 1], words, m,
                                         threshold=slot_threshold)
            if objects is not None:
                words = fill_shape_slots_from_objects(words, m, objects[a + i])
            out.append(detokenize(words))
    return out


def evaluate(net: SceneCaptionerNet, feats: torch.Tensor, scenes: Sequence[Scene],
             held_out: str | None = None, parsed: Sequence[Scene] | None = None,
             fill_slots: bool = False, slot_threshold: float | None = None,
             parsed_objects=None) -> dict:
    """BLEU-4 and CIDEr-D against :data:`N_REFERENCES` full references per scene (every
    object, the held-out shape included), the hallucination rate against the ground truth
    (and against ``parsed``, the scene parser's reading of each image, if given) and, with
    ``held_out``, how often scenes that contain it get the word (and how often scenes without
    it get it anyway). ``fill_slots``: decode with :func:`fill_shape_slots`."""
    from engine.scenes.metrics import bleu4, cider
    caps = caption_batch(net, feats, fill_slots=fill_slots, slot_threshold=slot_threshold,
                         objects=parsed_objects)
    refs = [references(s) for s in scenes]
    out = {"scenes": len(scenes), "bleu4": round(bleu4(refs, caps), 4),
           "cider": round(cider(refs, caps), 4),
           **hallucination(caps, scenes).as_dict(),
           "exact_match": round(float(np.mean([c in r for c, r in zip(caps, refs)])), 4)}
    if parsed is not None:
        out["hallucination_rate_vs_parser"] = round(hallucination(caps, parsed).rate, 4)
    if held_out is not None:
        has = [i for i, s in enumerate(scenes) if any(o.shape == held_out for o in s.objects)]
        named = [held_out in tokenize(caps[i]) for i in has]
        out["held_out"] = held_out
        out["held_out_scenes"] = len(has)
        out["held_out_named"] = round(float(np.mean(named)), 4) if has else 0.0
        hasnt = [i for i in range(len(scenes)) if i not in set(has)]
        out["held_out_named_when_absent"] = (round(float(np.mean(
            [held_out in tokenize(caps[i]) for i in hasnt])), 4) if hasnt else 0.0)
    out["fill_slots"] = fill_slots
    if fill_slots and slot_threshold is not None:
        out["slot_threshold"] = slot_threshold
    out["fill_slots_from_parser"] = parsed_objects is not None
    out["examples"] = [{"caption": caps[i], "reference": refs[i][0]} for i in range(3)]
    return out


def evaluate_split(net: SceneCaptionerNet, split: str = "test", n: int = 1000,
                   data_dir: str | Path | None = None, held_out: str | None = None,
                   log: Callable[[str], None] = print, parser=None,
                   fill_slots: bool = False, slot_threshold: float | None = None,
                   fill_from_parser: bool = False) -> dict:
    """:func:`evaluate` on ``n`` scenes of a held-out split (grid features cached); with
    ``parser`` (a :class:`~engine.scenes.parser.SceneParser`) also the hallucination rate
    against its reading of the images."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    work = data_dir / "runs"
    work.mkdir(parents=True, exist_ok=True)
    feats, scenes, images = _cached_features(net, DatasetSpec("scenes", split, n), data_dir,
                                             work, log)
    parsed = objects = None
    if parser is not None:
        objects = parser(images)
        parsed = [scene_from_parser(p) for p in objects]
    return evaluate(net, feats, scenes, held_out, parsed, fill_slots, slot_threshold,
                    objects if fill_from_parser else None)


__all__ = ["CAPTION_WORDS", "CaptionerTrainConfig", "HallucinationScore", "N_REFERENCES",
           "TAG_WORDS", "caption_batch", "caption_loss", "encode_batch", "evaluate",
           "evaluate_split", "exists", "fill_shape_slots", "fill_shape_slots_from_objects",
           "grid_features", "hallucination", "mentions",
           "new_captioner", "references", "scene_from_parser", "tag_loss", "tags",
           "train_captioner", "without_shape"]
