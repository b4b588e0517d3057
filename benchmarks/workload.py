"""The mixed workload the load and soak commands send: one entry per tab's main calls.

A tab adds its requests to :data:`REQUESTS`: ``name -> fn(client, rng)`` doing one user action
through ``gradio_client`` (it may call several endpoints, as a person clicking would).
"""
from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
sys.path.insert(0, str(ROOT / "tests"))

from app_server import running_app  # noqa: E402,F401  (re-exported for the commands)

PHOTOS = sorted(EXAMPLES.glob("*.jpg"))
QUERIES = sorted((EXAMPLES / "fewshot" / "query").glob("*.jpg"))


def caption(client, rng: random.Random) -> None:
    from gradio_client import handle_file
    photo = PHOTOS[rng.randrange(len(PHOTOS))]
    client.predict(handle_file(str(photo)), "efficientnet_lite0", "beam", 0, 5, api_name="/caption")


def fewshot(client, rng: random.Random) -> None:
    from gradio_client import handle_file
    client.predict(api_name="/fewshot_load_example")
    query = QUERIES[rng.randrange(len(QUERIES))]
    label, *_ = client.predict([handle_file(str(query))], None,
                               rng.choice(["protonet", "cosine", "linear"]),
                               "efficientnet_lite0", api_name="/fewshot_classify")
    expected = query.name.split("_")[0]
    if label["label"] != expected:
        raise AssertionError(f"few-shot answered {label['label']!r} for {query.name}")


def handwriting(client, rng: random.Random) -> None:
    from gradio_client import handle_file
    client.predict(api_name="/handwriting_load_example")
    n = rng.randrange(1, 4)
    query = EXAMPLES / "handwriting" / "query" / f"symbol_{n}_query.png"
    client.predict({"background": handle_file(str(query)), "layers": [],
                    "composite": handle_file(str(query))}, "omniglot-protonet", 5, 0.4,
                   api_name="/handwriting_classify")


def change(client, rng: random.Random) -> None:
    from gradio_client import handle_file
    name = rng.choice(["moved_cup", "nochange_cat_shift"])
    client.predict(handle_file(str(EXAMPLES / "changes" / f"{name}_before.jpg")),
                   handle_file(str(EXAMPLES / "changes" / f"{name}_after.jpg")),
                   "efficientnet_lite0", api_name="/change")


def edit(client, rng: random.Random) -> None:
    from gradio_client import handle_file
    text = rng.choice(["turn it black and white", "make the picture darker"])
    client.predict(handle_file(str(EXAMPLES / "coffee.jpg")), text, "efficientnet_lite0",
                   20, 7.5, 1.5, 0, api_name="/edit")


def retrieve(client, rng: random.Random) -> None:
    from gradio_client import handle_file
    photo = rng.choice(["cat.jpg", "flower.jpg"])
    client.predict(handle_file(str(EXAMPLES / photo)), "in black and white", 0.5, 10,
                   "efficientnet_lite0", api_name="/retrieve")


def segment(client, rng: random.Random) -> None:
    from gradio_client import handle_file
    seg = EXAMPLES / "segment"
    support = {"background": handle_file(str(seg / "support.jpg")),
               "layers": [handle_file(str(seg / "support_mask.png"))], "composite": None}
    client.predict(support, None, None, None, None, handle_file(str(seg / "query.jpg")),
                   "efficientnet_lite0", 0.5, api_name="/segment")


#: name -> one user action, one per tab. Weighted equally.
REQUESTS: dict[str, Callable] = {"caption": caption, "fewshot": fewshot,
                                 "handwriting": handwriting, "change": change, "edit": edit,
                                 "retrieve": retrieve, "segment": segment}


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid`` in KiB (VmRSS), 0 if unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def percentile(values: list[float], q: float) -> float:
    """q-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)
