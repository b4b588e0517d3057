"""Learned composed image retrieval on frozen image features: TIRG and ARTEMIS.

Both rank gallery images for a query (reference image ``r``, modification text ``m``) by a
learned score over one shared image projection ``phi`` (linear, on frozen backbone features,
so a score computed on pooled features is also the mean of the same score over the
backbone's grid cells: the per-cell contribution maps of :meth:`ArtemisNet.score_maps`).

* **TIRG** (Vo et al., "Composing Text and Image for Image Retrieval - an Empirical Odyssey",
  CVPR 2019): the query feature is ``w_g * sigmoid(MLP_g([phi(r); t])) * phi(r) +
  w_r * MLP_r([phi(r); t])`` (gated residual composition), compared with ``phi(c)`` by cosine.
* **ARTEMIS** (Delmas et al., "ARTEMIS: Attention-based Retrieval with Text-Explicit Matching
  and Implicit Similarity", ICLR 2022): score = EM + IS with
  EM(c | m) = <A_EM(m) * phi(c), T(m)> (does the candidate show what the text asks for?) and
  IS(c | r, m) = <A_IS(r, m) * phi(r), A_IS(r, m) * phi(c)> (does it look like the reference
  where the text says nothing?), each attention a softmax over the embedding's dimensions
  (scaled by the dimension, so a uniform attention is all ones), attended vectors L2-normalised.
* Baselines as in the papers: **text-only** (the target is predicted from the text alone) and
  **image-only** (the reference's own embedding).

Text encoders (:class:`TextEncoderConfig`): "minilm" (frozen all-MiniLM-L6-v2 sentence
embeddings, 384-d, given precomputed, + an MLP) or "lstm" (a word-level LSTM trained here on the
instructions' small vocabulary).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

METHODS = ("tirg", "artemis", "text-only", "image-only")
TEXT_ENCODERS = ("minilm", "lstm")
_WORD = re.compile(r"[a-z]+")


def tokenize(text: str) -> list[str]:
    """Lower-case alphabetic words ("Make the cube RED!" -> ["make", "the", "cube", "red"])."""
    return _WORD.findall(text.lower())


@dataclass
class CirConfig:
    """A composer's architecture.

    Attributes:
        method: one of :data:`METHODS`.
        text_encoder: one of :data:`TEXT_ENCODERS`.
        image_dim: backbone feature size (1280 for EfficientNet-Lite0's pooled features).
        text_dim: MiniLM's 384 (only for "minilm").
        dim: joint embedding size.
        hidden: MLP hidden size.
        vocab: the LSTM's words (index 0 = padding, 1 = unknown), empty for "minilm".
        dropout: dropout on the standardised image features and the text feature (training).
    """

    method: str = "tirg"
    text_encoder: str = "lstm"
    image_dim: int = 1280
    text_dim: int = 384
    dim: int = 256
    hidden: int = 512
    vocab: list[str] = field(default_factory=list)
    dropout: float = 0.0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; valid: {', '.join(METHODS)}")
        if self.text_encoder not in TEXT_ENCODERS:
            raise ValueError(f"unknown text encoder {self.text_encoder!r}; valid: "
                             f"{', '.join(TEXT_ENCODERS)}")

    def to_dict(self) -> dict:
        return asdict(self)


def _mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, cout))


class LstmTextEncoder(nn.Module):
    """Word embeddings + one-layer LSTM; the text feature is the last hidden state (TIRG's
    text model).

    Args:
        vocab: words (index 0 padding, 1 unknown are added in front).
        dim: output size.
    """

    def __init__(self, vocab: list[str], dim: int, word_dim: int = 128) -> None:
        super().__init__()
        self.index = {w: i + 2 for i, w in enumerate(vocab)}
        self.embed = nn.Embedding(len(vocab) + 2, word_dim, padding_idx=0)
        self.lstm = nn.LSTM(word_dim, dim, batch_first=True)

    def ids(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) int64 word ids (0-padded) and (B,) lengths (>= 1)."""
        seqs = [[self.index.get(w, 1) for w in tokenize(t)] or [1] for t in texts]
        T = max(len(s) for s in seqs)
        ids = torch.zeros(len(seqs), T, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
        return ids, torch.tensor([len(s) for s in seqs])

    def forward(self, texts: list[str]) -> torch.Tensor:
        """(B, dim) float32 text features."""
        ids, lengths = self.ids(texts)
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return h[-1]  # (B, dim)


class CirNet(nn.Module):
    """TIRG, ARTEMIS or a baseline over frozen image features (see the module docstring).

    Inputs everywhere: ``ref`` / ``cand`` (B, image_dim) float32 backbone features (>= 0);
    ``text``: a list of B strings ("lstm") or (B, 384) float32 MiniLM embeddings ("minilm").
    """

    def __init__(self, config: CirConfig) -> None:
        super().__init__()
        self.config = c = config
        # per-dimension standardisation of the frozen features (set from the training set)
        self.register_buffer("feat_mean", torch.zeros(c.image_dim))
        self.register_buffer("feat_std", torch.ones(c.image_dim))
        self.proj = nn.Linear(c.image_dim, c.dim)  # affine: grid-cell maps stay exact
        self.drop = nn.Dropout(c.dropout)
        if c.text_encoder == "lstm":
            self.text = LstmTextEncoder(c.vocab, c.dim)
        else:
            self.text = _mlp(c.text_dim, c.hidden, c.dim)
        self.log_scale = nn.Parameter(torch.tensor(2.3))  # cosine temperature, exp(2.3) ~ 10
        if c.method == "tirg":
            self.gate = _mlp(2 * c.dim, c.hidden, c.dim)
            self.res = _mlp(2 * c.dim, c.hidden, c.dim)
            self.w = nn.Parameter(torch.tensor([1.0, 1.0]))  # w_g, w_r
        elif c.method == "artemis":
            self.att_em = _mlp(c.dim, c.hidden, c.dim)  # A_EM(m)
            self.t_em = nn.Linear(c.dim, c.dim)  # T(m)
            self.att_is = _mlp(2 * c.dim, c.hidden, c.dim)  # A_IS(r, m)
        elif c.method == "text-only":
            self.head = _mlp(c.dim, c.hidden, c.dim)

    # --- pieces ----------------------------------------------------------------------------
    def phi(self, feats: torch.Tensor) -> torch.Tensor:
        """(..., image_dim) backbone features -> (..., dim): standardise, then project (an
        affine map, so the embedding of mean-pooled features is the mean of the cells')."""
        return self.proj(self.drop((feats - self.feat_mean) / self.feat_std))

    def encode_text(self, text) -> torch.Tensor:
        """(B, dim) text features."""
        return self.drop(self.text(text))

    def embed_images(self, feats: torch.Tensor) -> torch.Tensor:
        """(N, image_dim) backbone features -> (N, dim) image embeddings (not normalised)."""
        return self.phi(feats)

    def _attentions(self, r: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        d = self.config.dim
        a_em = d * torch.softmax(self.att_em(t), dim=-1)  # (B, dim), mean 1
        a_is = d * torch.softmax(self.att_is(torch.cat([r, t], -1)), dim=-1)
        return a_em, F.normalize(self.t_em(t), dim=-1), a_is

    def query(self, ref: torch.Tensor, text) -> dict[str, torch.Tensor]:
        """Everything a query needs to score any candidate: for TIRG and the baselines
        ``{"q": (B, dim) unit query}``; for ARTEMIS the attentions ``a_em``, ``a_is`` (B, dim),
        the text target ``t_em`` (B, dim, unit) and the attended reference ``r_is`` (unit)."""
        r = self.phi(ref)
        if self.config.method == "image-only":
            return {"q": F.normalize(r, dim=-1)}
        t = self.encode_text(text)
        if self.config.method == "text-only":
            return {"q": F.normalize(self.head(t), dim=-1)}
        if self.config.method == "tirg":
            x = torch.cat([r, t], -1)
            q = self.w[0] * torch.sigmoid(self.gate(x)) * r + self.w[1] * self.res(x)
            return {"q": F.normalize(q, dim=-1)}
        a_em, t_em, a_is = self._attentions(r, t)
        return {"a_em": a_em, "t_em": t_em, "a_is": a_is,
                "r_is": F.normalize(a_is * r, dim=-1)}

    def scores(self, query: dict[str, torch.Tensor], cand: torch.Tensor,
               parts: bool = False):
        """(B, N) scaled scores of B queries against N candidate embeddings ``cand``
        ((N, dim), from :meth:`embed_images`); with ``parts`` (ARTEMIS) also the EM and IS
        matrices (unscaled cosines in [-1, 1])."""
        scale = self.log_scale.exp()
        if "q" in query:
            s = query["q"] @ F.normalize(cand, dim=-1).T
            return (scale * s, None, None) if parts else scale * s
        a_em, t_em, a_is, r_is = query["a_em"], query["t_em"], query["a_is"], query["r_is"]
        c2 = (cand * cand).T  # (dim, N)
        # EM = <a_em * c, t_em> / ||a_em * c||; IS = <a_is * r, a_is * c> / (|.| |a_is * c|)
        em = ((a_em * t_em) @ cand.T) / ((a_em ** 2) @ c2).clamp_min(1e-12).sqrt()
        is_ = ((a_is * r_is) @ cand.T) / ((a_is ** 2) @ c2).clamp_min(1e-12).sqrt()
        s = scale * (em + is_) / 2
        return (s, em, is_) if parts else s

    def forward(self, ref: torch.Tensor, text, cand: torch.Tensor) -> torch.Tensor:
        """(B, N) scores of B queries against N candidates ((N, image_dim) features)."""
        return self.scores(self.query(ref, text), self.embed_images(cand))

    @torch.no_grad()
    def score_maps(self, query: dict[str, torch.Tensor], i: int, cand_grid: torch.Tensor,
                   ref_grid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """ARTEMIS's per-cell contributions for query ``i`` and one candidate (Stylianou et
        al., "Visualizing Deep Similarity Networks", WACV 2019: a dot product of mean-pooled
        features is the mean over cells of the cells' dot products, and ``phi`` is linear).

        Args:
            cand_grid: (h, w, image_dim) the candidate's backbone grid (pooled = mean of cells).
            ref_grid: (h, w, image_dim) the reference's grid, for the IS map on the reference.

        Returns:
            ``{"em": (h, w), "is": (h, w)}`` on the candidate (their means are its EM and IS
            cosines) and ``"is_ref"`` (h, w) on the reference when ``ref_grid`` is given.
        """
        if "a_em" not in query:
            raise ValueError("score maps need an ARTEMIS query")
        h, w, _ = cand_grid.shape
        cells = self.phi(cand_grid.reshape(h * w, -1))  # (hw, dim)
        c = cells.mean(0)
        a_em, t_em = query["a_em"][i], query["t_em"][i]
        a_is, r_is = query["a_is"][i], query["r_is"][i]
        norm_em = (a_em * c).norm().clamp_min(1e-12)
        norm_is = (a_is * c).norm().clamp_min(1e-12)
        out = {"em": ((a_em * cells) @ t_em / norm_em).reshape(h, w),
               "is": ((a_is * cells) @ r_is / norm_is).reshape(h, w)}
        if ref_grid is not None:
            rc = self.phi(ref_grid.reshape(h * w, -1))
            cand_att = F.normalize(a_is * c, dim=0)
            out["is_ref"] = ((a_is * rc) @ cand_att / (a_is * rc.mean(0)).norm()
                             .clamp_min(1e-12)).reshape(h, w)
        return out


#: Shipped composers (trained by ``python -m engine train-scene-cir``; cards beside them).
ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "retrieval"
ASSETS = {"scene-artemis": ASSET_DIR / "scene_artemis.safetensors",
          "scene-tirg": ASSET_DIR / "scene_tirg.safetensors"}


def load_composer(path: str | Path) -> CirNet:
    """A :class:`CirNet` from a safetensors file whose metadata holds its config, eval mode.

    Raises:
        FileNotFoundError: no such file. ValueError: not a composer checkpoint.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"composer checkpoint {path} not found")
    try:
        with safe_open(str(path), "pt") as f:
            config = CirConfig(**json.loads(f.metadata()["config"]))
    except Exception as exc:  # not a safetensors file, or no config
        raise ValueError(f"{path} is not a composer checkpoint") from exc
    net = CirNet(config)
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def _register() -> None:
    from engine.models._registry import ModelSpec, register_model
    titles = {"scene-artemis": "ARTEMIS (explicit matching + implicit similarity)",
              "scene-tirg": "TIRG (gated residual composition)"}
    for name, path in ASSETS.items():
        if path.is_file():
            register_model(ModelSpec(
                name=name, task="scene-cir", source="embedded",
                factory=lambda device, dtype, path=path: load_composer(path).to(device, dtype),
                description=f"scene-world composed retrieval: {titles[name]} over frozen "
                            f"EfficientNet-Lite0 features and MiniLM text",
                weights=f"assets/retrieval/{path.name}", license="MIT (trained here)",
                size_mb=round(path.stat().st_size / 1e6, 2)))


_register()

__all__ = ["ASSETS", "METHODS", "TEXT_ENCODERS", "CirConfig", "CirNet", "LstmTextEncoder", "load_composer", "tokenize"]
