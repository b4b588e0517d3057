"""The scene parser network: a small CenterNet-style CNN for the CLEVR-style scene world.

CenterNet ("Objects as Points", Zhou et al., 2019): a fully convolutional encoder-decoder maps
the image to a grid at stride 4 holding, per cell, the logit that an object's centre is there
(``heatmap``), the centre's sub-cell ``offset`` and one classifier per attribute (shape,
colour, size, material) read at the centre. Turning these maps into objects and ground
positions is the scene room's job (:mod:`engine.scenes.parser`); this module holds only the
network, its configuration and its checkpoint file.

The trained weights ship as ``assets/scenes/scene_parser.safetensors`` with the card
``scene_parser.md``; when the file is there it is registered as model ``scene-parser``
(task "scene-parser", source "embedded").
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

ASSET = Path(__file__).resolve().parents[2] / "assets" / "scenes" / "scene_parser.safetensors"
#: The metadata ``format`` value of these checkpoints.
FORMAT = "vl-demo-scene-parser-v1"
#: Input preprocessing: RGB in [0, 1] at 128x128 (the network normalises inside).
PARSER_PREPROCESS = Preprocess(size=128, crop_pct=1.0, mean=(0.0, 0.0, 0.0),
                               std=(1.0, 1.0, 1.0), interpolation="bilinear")


@dataclass(frozen=True)
class SceneParserConfig:
    """Architecture of :class:`SceneParserNet`.

    Attributes:
        width: channels of the first stage (stages have width, 2 width, 4 width, 4 width).
        heads: (attribute name, number of classes) of each attribute classifier, in order.
        stride: output stride of the maps (fixed at 4 by the architecture).
    """

    width: int = 16
    heads: tuple[tuple[str, int], ...] = (("shape", 3), ("color", 8), ("size", 2),
                                          ("material", 2))
    stride: int = 4

    @classmethod
    def from_dict(cls, d: dict) -> SceneParserConfig:
        return cls(width=int(d["width"]), heads=tuple((str(n), int(k)) for n, k in d["heads"]),
                   stride=int(d.get("stride", 4)))


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.a = _conv(c, c)
        self.b = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.b(self.a(x)))


class SceneParserNet(nn.Module):
    """Encoder (strides 2, 4, 8, 16) + decoder back to stride 4 with skip connections + heads.

    Args:
        config: the architecture.

    Forward:
        x: (B, 3, H, W) float32 RGB in [0, 1], H and W multiples of 16 (128x128 in training).

    Returns:
        dict of (B, C, H/4, W/4) float32 maps: "heatmap" (C=1, logits), "offset" (C=2,
        centre minus cell corner, in cells, (dx, dy)) and one logit map per attribute of
        ``config.heads`` (C = its number of classes).
    """

    def __init__(self, config: SceneParserConfig = SceneParserConfig()):
        super().__init__()
        self.config = config
        w = config.width
        self.stem = nn.Sequential(_conv(3, w, 2), _conv(w, w))                    # /2
        self.down1 = nn.Sequential(_conv(w, 2 * w, 2), _Residual(2 * w))          # /4
        self.down2 = nn.Sequential(_conv(2 * w, 4 * w, 2), _Residual(4 * w))      # /8
        self.down3 = nn.Sequential(_conv(4 * w, 4 * w, 2), _Residual(4 * w))      # /16
        self.up2 = _conv(4 * w, 4 * w)
        self.lat1 = nn.Conv2d(2 * w, 4 * w, 1)
        self.up1 = nn.Sequential(_conv(4 * w, 2 * w), _Residual(2 * w))
        n_out = 1 + 2 + sum(k for _, k in config.heads)
        self.head = nn.Sequential(_conv(2 * w, 2 * w), nn.Conv2d(2 * w, n_out, 1))
        nn.init.constant_(self.head[-1].bias[:1], -2.2)  # CenterNet's prior for the heatmap

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (x - 0.5) / 0.25
        s4 = self.down1(self.stem(x))            # (B, 2w, H/4, W/4)
        s8 = self.down2(s4)                      # (B, 4w, H/8, W/8)
        s16 = self.down3(s8)                     # (B, 4w, H/16, W/16)
        y = self.up2(s8 + F.interpolate(s16, scale_factor=2.0, mode="nearest"))
        y = self.up1(self.lat1(s4) + F.interpolate(y, scale_factor=2.0, mode="nearest"))
        out = self.head(y)                       # (B, 3 + classes, H/4, W/4)
        maps = {"heatmap": out[:, :1], "offset": out[:, 1:3]}
        c = 3
        for name, k in self.config.heads:
            maps[name] = out[:, c:c + k]
            c += k
        return maps


def save_parser(net: SceneParserNet, path: str | Path, metadata: dict | None = None) -> Path:
    """Write the weights (float32 safetensors) with the config and ``metadata`` (JSON-able
    values) in the file's metadata."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "config": json.dumps(asdict(net.config))}
    meta.update({k: json.dumps(v) for k, v in (metadata or {}).items()})
    state = {k: v.detach().float().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata=meta)
    return path


def load_parser(path: str | Path = ASSET) -> SceneParserNet:
    """A :class:`SceneParserNet` in eval mode from a file written by :func:`save_parser`.

    Raises:
        FileNotFoundError: no such file. ValueError: not a scene parser checkpoint.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scene parser checkpoint {path} not found")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a scene parser checkpoint ({FORMAT})")
    net = SceneParserNet(SceneParserConfig.from_dict(json.loads(meta["config"])))
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def _factory(device: torch.device, dtype: torch.dtype, path: str | Path = ASSET):
    return load_parser(path).to(device=device, dtype=dtype)


if ASSET.is_file():
    register_model(ModelSpec(
        name="scene-parser", task="scene-parser", source="embedded", factory=_factory,
        description="CenterNet-style scene parser for the CLEVR-style world: image -> objects "
                    "(shape, colour, size, material, ground position)",
        preprocess=PARSER_PREPROCESS, weights="assets/scenes/scene_parser.safetensors",
        license="MIT (trained here)", size_mb=round(ASSET.stat().st_size / 1e6, 2)))
