"""How long a diffusion edit will take here: steps x measured seconds per step (issue 16).

Two sources of seconds per step, the better one first:

1. **measured in this process**: every hub diffusion run records its own time per step
   (:meth:`StepClock.record`; the mean of the last :data:`KEEP` runs of that kind of model on
   that device, at that working side);
2. **the benchmark file** ``assets/latency/<device type>.json`` written by
   ``python -m benchmarks.diffusion_steps`` on a machine of that kind (the SD-1.5 UNet with
   random weights; InstructPix2Pix's batch of 3).

Costs are kept per square working side (e.g. 256 x 256) and scaled by pixel count to the actual
working size (a 256 x 168 image costs 168/256 of a square one); a side that was not measured
is scaled from the nearest measured one. Inpainting's guidance batch is 2 images, not 3, so its
benchmark prior is 2/3 of InstructPix2Pix's. Without either source there is no estimate (None),
never a made-up number.
"""
from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "latency"
#: Runs remembered per (kind, device type, side).
KEEP = 5
#: Images per UNet call with classifier-free guidance, per editor kind (the benchmark times
#: InstructPix2Pix's 3: text, image and unconditional).
GUIDANCE_BATCH = {"instruct": 3, "inpaint": 2, "generate": 2}


@dataclass(frozen=True)
class Estimate:
    """An expected duration.

    Attributes:
        seconds: expected wall seconds of the whole call (steps and the VAE).
        s_per_step: seconds per denoising step it assumes (at the actual working size).
        source: where the per-step time comes from ("measured here over 3 runs",
            "benchmark file assets/latency/cpu.json (2026-11-29, load 11.7)").
    """

    seconds: float
    s_per_step: float
    source: str

    def text(self, device: str) -> str:
        """One line for the UI: "about 27 s on cpu float32 (10 steps x 2.4 s; measured ...)"."""
        return (f"about {self.seconds:.0f} s on {device} ({self.s_per_step:.2f} s per step; "
                f"{self.source})")


class StepClock:
    """Seconds per step by (kind, device type, square side): measured runs, else the benchmark
    file of that device type. Thread-safe; one process-wide instance, :data:`CLOCK`.

    Args:
        folder: where the benchmark files are (``<device type>.json``).
    """

    def __init__(self, folder: Path = ASSETS) -> None:
        self.folder = Path(folder)
        self._runs: dict[tuple[str, str, int], deque] = {}
        self._lock = threading.Lock()

    def record(self, kind: str, device: str, side: int, size: tuple[int, int], steps: int,
               steps_s: float, rest_s: float) -> None:
        """Remember one finished run.

        Args:
            kind: "instruct", "inpaint" (or "generate").
            device: device type ("cpu", "cuda").
            side: the model's working side (long side, pixels).
            size: the (W, H) working size of this run.
            steps: denoising steps done (>= 1).
            steps_s: wall seconds from the call's start to the last step (text and image
                encoding included).
            rest_s: wall seconds after the last step (VAE decoding, post-processing).
        """
        if steps < 1 or steps_s <= 0:
            return
        area = size[0] * size[1] / float(side * side)  # this run's pixels / the square's
        per_step = steps_s / steps / max(area, 1e-6)
        with self._lock:
            runs = self._runs.setdefault((kind, device, int(side)), deque(maxlen=KEEP))
            runs.append((per_step, rest_s / max(area, 1e-6)))

    def prior(self, device: str) -> dict | None:
        """The benchmark file of ``device`` (parsed), or None if there is none."""
        path = self.folder / f"{device}.json"
        if not path.is_file():
            return None
        return json.loads(path.read_text())

    def _square_cost(self, kind: str, device: str, side: int
                     ) -> tuple[float, float, str] | None:
        """(s per step, s of the rest, source) for a ``side`` x ``side`` image, or None."""
        with self._lock:
            runs = list(self._runs.get((kind, device, int(side)), ()))
        if runs:
            step = sum(r[0] for r in runs) / len(runs)
            rest = sum(r[1] for r in runs) / len(runs)
            return step, rest, f"measured here over {len(runs)} run{'s' * (len(runs) > 1)}"
        data = self.prior(device)
        if not data or not data.get("s_per_step"):
            return None
        sides = sorted(int(s) for s in data["s_per_step"])
        near = min(sides, key=lambda s: abs(s - side))
        scale = (side / near) ** 2
        batch = GUIDANCE_BATCH.get(kind, 3) / GUIDANCE_BATCH["instruct"]
        step = float(data["s_per_step"][str(near)]) * scale * batch
        rest = float(data.get("vae_s", {}).get(str(near), 0.0)) * scale
        source = (f"benchmark assets/latency/{device}.json ({data.get('date', '?')}, "
                  f"load {data.get('load_avg_start', '?')})")
        return step, rest, source

    def estimate(self, kind: str, device: str, side: int, size: tuple[int, int], steps: int
                 ) -> Estimate | None:
        """Expected duration of ``steps`` steps at working ``size`` (W, H), or None when this
        device has neither measured runs nor a benchmark file."""
        cost = self._square_cost(kind, device, side)
        if cost is None:
            return None
        step, rest, source = cost
        area = size[0] * size[1] / float(side * side)
        return Estimate(int(steps) * step * area + rest * area, step * area, source)

    def steps_within(self, kind: str, device: str, side: int, budget_s: float,
                     bounds: tuple[int, int] = (4, 20)) -> int | None:
        """The most steps of a square ``side`` image that fit in ``budget_s`` seconds, clamped
        to ``bounds``; None without an estimate."""
        cost = self._square_cost(kind, device, side)
        if cost is None:
            return None
        step, rest, _ = cost
        fit = int((budget_s - rest) // step) if step > 0 else bounds[1]
        return max(bounds[0], min(bounds[1], fit))


#: The process-wide clock the editors record into and the tabs ask.
CLOCK = StepClock()

__all__ = ["CLOCK", "Estimate", "StepClock"]
