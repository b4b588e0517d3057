"""DUDA, the Dual Dynamic Attention change captioner (Park et al., "Robust Change Captioning",
ICCV 2019), sized for the CLEVR-style scene world.

Given a before and an after image, DUDA

1. encodes each into a feature grid ``X_bef``, ``X_aft`` (B, C, h, w) (the paper: frozen
   ResNet-101 conv4 at 14x14; here either the frozen scene parser of this world (encoder
   "parser": a 128x128 render gives a 16x16 grid) with a trained 1x1 adapter, or a small CNN
   trained with the captioner (encoder "cnn", stride 4)), and their difference
   ``X_diff = X_aft - X_bef``;
2. **dual attention**: ``a_bef = softmax(conv2(ReLU(conv1([X_bef; X_diff]))))`` over the grid,
   ``a_aft`` alike with its own weights; ``l_bef = sum a_bef * X_bef``, ``l_aft = sum a_aft *
   X_aft``, ``l_diff = l_aft - l_bef``. The maps localise the change in each image. (The
   paper squashes each map with a sigmoid; we normalise it over the grid with a softmax so a
   map is a distribution, as the pointing game reads it, so the paper's L1 penalty on the
   maps has no role here.)
3. **dynamic speaker**: per word, an attention LSTM reads ``u = [l_bef; l_diff; l_aft]`` and
   the caption LSTM's last state and weighs the three features (``alpha``, (B, T, 3), sums to
   1); the caption LSTM reads the weighted feature and the previous word and predicts the next.
   Training maximises the weights' entropy a little (:func:`speaker_entropy`, the official
   code's ``--entropy_weight``) so the speaker does not collapse onto one feature.

This module holds only the network, its configuration (with the vocabulary) and its checkpoint
file; training, decoding into words and the metrics are in :mod:`engine.scenes.duda`. The
trained weights ship as ``assets/scenes/duda.safetensors`` (card ``duda.md``); when the file
is there it is registered as model ``duda`` (task "change-captioner", source "embedded").
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from engine.models._registry import ModelSpec, register_model
from engine.models.preprocess import Preprocess

ASSET = Path(__file__).resolve().parents[2] / "assets" / "scenes" / "duda.safetensors"
#: The metadata ``format`` value of these checkpoints.
FORMAT = "vl-demo-duda-v1"
#: Image encoders: "cnn", a small CNN trained with the captioner (stride 4); "parser", the
#: frozen scene parser's stride-4 decoder features and attribute logits pooled to stride 8
#: (the paper's frozen-backbone set-up) with a trained 1x1 adapter.
ENCODERS = ("cnn", "parser")
#: Special tokens at the start of every vocabulary.
PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


@dataclass(frozen=True)
class DudaConfig:
    """Architecture of :class:`DudaNet`.

    Attributes:
        vocab: the words, ``SPECIALS`` first (index = token id).
        image_size: input side in pixels (the grid is ``image_size // 4`` for the "cnn"
            encoder, ``image_size // 8`` for the "parser" encoder).
        width: channels of the encoder's first stage (then 2x, 4x); the grid has 4 * width
            channels.
        attention_hidden: hidden channels of each dual-attention branch.
        embed: word embedding size.
        hidden: size of both LSTMs.
        max_len: longest caption decoded (tokens, without BOS/EOS).
        encoder: one of :data:`ENCODERS`.
        parser_width: the scene parser's ``width`` (encoder "parser" only).
    """

    vocab: tuple[str, ...]
    image_size: int = 64
    width: int = 16
    attention_hidden: int = 64
    embed: int = 64
    hidden: int = 192
    max_len: int = 24
    encoder: str = "cnn"
    parser_width: int = 16

    def __post_init__(self):
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown DUDA encoder {self.encoder!r}; valid: {', '.join(ENCODERS)}")
        step = 8 if self.encoder == "parser" else 4
        if self.image_size % step:
            raise ValueError(f"image_size must be a multiple of {step} for the {self.encoder!r} "
                             f"encoder, got {self.image_size}")

    @property
    def grid(self) -> int:
        return self.image_size // (8 if self.encoder == "parser" else 4)

    @property
    def channels(self) -> int:
        return 4 * self.width

    @classmethod
    def from_dict(cls, d: dict) -> DudaConfig:
        d = dict(d)
        d["vocab"] = tuple(d["vocab"])
        return cls(**d)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class DudaEncoder(nn.Module):
    """The "cnn" encoder: image (B, 3, S, S) float32 in [0, 1] -> feature grid
    (B, 4 width, S/4, S/4), with a learned position embedding added (so "where" survives the
    attention pooling). Everything is trained; :meth:`frozen` is the identity."""

    def __init__(self, c: DudaConfig):
        super().__init__()
        w = c.width
        self.body = nn.Sequential(_conv(3, w), _conv(w, 2 * w, 2), _conv(2 * w, 2 * w),
                                  _conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w),
                                  nn.Conv2d(4 * w, 4 * w, 1))
        self.position = nn.Parameter(torch.zeros(1, 4 * w, c.grid, c.grid))
        nn.init.normal_(self.position, std=0.02)

    def frozen(self, x: torch.Tensor) -> torch.Tensor:
        """The untrained part of the encoder (none here): ``x`` itself."""
        return x

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body((z - 0.5) / 0.25) + self.position


class ParserEncoder(nn.Module):
    """The "parser" encoder: the frozen scene parser
    (:class:`engine.models.scene_parser.SceneParserNet`, trained on this world to F1 >= 0.95)
    as DUDA's backbone, the way the paper uses a frozen ImageNet ResNet-101.

    :meth:`frozen`: image (B, 3, S, S) float32 in [0, 1] -> (B, 2 pw + 18, S/8, S/8): the
    parser's stride-4 decoder features (2 pw channels) and its head's logits (object-centre
    heatmap, offset, shape, colour, size, material: 18 channels), average-pooled 2x2. It never
    trains (no gradient; its BatchNorm stays in eval mode), so training can cache it.
    :meth:`forward`: the trained 1x1 adapter to (B, 4 width, S/8, S/8) plus a learned position
    embedding.
    """

    def __init__(self, c: DudaConfig):
        super().__init__()
        from engine.models.scene_parser import SceneParserConfig, SceneParserNet
        self.parser = SceneParserNet(SceneParserConfig(width=c.parser_width))
        self.parser.requires_grad_(False)
        self.parser.eval()
        cin = 2 * c.parser_width + 1 + 2 + sum(k for _, k in self.parser.config.heads)
        C = 4 * c.width
        self.adapter = nn.Sequential(nn.Conv2d(cin, C, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(C, C, 1))
        self.position = nn.Parameter(torch.zeros(1, C, c.grid, c.grid))
        nn.init.normal_(self.position, std=0.02)

    def train(self, mode: bool = True) -> ParserEncoder:
        super().train(mode)
        self.parser.eval()  # frozen: BatchNorm keeps its running statistics
        return self

    @torch.no_grad()
    def frozen(self, x: torch.Tensor) -> torch.Tensor:
        p = self.parser
        x = (x - 0.5) / 0.25
        s4 = p.down1(p.stem(x))                                   # (B, 2pw, S/4, S/4)
        s8 = p.down2(s4)
        s16 = p.down3(s8)
        y = p.up2(s8 + F.interpolate(s16, scale_factor=2.0, mode="nearest"))
        y = p.up1(p.lat1(s4) + F.interpolate(y, scale_factor=2.0, mode="nearest"))
        z = torch.cat([y, p.head(y)], 1)                          # (B, 2pw + 18, S/4, S/4)
        return F.avg_pool2d(z, 2)                                 # (B, 2pw + 18, S/8, S/8)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.adapter(z) + self.position


class DualAttention(nn.Module):
    """One branch of DUDA's dual attention: [X; X_diff] (B, 2C, h, w) -> map (B, h, w) that
    sums to 1 over the grid."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.conv1 = nn.Conv2d(2 * channels, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, 1, 1)

    def forward(self, x: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
        B, _, h, w = x.shape
        logits = self.conv2(F.relu(self.conv1(torch.cat([x, diff], 1))))  # (B, 1, h, w)
        return logits.view(B, h * w).softmax(-1).view(B, h, w)


class DudaNet(nn.Module):
    """The DUDA change captioner (see the module docstring).

    ``forward(before, after, tokens)`` trains with teacher forcing; :meth:`generate` decodes
    greedily.
    """

    def __init__(self, config: DudaConfig):
        super().__init__()
        self.config = c = config
        C, H = c.channels, c.hidden
        self.encoder = ParserEncoder(c) if c.encoder == "parser" else DudaEncoder(c)
        self.att_before = DualAttention(C, c.attention_hidden)
        self.att_after = DualAttention(C, c.attention_hidden)
        self.embed_u = nn.Sequential(nn.Linear(3 * C, H), nn.ReLU(inplace=True))
        self.dyn_lstm = nn.LSTMCell(2 * H, H)
        self.dyn_out = nn.Sequential(nn.Linear(H, H), nn.ReLU(inplace=True), nn.Linear(H, 3))
        self.word_embed = nn.Embedding(len(c.vocab), c.embed, padding_idx=PAD)
        self.cap_lstm = nn.LSTMCell(C + c.embed, H)
        self.out = nn.Linear(H, len(c.vocab))

    def frozen_features(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's untrained part (the identity for "cnn", the frozen parser for
        "parser"): what training may compute once and cache.

        Args:
            images: (B, 3, S, S) float32 in [0, 1], S = ``config.image_size``.

        Raises:
            ValueError: images of another shape.
        """
        S = self.config.image_size
        if images.ndim != 4 or images.shape[1:] != (3, S, S):
            raise ValueError(f"DUDA expects two (B, 3, {S}, {S}) image batches, got one of "
                             f"shape {tuple(images.shape)}")
        return self.encoder.frozen(images)

    def localise(self, before: torch.Tensor, after: torch.Tensor,
                 precomputed: bool = False) -> dict[str, torch.Tensor]:
        """Dual attention.

        Args:
            before, after: (B, 3, S, S) float32 in [0, 1], S = ``config.image_size``; or, with
                ``precomputed``, their :meth:`frozen_features`.
            precomputed: the inputs are already :meth:`frozen_features`.

        Returns:
            ``map_before``, ``map_after`` (B, h, w), each summing to 1; ``l_before``,
            ``l_after``, ``l_diff`` (B, C).

        Raises:
            ValueError: images of another shape, or before and after shapes differ.
        """
        if after.shape != before.shape:
            raise ValueError(f"DUDA expects two batches of one shape, got "
                             f"{tuple(before.shape)} and {tuple(after.shape)}")
        if not precomputed:
            before, after = self.frozen_features(before), self.frozen_features(after)
        xb, xa = self.encoder(before), self.encoder(after)        # (B, C, h, w)
        diff = xa - xb
        mb, ma = self.att_before(xb, diff), self.att_after(xa, diff)  # (B, h, w)
        lb = torch.einsum("bchw,bhw->bc", xb, mb)
        la = torch.einsum("bchw,bhw->bc", xa, ma)
        return {"map_before": mb, "map_after": ma, "l_before": lb, "l_after": la,
                "l_diff": la - lb}

    def _step(self, feats, u, word, state):
        (hd, cd), (hc, cc) = state
        hd, cd = self.dyn_lstm(torch.cat([u, hc], -1), (hd, cd))
        alpha = self.dyn_out(hd).softmax(-1)                      # (B, 3)
        l_dyn = torch.einsum("bkc,bk->bc", feats, alpha)          # (B, C)
        hc, cc = self.cap_lstm(torch.cat([l_dyn, self.word_embed(word)], -1), (hc, cc))
        return self.out(hc), alpha, ((hd, cd), (hc, cc))

    def _start(self, loc):
        feats = torch.stack([loc["l_before"], loc["l_diff"], loc["l_after"]], 1)  # (B, 3, C)
        u = self.embed_u(feats.flatten(1))
        B, H = u.shape[0], self.config.hidden
        z = u.new_zeros(B, H)
        return feats, u, ((z, z), (z, z))

    def forward(self, before: torch.Tensor, after: torch.Tensor,
                tokens: torch.Tensor, precomputed: bool = False) -> dict[str, torch.Tensor]:
        """Teacher forcing.

        Args:
            before, after: (B, 3, S, S) float32 in [0, 1] (or their :meth:`frozen_features`
                with ``precomputed``).
            tokens: (B, T) int64: BOS, words, EOS, PAD...
            precomputed: see :meth:`localise`.

        Returns:
            ``logits`` (B, T-1, V) predicting ``tokens[:, 1:]``; ``alpha`` (B, T-1, 3) (weights of
            before, difference, after per word); and the maps of :meth:`localise`.
        """
        loc = self.localise(before, after, precomputed)
        feats, u, state = self._start(loc)
        logits, alphas = [], []
        for t in range(tokens.shape[1] - 1):
            lg, a, state = self._step(feats, u, tokens[:, t], state)
            logits.append(lg)
            alphas.append(a)
        return {"logits": torch.stack(logits, 1), "alpha": torch.stack(alphas, 1), **loc}

    @torch.no_grad()
    def generate(self, before: torch.Tensor, after: torch.Tensor,
                 precomputed: bool = False) -> dict[str, torch.Tensor]:
        """Greedy decoding (inputs as in :meth:`forward`).

        Returns:
            ``tokens`` (B, L) int64 (word ids, EOS and PAD after the caption's end), ``alpha``
            (B, L, 3) and the maps of :meth:`localise`.
        """
        loc = self.localise(before, after, precomputed)
        feats, u, state = self._start(loc)
        B = before.shape[0]
        word = torch.full((B,), BOS, dtype=torch.long)
        done = torch.zeros(B, dtype=torch.bool)
        out, alphas = [], []
        for _ in range(self.config.max_len + 1):
            lg, a, state = self._step(feats, u, word, state)
            word = lg.argmax(-1).masked_fill(done, PAD)
            out.append(word)
            alphas.append(a)
            done |= word == EOS
            if done.all():
                break
        return {"tokens": torch.stack(out, 1), "alpha": torch.stack(alphas, 1), **loc}


def caption_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (B, T-1, V) against ``tokens[:, 1:]``, PAD ignored."""
    return F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), ignore_index=PAD)


def speaker_entropy(alpha: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats, in [0, log 3]) of the dynamic speaker's weights over the words
    that are not padding.

    DUDA's training adds ``- weight * entropy`` to the loss (the official code's
    ``--entropy_weight``) so the speaker keeps using all three features instead of collapsing
    onto one.

    Args:
        alpha: (B, T-1, 3) weights (rows sum to 1), as :meth:`DudaNet.forward` returns.
        tokens: (B, T) int64, the teacher-forced tokens; ``tokens[:, 1:] == PAD`` is skipped.
    """
    ent = -(alpha * torch.log(alpha.clamp_min(1e-8))).sum(-1)          # (B, T-1)
    valid = (tokens[:, 1:] != PAD).float()
    return (ent * valid).sum() / valid.sum().clamp_min(1.0)


def save_duda(net: DudaNet, path: str | Path, metadata: dict | None = None) -> Path:
    """Write the weights (float32 safetensors) with the config (vocabulary included) and
    ``metadata`` (JSON-able values) in the file's metadata."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "config": json.dumps(asdict(net.config))}
    meta.update({k: json.dumps(v) for k, v in (metadata or {}).items()})
    state = {k: v.detach().float().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata=meta)
    return path


def load_duda(path: str | Path = ASSET) -> DudaNet:
    """A :class:`DudaNet` in eval mode from a file written by :func:`save_duda`.

    Raises:
        FileNotFoundError: no such file. ValueError: not a DUDA checkpoint.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DUDA checkpoint {path} not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # not a safetensors file at all
        raise ValueError(f"{path} is not a DUDA checkpoint ({FORMAT}): {e}") from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a DUDA checkpoint ({FORMAT})")
    net = DudaNet(DudaConfig.from_dict(json.loads(meta["config"])))
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def checkpoint_metadata(path: str | Path = ASSET) -> dict:
    """The JSON metadata of a DUDA checkpoint (config, training facts)."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        return {k: json.loads(v) if k != "format" else v for k, v in (f.metadata() or {}).items()}


def _factory(device: torch.device, dtype: torch.dtype, path: str | Path = ASSET):
    return load_duda(path).to(device=device, dtype=dtype)


def _asset_size(path: Path = ASSET) -> int:
    try:
        return int(checkpoint_metadata(path)["config"]["image_size"])
    except Exception:  # unreadable metadata: the registry entry keeps the old default
        return 64


if ASSET.is_file():
    register_model(ModelSpec(
        name="duda", task="change-captioner", source="embedded", factory=_factory,
        description="DUDA (Park et al., ICCV 2019) change captioner trained on the scene "
                    "world's CLEVR-Change pairs: two images -> caption + dual attention maps",
        preprocess=Preprocess(size=_asset_size(), crop_pct=1.0, mean=(0.0, 0.0, 0.0),
                              std=(1.0, 1.0, 1.0), interpolation="bilinear"),
        weights="assets/scenes/duda.safetensors", license="MIT (trained here)",
        size_mb=round(ASSET.stat().st_size / 1e6, 2)))
