"""Process-wide settings shared by the app and the CLI (threads, library log noise)."""
from __future__ import annotations

import logging
import os
import sys
import warnings


def quiet_libraries() -> None:
    """Silence progress bars and advisory warnings of transformers / huggingface_hub / timm.

    Through their environment variables, so transformers is not imported here (it costs more
    than a second; only the text and hub models need it): transformers reads
    ``TRANSFORMERS_VERBOSITY`` and huggingface_hub's ``HF_HUB_DISABLE_PROGRESS_BARS`` when it
    is first imported. If it is imported already, it is told directly.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="timm")
    if "transformers" in sys.modules:
        transformers = sys.modules["transformers"]
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    for name in ("huggingface_hub", "timm", "open_clip", "diffusers"):
        logging.getLogger(name).setLevel(logging.ERROR)


_onnx: dict = {"threads": None, "memory_arena": True}


def set_threads(torch_threads: int, onnx_threads: int | None = None) -> None:
    """Threads of this process's two runtimes (each entry point sets its own).

    Args:
        torch_threads: PyTorch intra-op threads (``torch.set_num_threads``).
        onnx_threads: ONNX Runtime intra-op threads of sessions created from now on (default:
            the same as PyTorch's).
    """
    import torch
    torch.set_num_threads(int(torch_threads))
    _onnx["threads"] = int(onnx_threads) if onnx_threads else None


def set_onnx_memory_arena(enabled: bool) -> None:
    """Whether ONNX Runtime sessions created from now on keep freed memory in an arena.

    The arena makes large batches about a third faster but keeps the largest batch's memory
    for the life of the process (measured in docs/benchmarks.md); a long-running server turns
    it off, a batch command keeps it.
    """
    _onnx["memory_arena"] = bool(enabled)


def onnx_threads() -> int:
    """ONNX Runtime intra-op threads for a new session (see :func:`set_threads`)."""
    if _onnx["threads"]:
        return _onnx["threads"]
    import torch
    return torch.get_num_threads()


def onnx_memory_arena() -> bool:
    """See :func:`set_onnx_memory_arena` (default True)."""
    return _onnx["memory_arena"]
