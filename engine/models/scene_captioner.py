"""The scene captioner network: a grid of visual features + a small Transformer decoder with
cross-attention ("Show, Attend and Tell", Xu et al., ICML 2015, with the Transformer of
Vaswani et al., NeurIPS 2017 as the decoder), for the CLEVR-style scene world.

Encoder: the scene parser's CNN (:class:`~engine.models.scene_parser.SceneParserNet`, trained on
the world, frozen). Its stride-4 decoder features (2 width channels) and its output maps
(heatmap, offset, attribute logits) are concatenated and average-pooled to a ``grid`` x ``grid``
map (16 x 16 at 128 x 128 input, i.e. stride 8), projected to ``d_model`` and given a learned
2-D position embedding: one memory vector per cell.

Decoder: ``layers`` pre-norm Transformer decoder layers (causal self-attention, cross-attention
over the grid, feed-forward), word and position embeddings, output layer tied to the word
embeddings. Trained with teacher forcing (:meth:`SceneCaptionerNet.forward`); decoded greedily,
by beam search or by nucleus sampling (Holtzman et al., ICLR 2020) with a key/value cache.
Every decoded word comes with the last layer's cross-attention over the grid (heads averaged;
each map sums to 1).

Visual vocabulary (VIVO, Hu et al., AAAI 2021): :meth:`SceneCaptionerNet.tag_logits` scores every
word against every grid cell in the shared word-embedding space (max over cells), so tags
(image -> set of object words) can pre-train the same embeddings the captioner writes with.

The vocabulary travels in the checkpoint; this module does not know the scene world's words.
The shipped weights are ``assets/scenes/scene_captioner.safetensors`` (card
``scene_captioner.md``), registered as model ``scene-captioner`` when the file is there.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from engine.models._registry import ModelSpec, register_model
from engine.models.preprocess import Preprocess
from engine.models.scene_parser import SceneParserConfig, SceneParserNet

ASSET = Path(__file__).resolve().parents[2] / "assets" / "scenes" / "scene_captioner.safetensors"
#: The metadata ``format`` value of these checkpoints.
FORMAT = "vl-demo-scene-captioner-v1"
#: Special tokens, always the first ids of the vocabulary.
PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
#: Input preprocessing: RGB in [0, 1] at 128x128 (the parser normalises inside).
CAPTIONER_PREPROCESS = Preprocess(size=128, crop_pct=1.0, mean=(0.0, 0.0, 0.0),
                                  std=(1.0, 1.0, 1.0), interpolation="bilinear")


@dataclass(frozen=True)
class SceneCaptionerConfig:
    """Architecture of :class:`SceneCaptionerNet`.

    Attributes:
        words: the vocabulary after :data:`SPECIALS` (token id = 4 + index).
        d_model, heads, layers, ff: the decoder's width, attention heads, layers, hidden units.
        max_len: the longest token sequence (with <bos>/<eos>).
        grid: side of the feature grid (cells); the input side must be ``4 * grid * k``.
        parser_width: width of the parser CNN used as encoder.
        dropout: dropout in the decoder (training only).
    """

    words: tuple[str, ...] = ()
    d_model: int = 128
    heads: int = 4
    layers: int = 2
    ff: int = 384
    max_len: int = 136
    grid: int = 16
    parser_width: int = 16
    dropout: float = 0.1
    parser_heads: tuple[tuple[str, int], ...] = field(
        default=(("shape", 3), ("color", 8), ("size", 2), ("material", 2)))

    @property
    def vocab(self) -> tuple[str, ...]:
        return SPECIALS + tuple(self.words)

    @property
    def feature_channels(self) -> int:
        return 2 * self.parser_width + 3 + sum(k for _, k in self.parser_heads)

    @classmethod
    def from_dict(cls, d: dict) -> SceneCaptionerConfig:
        d = dict(d)
        d["words"] = tuple(d["words"])
        d["parser_heads"] = tuple((str(n), int(k)) for n, k in d["parser_heads"])
        return cls(**d)


class _Attention(nn.Module):
    """Multi-head attention that returns its weights (B, heads, Tq, Tk)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.h, self.dh).transpose(1, 2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q (B, Tq, d) input; k, v already split (B, h, Tk, dh). Returns output, weights."""
        qh = self.split(self.q(q))
        scores = qh @ k.transpose(-1, -2) / math.sqrt(self.dh)
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        w = scores.softmax(-1)
        out = (w @ v).transpose(1, 2).reshape(q.shape[0], q.shape[1], -1)
        return self.o(out), w


class _DecoderLayer(nn.Module):
    def __init__(self, c: SceneCaptionerConfig):
        super().__init__()
        d = c.d_model
        self.n1, self.n2, self.n3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = _Attention(d, c.heads)
        self.cross_attn = _Attention(d, c.heads)
        self.mlp = nn.Sequential(nn.Linear(d, c.ff), nn.GELU(), nn.Linear(c.ff, d))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, mem_kv, cache=None, mask=None):
        """x (B, T, d); mem_kv: the grid's split keys/values; cache: dict with past "k"/"v"
        (incremental decoding, T new positions). Returns x, cross-attention (B, h, T, S)."""
        a = self.self_attn
        h = self.n1(x)
        k, v = a.split(a.k(h)), a.split(a.v(h))
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        out, _ = a.attend(h, k, v, mask)
        x = x + self.drop(out)
        out, w = self.cross_attn.attend(self.n2(x), *mem_kv)
        x = x + self.drop(out)
        x = x + self.drop(self.mlp(self.n3(x)))
        return x, w


class SceneCaptionerNet(nn.Module):
    """Frozen parser CNN -> feature grid -> Transformer decoder.

    Args:
        config: the architecture.

    Shapes: images (B, 3, H, W) float32 RGB in [0, 1] (128x128 for grid 16); grid features
    (B, C, grid, grid) with C = ``config.feature_channels``; tokens (B, T) int64 ids of
    ``config.vocab``.
    """

    def __init__(self, config: SceneCaptionerConfig):
        super().__init__()
        if not config.words:
            raise ValueError("the captioner needs a vocabulary (config.words)")
        self.config = c = config
        self.encoder = SceneParserNet(SceneParserConfig(width=c.parser_width,
                                                        heads=c.parser_heads))
        self.encoder.requires_grad_(False)
        self.proj = nn.Linear(c.feature_channels, c.d_model)
        self.grid_pos = nn.Parameter(torch.randn(c.grid * c.grid, c.d_model) * 0.02)
        self.mem_norm = nn.LayerNorm(c.d_model)
        self.embed = nn.Embedding(len(c.vocab), c.d_model)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.pos = nn.Parameter(torch.randn(c.max_len, c.d_model) * 0.02)
        self.layers = nn.ModuleList(_DecoderLayer(c) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.bias = nn.Parameter(torch.zeros(len(c.vocab)))

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # frozen: its batch norms keep their statistics
        return self

    # -- encoder ---------------------------------------------------------------------------
    @torch.no_grad()
    def grid_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, C, grid, grid) frozen parser features."""
        e = self.encoder
        x = (images - 0.5) / 0.25
        s4 = e.down1(e.stem(x))
        s8 = e.down2(s4)
        s16 = e.down3(s8)
        y = e.up2(s8 + F.interpolate(s16, scale_factor=2.0, mode="nearest"))
        y = e.up1(e.lat1(s4) + F.interpolate(y, scale_factor=2.0, mode="nearest"))
        maps = e.head(y)
        maps = torch.cat([maps[:, :1].sigmoid(), maps[:, 1:]], 1)
        return F.adaptive_avg_pool2d(torch.cat([y, maps], 1), self.config.grid)

    def memory(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, C, g, g) grid features -> (B, g*g, d_model) memory (row-major cells)."""
        m = self.proj(feats.flatten(2).transpose(1, 2)) + self.grid_pos
        return self.mem_norm(m)

    def _mem_kv(self, memory: torch.Tensor):
        return [(l.cross_attn.split(l.cross_attn.k(memory)),
                 l.cross_attn.split(l.cross_attn.v(memory))) for l in self.layers]

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x) @ self.embed.weight.T + self.bias

    # -- training --------------------------------------------------------------------------
    def forward(self, feats: torch.Tensor, tokens: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing.

        Args:
            feats: (B, C, g, g) grid features (:meth:`grid_features`).
            tokens: (B, T) input ids (<bos> w1 ... ; T <= max_len).

        Returns:
            logits (B, T, V) for the next word at each position, and the last layer's
            cross-attention (B, T, g*g), heads averaged.
        """
        t = tokens.shape[1]
        mem_kv = self._mem_kv(self.memory(feats))
        x = self.embed(tokens) + self.pos[:t]
        mask = torch.ones(t, t, dtype=torch.bool, device=tokens.device).triu(1)
        w = None
        for layer, kv in zip(self.layers, mem_kv):
            x, w = layer(x, kv, mask=mask)
        return self._logits(x), w.mean(1)

    def tag_logits(self, feats: torch.Tensor) -> torch.Tensor:
        """VIVO's visual vocabulary: (B, V) logits that each word names something in the
        image, ``max over cells of <memory cell, word embedding>`` (the decoder's own
        embeddings)."""
        m = self.memory(feats)                                   # (B, S, d)
        scores = m @ self.embed.weight.T / math.sqrt(self.config.d_model)
        return scores.max(1).values

    # -- inference -------------------------------------------------------------------------
    def _step(self, tok: torch.Tensor, t: int, mem_kv, caches):
        """One new token per row (B,) at position t -> log-probs (B, V), attention (B, S)."""
        x = self.embed(tok[:, None]) + self.pos[t]
        w = None
        for layer, kv, cache in zip(self.layers, mem_kv, caches):
            x, w = layer(x, kv, cache=cache)
        return self._logits(x[:, 0]).log_softmax(-1), w.mean(1)[:, 0]

    @torch.no_grad()
    def greedy(self, feats: torch.Tensor, max_len: int | None = None
               ) -> tuple[list[list[int]], list[torch.Tensor]]:
        """Greedy decoding of a batch. Returns per image the word ids (no specials) and their
        cross-attention maps (n_words, g, g)."""
        return self._decode(feats, max_len, pick=lambda lp: lp.argmax(-1))

    @torch.no_grad()
    def sample(self, feats: torch.Tensor, top_p: float = 0.9, seed: int = 0,
               temperature: float = 1.0, max_len: int | None = None):
        """Nucleus sampling (the smallest set of words whose probability reaches ``top_p``),
        seeded: the same seed gives the same captions. Returns as :meth:`greedy`."""
        if not 0.0 < top_p <= 1.0 or temperature <= 0:
            raise ValueError(f"top_p must be in (0, 1] and temperature > 0, got {top_p}, "
                             f"{temperature}")
        gen = torch.Generator().manual_seed(int(seed))

        def pick(lp: torch.Tensor) -> torch.Tensor:
            p = (lp / temperature).softmax(-1)
            sp, si = p.sort(-1, descending=True)
            keep = (sp.cumsum(-1) - sp) < top_p          # always keeps the top word
            sp = sp * keep
            choice = torch.multinomial(sp / sp.sum(-1, keepdim=True), 1, generator=gen)
            return si.gather(-1, choice)[:, 0]
        return self._decode(feats, max_len, pick)

    def _decode(self, feats, max_len, pick):
        c = self.config
        max_len = min(max_len or c.max_len, c.max_len)
        b = feats.shape[0]
        mem_kv = self._mem_kv(self.memory(feats))
        caches = [{} for _ in self.layers]
        tok = torch.full((b,), SPECIALS.index(BOS), dtype=torch.long)
        words: list[list[int]] = [[] for _ in range(b)]
        maps: list[list[torch.Tensor]] = [[] for _ in range(b)]
        done = torch.zeros(b, dtype=torch.bool)
        eos = SPECIALS.index(EOS)
        for t in range(max_len - 1):
            lp, w = self._step(tok, t, mem_kv, caches)
            tok = pick(lp)
            for i in range(b):
                if not done[i] and int(tok[i]) != eos:
                    words[i].append(int(tok[i]))
                    maps[i].append(w[i])
            done |= tok == eos
            if bool(done.all()):
                break
        g = c.grid
        return words, [torch.stack(m).view(-1, g, g) if m else torch.zeros(0, g, g)
                       for m in maps]

    @torch.no_grad()
    def beam_search(self, feats: torch.Tensor, beam: int = 3, length_penalty: float = 0.0,
                    max_len: int | None = None) -> tuple[list[int], torch.Tensor]:
        """Beam search for one image (feats (1, C, g, g)); the hypothesis with the best
        ``sum log p / len ** length_penalty``. Beam 1 is greedy decoding.

        Returns:
            word ids (no specials) and their cross-attention maps (n_words, g, g).
        """
        if feats.shape[0] != 1 or beam < 1:
            raise ValueError("beam_search takes one image and beam >= 1")
        c = self.config
        max_len = min(max_len or c.max_len, c.max_len)
        mem_kv = [(k.expand(beam, -1, -1, -1), v.expand(beam, -1, -1, -1))
                  for k, v in self._mem_kv(self.memory(feats))]
        caches = [{} for _ in self.layers]
        eos = SPECIALS.index(EOS)
        tok = torch.full((beam,), SPECIALS.index(BOS), dtype=torch.long)
        score = torch.full((beam,), float("-inf"))
        score[0] = 0.0                                   # all beams start identical
        seqs: list[list[int]] = [[] for _ in range(beam)]
        atts: list[list[torch.Tensor]] = [[] for _ in range(beam)]
        finished: list[tuple[float, list[int], list[torch.Tensor]]] = []
        v = len(c.vocab)
        for t in range(max_len - 1):
            lp, w = self._step(tok, t, mem_kv, caches)
            total = (score[:, None] + lp).view(-1)
            top, idx = total.topk(min(2 * beam, total.numel()))
            new_rows, new_tok, new_score = [], [], []
            for s, i in zip(top.tolist(), idx.tolist()):
                row, word = divmod(i, v)
                if s == float("-inf"):
                    break
                if word == eos:
                    n = max(1, len(seqs[row]))
                    finished.append((s / n ** length_penalty, seqs[row], atts[row]))
                else:
                    new_rows.append(row)
                    new_tok.append(word)
                    new_score.append(s)
                if len(new_rows) == beam:
                    break
            best_done = max((f[0] for f in finished), default=float("-inf"))
            if not new_rows or (len(finished) >= beam and
                                best_done >= max(new_score) / max(1, t + 1) ** length_penalty):
                break
            while len(new_rows) < beam:                  # keep the batch shape
                new_rows.append(new_rows[0])
                new_tok.append(new_tok[0])
                new_score.append(float("-inf"))
            rows = torch.tensor(new_rows)
            seqs = [seqs[r] + [tk] for r, tk in zip(new_rows, new_tok)]
            atts = [atts[r] + [w[r]] for r in new_rows]
            for cache in caches:
                cache["k"], cache["v"] = cache["k"][rows], cache["v"][rows]
            tok = torch.tensor(new_tok)
            score = torch.tensor(new_score)
        if not finished:                                 # ran out of length
            k = int(score.argmax())
            finished.append((float(score[k]), seqs[k], atts[k]))
        _, words, maps = max(finished, key=lambda f: f[0])
        g = c.grid
        return list(words), (torch.stack(maps).view(-1, g, g) if maps else torch.zeros(0, g, g))

    # -- words -----------------------------------------------------------------------------
    def encode_text(self, text: str) -> list[int]:
        """Word ids of a caption (lower-cased, "." a word of its own; unknown words <unk>)."""
        index = {w: i for i, w in enumerate(self.config.vocab)}
        return [index.get(w, SPECIALS.index(UNK)) for w in tokenize(text)]

    def decode_ids(self, ids: list[int]) -> list[str]:
        return [self.config.vocab[i] for i in ids]


def tokenize(text: str) -> list[str]:
    """"A red cube. A ..." -> ["a", "red", "cube", ".", "a", ...]."""
    return text.lower().replace(".", " . ").replace(",", " , ").split()


def detokenize(words: list[str]) -> str:
    """Inverse of :func:`tokenize` for the captioner's words: "a red cube. a ..."."""
    return " ".join(words).replace(" .", ".").replace(" ,", ",")


def save_captioner(net: SceneCaptionerNet, path: str | Path, metadata: dict | None = None) -> Path:
    """Write all weights (float32 safetensors; the frozen parser included) with the config and
    ``metadata`` (JSON-able values) in the file's metadata."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "config": json.dumps(asdict(net.config))}
    meta.update({k: json.dumps(v) for k, v in (metadata or {}).items()})
    state = {k: v.detach().float().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata=meta)
    return path


def read_metadata(path: str | Path) -> dict:
    """The JSON-decoded metadata of a checkpoint written by :func:`save_captioner`."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return {k: (json.loads(v) if k != "format" else v) for k, v in meta.items()}


def load_captioner(path: str | Path = ASSET) -> SceneCaptionerNet:
    """A :class:`SceneCaptionerNet` in eval mode from a file written by :func:`save_captioner`.

    Raises:
        FileNotFoundError: no such file. ValueError: not a scene captioner checkpoint.
    """
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scene captioner checkpoint {path} not found")
    try:
        meta = read_metadata(path)
    except Exception as exc:  # not a safetensors file at all
        raise ValueError(f"{path} is not a scene captioner checkpoint ({FORMAT})") from exc
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a scene captioner checkpoint ({FORMAT})")
    net = SceneCaptionerNet(SceneCaptionerConfig.from_dict(meta["config"]))
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def _factory(device: torch.device, dtype: torch.dtype, path: str | Path = ASSET):
    return load_captioner(path).to(device=device, dtype=dtype)


if ASSET.is_file():
    register_model(ModelSpec(
        name="scene-captioner", task="scene-captioner", source="embedded", factory=_factory,
        description="scene-world captioner: frozen scene-parser CNN grid (16x16) + 2-layer "
                    "Transformer decoder with cross-attention",
        preprocess=CAPTIONER_PREPROCESS, weights="assets/scenes/scene_captioner.safetensors",
        license="MIT (trained here)", size_mb=round(ASSET.stat().st_size / 1e6, 2)))
