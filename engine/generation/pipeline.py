"""Text -> image with the scene generator: DDIM sampling (Song et al., ICLR 2021; eta 0, so
the image is a deterministic function of the text, the seed, the step count and the guidance
scale) with classifier-free guidance (Ho & Salimans, 2021):
``eps = eps(x_t, empty) + w * (eps(x_t, text) - eps(x_t, empty))``; ``w`` = 1 is the plain
conditional model, ``w`` = 0 ignores the text, ``w`` > 1 follows the text more closely at the
cost of variety (GLIDE's and Imagen's setting).

    >>> from engine.factory import get_pipeline
    >>> r = get_pipeline("generate")("a large blue metal sphere left of a small yellow cube",
    ...                              seed=0, steps=25, guidance=3.0)
    >>> r.image.shape, len(r.frames)      # (32, 32, 3) uint8, the strip of x_t
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from engine.errors import UserInputError
from engine.generation.text import Tokens, null_ids, pad_batch, tokenize
from engine.models.scene_generator import SceneGeneratorNet, make_scheduler

#: Defaults of the app and the command line (the speed figure in docs/generate.md is at these).
DEFAULT_STEPS, DEFAULT_GUIDANCE = 25, 3.0
#: Accepted ranges.
MAX_STEPS, MAX_GUIDANCE, MAX_SEED = 200, 20.0, 2**32 - 1
#: Frames of the denoising strip (the initial noise, evenly spaced x_t, the result).
STRIP_FRAMES = 8


@dataclass
class GenerationResult:
    """One generated image.

    Attributes:
        image: (S, S, 3) uint8 RGB, S = the model's side (32).
        frames: the strip: (S, S, 3) uint8 images of ``x_t`` from pure noise to the result.
        frame_steps: for each frame, how many denoising steps had been taken.
        words: the words the model read; notes: sentences for the user.
        seed, steps, guidance: the settings used; seconds: wall time of the sampling.
    """

    image: np.ndarray
    frames: list[np.ndarray]
    frame_steps: list[int]
    words: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    seed: int = 0
    steps: int = DEFAULT_STEPS
    guidance: float = DEFAULT_GUIDANCE
    seconds: float = 0.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(3, S, S) float in [-1, 1] -> (S, S, 3) uint8 (clipped, rounded)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def check_settings(seed, steps, guidance) -> tuple[int, int, float]:
    """Validated (seed, steps, guidance).

    Raises:
        UserInputError: a missing or non-numeric value, a fractional seed or step count,
            seed outside 0..2**32-1, steps outside 1..200, guidance outside 0..20 or NaN.
    """
    out = []
    for name, value, lo, hi, integer in (("seed", seed, 0, MAX_SEED, True),
                                         ("steps", steps, 1, MAX_STEPS, True),
                                         ("guidance scale", guidance, 0.0, MAX_GUIDANCE, False)):
        if value is None or isinstance(value, bool):
            raise UserInputError(f"the {name} is missing: give a number from {lo} to {hi}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise UserInputError(f"the {name} must be a number from {lo} to {hi}, got "
                                 f"{str(value)[:40]!r}") from None
        if not math.isfinite(v) or not lo <= v <= hi:
            raise UserInputError(f"the {name} must be from {lo} to {hi}, got {value}")
        if integer and v != int(v):
            raise UserInputError(f"the {name} must be a whole number, got {value}")
        out.append(int(v) if integer else v)
    return out[0], out[1], out[2]


class GeneratePipeline:
    """Text -> image with a :class:`~engine.models.scene_generator.SceneGeneratorNet` (owned,
    read-only; a fresh scheduler per call, so concurrent calls do not share state).

    Args:
        net: the generator (eval mode).
        name: registry name, for results and messages.
    """

    def __init__(self, net: SceneGeneratorNet, name: str = "scene-generator"):
        self.net, self.name = net.eval(), name
        self.config = net.config
        self._lock = threading.Lock()  # torch modules are safe to share, but one call at a
        # time keeps per-request speed predictable on a 2-core machine

    def tokenize(self, text: str) -> Tokens:
        """The text's token ids (see :func:`engine.generation.text.tokenize`)."""
        return tokenize(text, self.config.vocab, self.config.max_tokens)

    @torch.no_grad()
    def __call__(self, text: str, seed=0, steps=DEFAULT_STEPS, guidance=DEFAULT_GUIDANCE,
                 progress: Callable[[int, int], None] | None = None,
                 strip: int = STRIP_FRAMES) -> GenerationResult:
        """Generate one image of ``text``.

        Args:
            text: a description of 1-3 objects of the scene world.
            seed: 0..2**32-1, seeds the initial noise (the same seed, same bytes).
            steps: DDIM steps, 1..200.
            guidance: classifier-free guidance scale ``w``, 0..20.
            progress: called as ``progress(done, steps)`` after every step.
            strip: frames in ``frames`` (at most steps + 1).

        Raises:
            UserInputError: empty text or none of the world's words, bad settings.
        """
        seed, steps, guidance = check_settings(seed, steps, guidance)
        tokens = self.tokenize(text)
        with self._lock:
            return self._sample(tokens, seed, steps, guidance, progress, strip)

    def _sample(self, tokens: Tokens, seed: int, steps: int, guidance: float, progress,
                strip: int) -> GenerationResult:
        t0 = time.perf_counter()
        c = self.config
        scheduler = make_scheduler(c, "ddim")
        scheduler.set_timesteps(steps)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn((1, 3, c.image_size, c.image_size), generator=gen)
        if guidance == 1.0:
            ids = pad_batch([tokens.ids])
        elif guidance == 0.0:
            ids = pad_batch([null_ids()])
        else:
            ids = pad_batch([null_ids(), tokens.ids])
        states = self.net.encode_text(ids)
        keep = set(np.linspace(0, steps, min(strip, steps + 1)).round().astype(int).tolist())
        frames, frame_steps = [], []
        if 0 in keep:
            frames.append(to_uint8(x[0]))
            frame_steps.append(0)
        for k, t in enumerate(scheduler.timesteps):
            inp = x.expand(len(ids), -1, -1, -1)
            eps = self.net.denoise(inp, t.expand(len(ids)), states, ids)
            if len(ids) == 2:
                eps = eps[:1] + guidance * (eps[1:] - eps[:1])
            x = scheduler.step(eps, t, x).prev_sample
            if k + 1 in keep:
                frames.append(to_uint8(x[0]))
                frame_steps.append(k + 1)
            if progress is not None:
                progress(k + 1, steps)
        return GenerationResult(to_uint8(x[0]), frames, frame_steps, tokens.words,
                                list(tokens.notes), seed, steps, guidance,
                                time.perf_counter() - t0)

    def warm_up(self) -> None:
        """One 2-step generation (the first call pays for lazy initialisation)."""
        self("a large red rubber cube", seed=0, steps=2)
