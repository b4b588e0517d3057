"""Change captioning with DUDA on the scene world: captions <-> tokens, the inference wrapper
and the paper's evaluation (BLEU-4, CIDEr, per change type; "no change" accuracy; pointing game).

The network is :class:`engine.models.duda.DudaNet` (Park et al., "Robust Change Captioning",
ICCV 2019); it is trained by :mod:`engine.scenes.train_duda` on the "changes" datasets of
:mod:`engine.scenes.dataset` (CLEVR-Change pairs, half of them distractors: camera and light
moved, nothing else).

Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016), on
DUDA's grid: a map *hits* when its peak grid cell (4x4 pixels of a 64x64 image) covers at least
one pixel of the changed object's mask in that image. The before map is scored on pairs whose
object is in the before image (colour, material, drop, move), the after map on pairs whose
object is in the after image (colour, material, add, move). ``chance`` is the hit rate of a cell
drawn uniformly (the share of cells that touch the mask).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch

from engine.models.duda import BOS, EOS, PAD, SPECIALS, UNK, DudaNet
from engine.scenes.changes import CAPTION_TEMPLATES, PAIR_TYPES
from engine.scenes.metrics import caption_scores, tokenize
from engine.scenes.scene import COLOR_NAMES, MATERIALS

#: The distractor captions, tokenised: a generated caption among them says "no change".
NO_CHANGE = frozenset(tokenize(c) for c in CAPTION_TEMPLATES["distractor"])


_ADD = frozenset(("added", "appeared", "new"))
_DROP = frozenset(("disappeared", "missing", "removed"))
_MOVE = frozenset(("moved", "location"))
_ATTRIBUTE = frozenset(("changed", "turned", "became", "painted", "made"))


def caption_type(caption: str) -> str | None:
    """The change type a caption of :data:`engine.scenes.changes.CAPTION_TEMPLATES` states.

    Reads the template's verb ("appeared" -> "add", "was removed" -> "drop", "changed its
    location" -> "move", ...) and, for an attribute change, whether the new value (the last
    word) is a material ("metal", "rubber") or a colour.

    Args:
        caption: a generated or reference caption.

    Returns:
        One of ``PAIR_TYPES``, or None for a sentence no template could have written.
    """
    text = tokenize(caption)
    if text in NO_CHANGE:
        return "distractor"
    words = text.split()
    if not words:
        return None
    ws = set(words)
    if ws & _MOVE:
        return "move"
    if ws & _DROP:
        return "drop"
    if ws & _ADD:
        return "add"
    if ws & _ATTRIBUTE:
        if words[-1] in MATERIALS:
            return "material"
        if words[-1] in COLOR_NAMES:
            return "color"
    return None


def build_vocab(captions) -> tuple[str, ...]:
    """``SPECIALS`` + the sorted words of ``captions`` (an iterable of strings)."""
    words = sorted({w for c in captions for w in tokenize(c).split()})
    return SPECIALS + tuple(words)


def encode(caption: str, vocab: tuple[str, ...], length: int) -> np.ndarray:
    """``caption`` -> (length,) int64: BOS, word ids (UNK for unknown words), EOS, PAD...

    Raises:
        ValueError: the caption does not fit in ``length`` tokens.
    """
    index = {w: i for i, w in enumerate(vocab)}
    ids = [BOS] + [index.get(w, UNK) for w in tokenize(caption).split()] + [EOS]
    if len(ids) > length:
        raise ValueError(f"caption {caption!r} has {len(ids)} tokens, more than {length}")
    return np.array(ids + [PAD] * (length - len(ids)), np.int64)


def decode(tokens, vocab: tuple[str, ...]) -> str:
    """Word ids (stopping at EOS; PAD/BOS skipped) -> the caption string."""
    words = []
    for t in (int(x) for x in tokens):
        if t == EOS:
            break
        if t not in (PAD, BOS):
            words.append(vocab[t])
    return " ".join(words)


def to_tensor(images: np.ndarray, size: int) -> torch.Tensor:
    """(B, H, W, 3) or (H, W, 3) uint8 -> (B, 3, size, size) float32 in [0, 1] (bilinear resize
    when H, W differ from ``size``)."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8))  # a writable copy
    if x.ndim == 3:
        x = x[None]
    x = x.permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-2:] != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                            align_corners=False, antialias=True)
    return x


@dataclass(frozen=True)
class ChangeCaption:
    """DUDA's answer for one pair.

    Attributes:
        caption: the generated sentence.
        words: its words.
        alpha: (len(words), 3) float32, per word the dynamic speaker's weights of the before,
            difference and after features (rows sum to 1).
        map_before, map_after: (h, w) float32 dual-attention maps (each sums to 1).
        no_change: the caption is one of the "no change" sentences.
    """

    caption: str
    words: tuple[str, ...]
    alpha: np.ndarray
    map_before: np.ndarray
    map_after: np.ndarray

    @property
    def no_change(self) -> bool:
        return self.caption in NO_CHANGE

    def to_json(self) -> dict:
        return {"caption": self.caption, "no_change": self.no_change,
                "dynamic_attention": [{"word": w, "before": round(float(a[0]), 3),
                                       "difference": round(float(a[1]), 3),
                                       "after": round(float(a[2]), 3)}
                                      for w, a in zip(self.words, self.alpha)]}


class DudaCaptioner:
    """Read-only wrapper: (before, after) images -> :class:`ChangeCaption` list.

    Args:
        net: a trained :class:`DudaNet` (put in eval mode here).
        batch_size: pairs per forward pass.
    """

    def __init__(self, net: DudaNet, batch_size: int = 64):
        self.net = net.eval()
        self.batch_size = batch_size

    @property
    def image_size(self) -> int:
        return self.net.config.image_size

    def __call__(self, before: np.ndarray, after: np.ndarray) -> list[ChangeCaption]:
        """Caption pairs.

        Args:
            before, after: (B, H, W, 3) or (H, W, 3) uint8 RGB (resized to the model's size).

        Returns:
            One :class:`ChangeCaption` per pair.

        Raises:
            ValueError: shapes that are not RGB images or differ between before and after.
        """
        before, after = np.asarray(before), np.asarray(after)
        if before.ndim == 3:
            before, after = before[None], after[None]
        if before.ndim != 4 or before.shape[-1] != 3 or before.shape[0] != after.shape[0]:
            raise ValueError(f"expected (B, H, W, 3) RGB batches, got {before.shape} and "
                             f"{after.shape}")
        vocab = self.net.config.vocab
        out = []
        for a in range(0, len(before), self.batch_size):
            xb = to_tensor(before[a:a + self.batch_size], self.image_size)
            xa = to_tensor(after[a:a + self.batch_size], self.image_size)
            g = self.net.generate(xb, xa)
            for i in range(xb.shape[0]):
                caption = decode(g["tokens"][i], vocab)
                words = tuple(caption.split())
                out.append(ChangeCaption(caption, words, g["alpha"][i, :len(words)].numpy(),
                                         g["map_before"][i].numpy(), g["map_after"][i].numpy()))
        return out


def peak_hits(attention: np.ndarray, mask: np.ndarray) -> tuple[bool, float]:
    """Pointing game on a grid.

    Args:
        attention: (h, w) map. mask: (H, W) bool, H and W multiples of h and w.

    Returns:
        (the peak cell covers a mask pixel, share of cells that do: the chance rate).
    """
    h, w = attention.shape
    H, W = mask.shape
    cells = mask.reshape(h, H // h, w, W // w).any(axis=(1, 3))       # (h, w)
    r, c = np.unravel_index(int(np.argmax(attention)), attention.shape)
    return bool(cells[r, c]), float(cells.mean())


def evaluate(captioner: DudaCaptioner, data: dict[str, np.ndarray],
             with_meteor: bool = False) -> dict:
    """The paper's measures on a "changes" dataset (see the module docstring).

    Args:
        captioner: the model.
        data: arrays of :func:`engine.scenes.dataset.load_dataset` for kind "changes".
        with_meteor: add METEOR (pycocoevalcap's Java jar) where Java is installed.

    Returns:
        ``{"total": {...}, "per_type": {type: {...}}, "examples": [...]}`` where each entry holds
        ``n``, ``bleu4``, ``cider``, ``no_change_rate`` (share of captions saying "no change":
        the accuracy on distractors, the false-alarm-free rate's complement elsewhere),
        ``type_accuracy`` (share of captions stating the pair's change type, read by
        :func:`caption_type`), ``speaker_weights`` (the dynamic speaker's mean weights of
        before, difference, after over all generated words) and, for
        changes, ``pointing_before`` / ``pointing_after`` with their ``chance`` rates.
    """
    preds = captioner(data["before"], data["after"])
    pairs = [json.loads(str(p)) for p in data["pairs"]]
    types = [str(t) for t in data["types"]]
    refs = [p["captions"] for p in pairs]
    cands = [p.caption for p in preds]
    point: dict[str, dict[str, list]] = {}
    for i, (p, pr) in enumerate(zip(pairs, preds)):
        for ch in p["changes"][:1]:
            for side, idx, ids, amap in (("before", ch["before_index"], data["before_ids"][i],
                                          pr.map_before),
                                         ("after", ch["after_index"], data["after_ids"][i],
                                          pr.map_after)):
                if idx is None:
                    continue
                mask = ids == idx
                if not mask.any():
                    continue
                hit, chance = peak_hits(amap, mask)
                d = point.setdefault(types[i], {}).setdefault(side, [])
                d.append((hit, chance))

    def block(sel: list[int], typ: str | None) -> dict:
        s = caption_scores([refs[i] for i in sel], [cands[i] for i in sel], with_meteor)
        s["no_change_rate"] = float(np.mean([preds[i].no_change for i in sel]))
        s["type_accuracy"] = float(np.mean([caption_type(cands[i]) == types[i] for i in sel]))
        words = [preds[i].alpha for i in sel if len(preds[i].alpha)]
        if words:
            s["speaker_weights"] = [round(float(a), 3) for a in np.concatenate(words).mean(0)]
        keys = [typ] if typ else [t for t in point]
        for side in ("before", "after"):
            hits = [h for k in keys for h in point.get(k, {}).get(side, [])]
            if hits:
                s[f"pointing_{side}"] = float(np.mean([h for h, _ in hits]))
                s[f"pointing_{side}_chance"] = float(np.mean([c for _, c in hits]))
                s[f"pointing_{side}_n"] = len(hits)
        return s

    per_type = {t: block([i for i, x in enumerate(types) if x == t], t)
                for t in PAIR_TYPES if t in types}
    return {"total": block(list(range(len(types))), None), "per_type": per_type,
            "examples": [{"type": types[i], "seed": int(data["seeds"][i]), "caption": cands[i],
                          "reference": refs[i][0]} for i in range(min(12, len(types)))]}


__all__ = ["ChangeCaption", "DudaCaptioner", "NO_CHANGE", "build_vocab", "caption_type",
           "decode", "encode",
           "evaluate", "peak_hits", "to_tensor"]
