"""Write the precomputed class-name embeddings (assets/class_text/*.safetensors).

    python assets/make_class_text.py          # writes assets/class_text/imagenet-1k_minilm.safetensors

The 1,000 ImageNet class names of EfficientNet-Lite0 (engine.models.efficientnet), each embedded
by the packaged all-MiniLM-L6-v2 (engine.models.minilm) with the template "{}", as a (1000, 384)
float32 table. The file's metadata holds the SHA-256 of those inputs (encoder package and
version, template, the exact names; engine.models.class_text.inputs_hash): the engine uses the
file only while they are unchanged and otherwise computes the table itself, with a logged note,
until this script is run again.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.models.class_text import IMAGENET_MINILM, ClassNameEmbeddings  # noqa: E402
from engine.models.efficientnet import imagenet_class_names  # noqa: E402
from engine.models.minilm import MiniLMEncoder  # noqa: E402


def main() -> None:
    encoder = MiniLMEncoder()
    table = ClassNameEmbeddings(encoder, imagenet_class_names(), encoder_id=encoder.weights_id)
    path = table.save(IMAGENET_MINILM)
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}: "
          f"{tuple(table.table.shape)} float32, encoder {table.encoder_id}, template "
          f"{table.template!r}, inputs sha256 {table.inputs_hash[:16]}...")


if __name__ == "__main__":
    main()
