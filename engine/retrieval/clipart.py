"""LiT-style image-text alignment on real clip-art captions (Debian's ``openclipart-svg``).

Data: the package's public-domain drawings (``/usr/share/openclipart/svg``, 8,121 files in
0.18+dfsg-19); each SVG's RDF metadata gives a title, a description and keywords
(``dc:title``, ``dc:description``, ``dc:subject/rdf:Bag/rdf:li``), joined into one caption
("Mostriciattolo. insect"). A seeded sample is rendered with CairoSVG (onto white, whole
drawing fitted into a square) and encoded by the frozen embedded EfficientNet-Lite0 (logits and
pooled features); captions by the frozen MiniLM. The split is by a hash of the file's path:
:data:`TEST_SHARE` of the drawings are held out.

Model (Zhai et al., "LiT: Zero-Shot Transfer with Locked-image text Tuning", CVPR 2022): the
image tower is locked (EfficientNet-Lite0's pooled features); learned projections map both
towers into one space; the loss is CLIP's symmetric contrastive (InfoNCE) loss with a learned
temperature. Here MiniLM stays frozen too and its projection is a small MLP (the text tower's
trainable part), so training runs on cached features in a minute.

Baseline on the same split: ConSE (Norouzi et al., ICLR 2014), the Retrieve tab's offline
semantic embedding: the image's 10 most probable ImageNet classes weighting MiniLM embeddings
of their names, compared with the caption's MiniLM embedding.

Build: ``python -m engine build-clipart --n 3000`` (resumable, into ``data/clipart/``).
"""
from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Where Debian's openclipart-svg installs the drawings.
SVG_ROOT = Path("/usr/share/openclipart/svg")
#: Share of drawings held out for testing (by path hash).
TEST_SHARE = 0.12
#: Drawings per cache file; render side in pixels.
CHUNK, RENDER_SIDE = 250, 160
_NS = {"dc": "http://purl.org/dc/elements/1.1/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
       "cc": "http://web.resource.org/cc/"}


def data_dir(root: str | Path | None = None) -> Path:
    """``data/clipart`` in the repository (or ``root``)."""
    return Path(root) if root else Path(__file__).resolve().parents[2] / "data" / "clipart"


def is_test(relpath: str) -> bool:
    """The held-out split: the first byte of SHA-1(path) < TEST_SHARE * 256."""
    return hashlib.sha1(relpath.encode()).digest()[0] < TEST_SHARE * 256


def caption(svg_bytes: bytes) -> str | None:
    """"title. description. keyword, keyword" from an SVG's RDF metadata (None if it has no
    title, description or keywords). Parsed with defusedxml (no entity expansion)."""
    from defusedxml import ElementTree as ET
    try:
        root = ET.fromstring(svg_bytes)
    except Exception:
        return None
    work = root.find(".//cc:Work", _NS)
    if work is None:
        return None

    def text(path):
        node = work.find(path, _NS)
        return " ".join((node.text or "").split()) if node is not None else ""

    title, desc = text("dc:title"), text("dc:description")
    keys = [" ".join((li.text or "").split()) for li in work.findall("dc:subject//rdf:li", _NS)]
    keys = [k for k in dict.fromkeys(keys) if k]
    parts = [p for p in (title, desc if desc != title else "", ", ".join(keys)) if p]
    return ". ".join(parts) if parts else None


def render_svg(svg_bytes: bytes, side: int = RENDER_SIDE) -> np.ndarray:
    """(side, side, 3) uint8: the drawing fitted into a square, composited on white."""
    import cairosvg
    from PIL import Image
    png = cairosvg.svg2png(bytestring=svg_bytes, output_width=side, output_height=side,
                           unsafe=False)
    img = Image.open(io.BytesIO(png)).convert("RGBA")
    bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(bg, img).convert("RGB").resize((side, side)))


def sample_files(n: int, seed: int = 0, root: Path = SVG_ROOT) -> list[str]:
    """A seeded sample of ``n`` SVG paths relative to ``root`` (sorted first: reproducible)."""
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.svg"))
    if not files:
        raise FileNotFoundError(f"no SVG under {root}: apt-get install openclipart-svg")
    rng = np.random.default_rng(seed)
    return [files[i] for i in sorted(rng.choice(len(files), min(n, len(files)), replace=False))]


def build(n: int, backbone, text_encoder, out: str | Path | None = None, seed: int = 0,
          progress: Callable[[str], None] | None = None) -> Path:
    """Render, caption and encode a sample of ``n`` drawings into ``.npz`` chunks (resumable;
    a drawing that fails to render or has no caption is skipped and counted)."""
    folder = data_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = sample_files(n, seed)
    pre = backbone.preprocess
    for c, lo in enumerate(range(0, len(files), CHUNK)):
        path = folder / f"chunk-{c:05d}.npz"
        if path.exists():
            continue
        t0 = time.perf_counter()
        names, caps, images, skipped = [], [], [], 0
        for rel in files[lo:lo + CHUNK]:
            data = (SVG_ROOT / rel).read_bytes()
            cap = caption(data)
            if cap is None:
                skipped += 1
                continue
            try:
                images.append(render_svg(data))
            except Exception:
                skipped += 1
                continue
            names.append(rel)
            caps.append(cap)
        from PIL import Image
        logits, pooled = [], []
        with torch.no_grad():
            for a in range(0, len(images), 32):
                x = pre([Image.fromarray(im) for im in images[a:a + 32]], crop=False)
                o = backbone(x)
                logits.append(o.logits.numpy().astype(np.float16))
                pooled.append(o.pooled.numpy().astype(np.float16))
        text = text_encoder.encode(caps, batch_size=128).embeddings.numpy().astype(np.float16)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(tmp, names=np.array(names), captions=np.array(caps),
                            logits=np.concatenate(logits), pooled=np.concatenate(pooled),
                            text=text, thumbs=np.stack(images)[:, ::2, ::2])
        os.replace(tmp, path)
        if progress:
            progress(f"clipart {lo}-{lo + CHUNK - 1}: {len(names)} kept, {skipped} skipped, "
                     f"{len(names) / (time.perf_counter() - t0):.1f}/s")
    return folder


@dataclass
class ClipartSet:
    """Cached drawings: names, captions, (N, 1000) logits, (N, 1280) pooled, (N, 384) text,
    (N,) bool test flags."""

    names: list[str]
    captions: list[str]
    logits: np.ndarray
    pooled: np.ndarray
    text: np.ndarray
    test: np.ndarray

    def split(self, test: bool) -> ClipartSet:
        m = self.test == test
        return ClipartSet([n for n, k in zip(self.names, m) if k],
                          [c for c, k in zip(self.captions, m) if k], self.logits[m],
                          self.pooled[m], self.text[m], self.test[m])


def load(root: str | Path | None = None) -> ClipartSet:
    """Every cached chunk. Raises FileNotFoundError when none is built."""
    paths = sorted(data_dir(root).glob("chunk-?????.npz"))
    if not paths:
        raise FileNotFoundError("no clip-art cache: run python -m engine build-clipart")
    parts = [dict(np.load(p)) for p in paths]
    names = [str(n) for p in parts for n in p["names"]]
    return ClipartSet(names, [str(c) for p in parts for c in p["captions"]],
                      np.concatenate([p["logits"] for p in parts]).astype(np.float32),
                      np.concatenate([p["pooled"] for p in parts]).astype(np.float32),
                      np.concatenate([p["text"] for p in parts]).astype(np.float32),
                      np.array([is_test(n) for n in names]))


class LitProjections(nn.Module):
    """The trainable part: image projection (linear, on standardised locked features) and
    text projection (2-layer MLP on frozen MiniLM), both to ``dim``, unit-normalised, plus
    CLIP's learned log-temperature (init log(1/0.07))."""

    def __init__(self, image_dim: int = 1280, text_dim: int = 384, dim: int = 256,
                 hidden: int = 512) -> None:
        super().__init__()
        self.register_buffer("feat_mean", torch.zeros(image_dim))
        self.register_buffer("feat_std", torch.ones(image_dim))
        self.image = nn.Linear(image_dim, dim)
        self.text = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def embed_images(self, pooled: torch.Tensor) -> torch.Tensor:
        """(N, 1280) pooled features -> (N, dim) unit vectors."""
        return F.normalize(self.image((pooled - self.feat_mean) / self.feat_std), dim=-1)

    def embed_text(self, minilm: torch.Tensor) -> torch.Tensor:
        """(N, 384) MiniLM embeddings -> (N, dim) unit vectors."""
        return F.normalize(self.text(minilm), dim=-1)


def train_lit(data: ClipartSet, steps: int = 1500, batch: int = 256, lr: float = 1e-3,
              seed: int = 0, dim: int = 256) -> LitProjections:
    """Train the projections with the symmetric InfoNCE loss on ``data`` (the train split)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = LitProjections(dim=dim)
    img = torch.from_numpy(data.pooled)
    txt = torch.from_numpy(data.text)
    net.feat_mean.copy_(img.mean(0))
    net.feat_std.copy_(img.std(0).clamp_min(1e-3))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.05)
    for step in range(steps):
        idx = torch.from_numpy(rng.choice(len(img), min(batch, len(img)), replace=False))
        zi, zt = net.embed_images(img[idx]), net.embed_text(txt[idx])
        logits = net.log_scale.clamp(max=np.log(100)).exp() * zi @ zt.T
        labels = torch.arange(len(idx))
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def recalls(sim: np.ndarray, ks=(1, 5, 10)) -> dict:
    """Recall@K (%) of a (Q, N) similarity matrix whose right answer of row q is column q."""
    order = np.argsort(-sim, axis=1)
    rank = np.argmax(order == np.arange(len(sim))[:, None], axis=1)
    return {f"R@{k}": round(100 * float((rank < k).mean()), 2) for k in ks}


def evaluate(test: ClipartSet, net: LitProjections | None, class_names_emb: np.ndarray) -> dict:
    """text->image and image->text Recall@K on ``test`` for LiT (``net``) and ConSE."""
    from engine.retrieval.conse import conse_embed
    out = {"n": len(test.names)}
    probs = torch.from_numpy(test.logits).softmax(-1)
    conse = conse_embed(probs, torch.from_numpy(class_names_emb)).numpy()
    txt = test.text / np.linalg.norm(test.text, axis=1, keepdims=True)
    s = txt @ conse.T
    out["conse"] = {"text->image": recalls(s), "image->text": recalls(s.T)}
    if net is not None:
        with torch.no_grad():
            zi = net.embed_images(torch.from_numpy(test.pooled)).numpy()
            zt = net.embed_text(torch.from_numpy(test.text)).numpy()
        s = zt @ zi.T
        out["lit"] = {"text->image": recalls(s), "image->text": recalls(s.T)}
    return out


__all__ = [
    "SVG_ROOT",
    "ClipartSet",
    "LitProjections",
    "build",
    "caption",
    "evaluate",
    "is_test",
    "load",
    "recalls",
    "render_svg",
    "sample_files",
    "train_lit",
    "ClipartTextSearch",
    "export_search_gallery",
    "load_projections",
]


# --- the Retrieve tab's "search by text" --------------------------------------------------------

#: Shipped LiT projections and the held-out drawings the tab searches.
LIT_PATH = Path(__file__).resolve().parents[2] / "assets" / "retrieval" / "lit_clipart.safetensors"
SEARCH_GALLERY = Path(__file__).resolve().parents[2] / "assets" / "retrieval" / "clipart_test.npz"


def export_search_gallery(data: ClipartSet, thumbs: np.ndarray,
                          path: str | Path = SEARCH_GALLERY) -> Path:
    """Write held-out drawings (pooled features float16, 80x80 thumbnails, names, captions)."""
    path = Path(path)
    np.savez_compressed(path, pooled=data.pooled.astype(np.float16), thumbs=thumbs,
                        names=np.array(data.names), captions=np.array(data.captions))
    return path


def load_projections(path: str | Path = LIT_PATH) -> LitProjections:
    """The shipped :class:`LitProjections` (eval mode). Raises FileNotFoundError if absent."""
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no LiT projections at {path}: run python -m engine train-lit")
    state = load_file(str(path))
    net = LitProjections(dim=state["image.weight"].shape[0])
    net.load_state_dict(state)
    return net.eval()


class ClipartTextSearch:
    """Text -> clip-art search with the LiT projections over the held-out drawings.

    Args:
        projections: :class:`LitProjections`; text_encoder: MiniLM; gallery: path of the
            ``.npz`` written by :func:`export_search_gallery`.
    """

    def __init__(self, projections: LitProjections, text_encoder,
                 gallery: str | Path = SEARCH_GALLERY) -> None:
        with np.load(gallery) as z:
            self.thumbs, self.names = z["thumbs"], z["names"].tolist()
            self.captions = z["captions"].tolist()
            pooled = torch.from_numpy(z["pooled"].astype(np.float32))
        self.net, self.text_encoder = projections, text_encoder
        with torch.no_grad():
            self.images = projections.embed_images(pooled)  # (N, dim) unit

    def __len__(self) -> int:
        return len(self.names)

    def __call__(self, text: str, top_k: int = 8) -> tuple[list[dict], list[str]]:
        """Rank the drawings for ``text``.

        Returns:
            (results best first: {"index", "name", "caption", "score" (cosine), "image"
            (80, 80, 3) uint8}, notes for the user).

        Raises:
            UserInputError: empty text, no English word, a bad ``top_k``.
        """
        from engine.errors import UserInputError
        from engine.inputs.text import clean_text, english_words, words
        if not isinstance(top_k, (int, np.integer)) or not 1 <= int(top_k) <= len(self):
            raise UserInputError(f"Results must be between 1 and {len(self)} (got {top_k!r}).")
        cleaned = clean_text(text, field="search text", max_chars=300)
        eng = english_words(words(cleaned.text))
        notes = list(cleaned.notes) + list(eng.notes)
        if eng.unknown:
            notes.append(f"Words in another script were left out (the text model reads "
                         f"English): {' '.join(eng.unknown)}.")
        if not eng.words:
            raise UserInputError("The search text has no English words to read: try \"a red "
                                 "car\".")
        # MiniLM reads the text as typed, unless emoji or other scripts had to be replaced
        query = cleaned.text if not (eng.unknown or eng.notes) else " ".join(eng.words)
        with torch.no_grad():
            t = self.net.embed_text(self.text_encoder.encode([query]).embeddings)
            s = (self.images @ t[0]).numpy()
        top = np.argsort(-s)[:int(top_k)]
        return ([{"index": int(i), "name": self.names[i], "caption": self.captions[i],
                  "score": float(s[i]), "image": self.thumbs[i]} for i in top], notes)
