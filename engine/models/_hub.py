"""Is the model hub reachable? Asked only when a user chooses a hub model, and remembered.

The standard Hugging Face environment variables decide: ``HF_HUB_OFFLINE=1`` means offline
without trying; ``HF_ENDPOINT`` names the hub; ``HF_TOKEN`` is used by the libraries themselves.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from urllib.parse import urlparse

#: One sentence the UI shows when a hub model is chosen but the hub cannot be reached.
OFFLINE_MESSAGE = ("The model hub cannot be reached from this server, so hub models are off; "
                   "the embedded offline models are used instead.")

_lock = threading.Lock()
_state: dict[str, float | bool] = {}
_RECHECK_S = 300.0


class HubUnavailableError(RuntimeError):
    """A hub model was requested while the hub is unreachable."""


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def hub_offline_forced() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to a true value."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_available(timeout_s: float = 2.0) -> bool:
    """Whether the hub answers a TCP connection within ``timeout_s`` seconds (cached 5 min)."""
    if hub_offline_forced():
        return False
    with _lock:
        if _state and time.monotonic() - float(_state["at"]) < _RECHECK_S:
            return bool(_state["ok"])
        url = urlparse(_endpoint())
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            with socket.create_connection((url.hostname or "", port), timeout=timeout_s):
                ok = True
        except OSError:
            ok = False
        _state.update(ok=ok, at=time.monotonic())
        return ok


def require_hub(model_name: str) -> None:
    """Raise :class:`HubUnavailableError` unless the hub can be reached for ``model_name``."""
    if hub_available():
        return
    raise HubUnavailableError(f"{model_name}: {OFFLINE_MESSAGE}")
