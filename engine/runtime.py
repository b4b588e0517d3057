"""Process-wide settings shared by the app and the CLI (threads, library log noise)."""
from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries() -> None:
    """Silence progress bars and advisory warnings of transformers / huggingface_hub / timm."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="timm")
    try:
        import transformers
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except ImportError:
        pass
    for name in ("huggingface_hub", "timm", "open_clip", "diffusers"):
        logging.getLogger(name).setLevel(logging.ERROR)
