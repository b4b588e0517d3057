"""The scene world's two learned-model pipelines for the app and the CLI (no Gradio here).

* :class:`SceneCaptionPipeline`: an image (a rendered scene, or any upload) -> the learned
  caption (greedy, beam search or seeded nucleus sampling), one cross-attention map per word,
  the scene parser's reading of the image (its tags), the ground-truth description when the
  scene is known, and the hallucination check (object mentions that name no object of the
  scene; Rohrbach et al., EMNLP 2018). :func:`new_scene` draws the scene of a seed.
* :class:`SceneChangePipeline`: a CLEVR-Change pair (before, after) -> DUDA's caption (Park et
  al., ICCV 2019), its before and after attention maps, and the ground-truth change captions
  when the pair is known. :func:`new_change_pair` draws the pair of a seed and change type.

Both own their components (given to the constructor; ``engine.factory`` builds them with the
registered models) and are read-only, so one instance serves every request.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from engine.errors import UserInputError, unknown_name_message
from engine.scenes.changes import PAIR_TYPES, ChangePair, sample_change_pair
from engine.scenes.language import describe_scene
from engine.scenes.render import render
from engine.scenes.sampling import sample_scene
from engine.scenes.scene import Scene

#: Largest scene seed accepted from a user (numpy accepts any non-negative int; this keeps the
#: number readable and the JSON exact).
MAX_SEED = 2 ** 31 - 1
#: Side (pixels) of the images shown: renders at this size, uploads resized to it.
DISPLAY_SIZE = 256
#: The captioner's and parser's input side (their training resolution).
MODEL_SIZE = 128
#: Decodings of :class:`SceneCaptionPipeline`.
DECODINGS = ("greedy", "beam", "nucleus")
#: What the change-type control offers: the pair types and "random".
CHANGE_CHOICES = ("random",) + PAIR_TYPES
#: The note every caption of an uploaded image carries.
UPLOAD_NOTE = ("This captioner was trained only on rendered scenes of this world (cubes, spheres "
               "and cylinders of 8 colours, 2 sizes, 2 materials on a grey floor): it describes "
               "any image in those words, so on a photo its caption says nothing true about it "
               "(and the scene parser's objects are its reading of the photo as a scene, "
               "just as untrue).")


def check_seed(seed) -> int:
    """A user's seed as an int in [0, :data:`MAX_SEED`].

    Raises:
        UserInputError: not a whole number in range (the message quotes it).
    """
    try:
        value = float(seed)
    except (TypeError, ValueError):
        raise UserInputError(f"the seed must be a whole number, got {seed!r}") from None
    if not np.isfinite(value) or value != int(value) or not 0 <= value <= MAX_SEED:
        raise UserInputError(f"the seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return int(value)


def new_scene(seed) -> tuple[Scene, Image.Image]:
    """The scene of ``seed`` (CLEVR's sampling rules) and its render at :data:`DISPLAY_SIZE`.

    Raises:
        UserInputError: a bad seed.
    """
    scene = sample_scene(check_seed(seed))
    return scene, Image.fromarray(render(scene, DISPLAY_SIZE).image)


def new_change_pair(seed, change_type: str = "random") -> tuple[ChangePair, Image.Image,
                                                                 Image.Image]:
    """The CLEVR-Change pair of ``seed`` and ``change_type`` (one of :data:`CHANGE_CHOICES`) and
    its two renders at :data:`DISPLAY_SIZE`.

    Raises:
        UserInputError: a bad seed or an unknown change type.
    """
    seed = check_seed(seed)
    if change_type not in CHANGE_CHOICES:
        raise UserInputError(unknown_name_message("change type", change_type, CHANGE_CHOICES))
    pair = sample_change_pair(seed, None if change_type == "random" else change_type)
    r = pair.render(DISPLAY_SIZE)
    return pair, Image.fromarray(r.before.image), Image.fromarray(r.after.image)


def attention_overlay(image: Image.Image, attention: np.ndarray, alpha: float = 0.55
                      ) -> Image.Image:
    """``attention`` (h, w), any non-negative weights, upsampled bilinearly over ``image``
    (jet colormap, min-max scaled; see :func:`engine.viz.overlay_heatmap`)."""
    from engine.viz import overlay_heatmap
    return overlay_heatmap(image, attention, alpha=alpha)


def _model_input(image: Image.Image) -> np.ndarray:
    """(MODEL_SIZE, MODEL_SIZE, 3) uint8 RGB of any image (bilinear, aspect not kept)."""
    return np.array(image.convert("RGB").resize((MODEL_SIZE, MODEL_SIZE),
                                                Image.Resampling.BILINEAR))


# -- captioning ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneCaption:
    """The learned captioner's answer for one image.

    Attributes:
        image: the image the maps are drawn over (RGB, :data:`DISPLAY_SIZE` square).
        caption: the caption. words: its words ("." a word of its own).
        attention: (len(words), g, g) float32, each word's cross-attention over the g x g
            grid (last decoder layer, heads averaged; each map sums to 1).
        tags: the scene parser's objects, "large red metal cube", left to right.
        truth: the ground-truth description (None for an image without a known scene).
        hallucinated: the caption's object mentions that name no object of the scene (the
            truth if known, otherwise the parser's reading), as phrases.
        mentions: the number of object mentions in the caption.
        model, decoding, ms: what ran and how long (captioning only, milliseconds).
        notes: sentences for the user.
    """

    image: Image.Image
    caption: str
    words: tuple[str, ...]
    attention: np.ndarray
    tags: tuple[str, ...]
    truth: str | None
    hallucinated: tuple[str, ...]
    mentions: int
    model: str
    decoding: str
    ms: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def overlay(self, k: int) -> Image.Image:
        """Word ``k``'s attention over the image.

        Raises:
            UserInputError: no word ``k``.
        """
        if not 0 <= k < len(self.words):
            raise UserInputError(f"no word {k} in a caption of {len(self.words)} words")
        return attention_overlay(self.image, self.attention[k])

    def to_json(self) -> dict:
        """JSON-able summary (no images)."""
        return {"caption": self.caption, "words": list(self.words), "tags": list(self.tags),
                "truth": self.truth, "hallucinated": list(self.hallucinated),
                "mentions": self.mentions, "model": self.model, "decoding": self.decoding,
                "ms": round(self.ms, 1), "notes": list(self.notes)}


def _phrase(mention: dict[str, str]) -> str:
    order = ("size", "color", "material", "shape")
    return " ".join(mention[a] for a in order if a in mention)


class SceneCaptionPipeline:
    """Image -> :class:`SceneCaption` with the learned scene captioner.

    Args:
        net: a :class:`~engine.models.scene_captioner.SceneCaptionerNet` (eval mode).
        parser: a :class:`~engine.scenes.parser.SceneParser` (the tags and, without ground
            truth, the hallucination check).
        name: the captioner's model name (reported).
    """

    def __init__(self, net, parser, name: str = "scene-captioner"):
        self.net, self.parser, self.name = net.eval(), parser, name

    @torch.no_grad()
    def __call__(self, image: Image.Image, scene: Scene | None = None, decoding: str = "greedy",
                 beam: int = 3, top_p: float = 0.9, seed: int = 0,
                 uploaded: bool = False) -> SceneCaption:
        """Caption one image.

        Args:
            image: RGB image (any size; the model reads it at 128x128, aspect not kept).
            scene: the scene the image shows, if known (ground truth and hallucination check).
            decoding: "greedy", "beam" (``beam`` hypotheses) or "nucleus" (``top_p``, seeded
                by ``seed``: the same seed gives the same caption).
            uploaded: the image is a user's upload (adds :data:`UPLOAD_NOTE`).

        Raises:
            UserInputError: unknown decoding, beam outside 1..8, top_p outside (0, 1].
        """
        from engine.models.scene_captioner import detokenize
        from engine.scenes.captioner import exists, mentions, scene_from_parser
        if decoding not in DECODINGS:
            raise UserInputError(unknown_name_message("decoding", decoding, DECODINGS))
        if not 1 <= int(beam) <= 8:
            raise UserInputError(f"the beam width must be 1 to 8, got {beam}")
        if not 0.0 < float(top_p) <= 1.0:
            raise UserInputError(f"top-p must be in (0, 1], got {top_p}")
        shown = image.convert("RGB").resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.BILINEAR)
        arr = _model_input(image)
        t0 = time.perf_counter()
        x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255.0     # (1, 3, 128, 128)
        feats = self.net.grid_features(x)
        if decoding == "greedy":
            ids, maps = self.net.greedy(feats)
            ids, maps = ids[0], maps[0]
        elif decoding == "beam":
            ids, maps = self.net.beam_search(feats, beam=int(beam))
        else:
            ids, maps = self.net.sample(feats, top_p=float(top_p), seed=int(seed))
            ids, maps = ids[0], maps[0]
        ms = (time.perf_counter() - t0) * 1000
        words = tuple(self.net.decode_ids(ids))
        caption = detokenize(list(words))
        parsed = self.parser(arr)[0]
        parsed = sorted(parsed, key=lambda p: p.uv[0])
        tags = tuple(_phrase(p.object.attributes()) for p in parsed)
        reference = scene if scene is not None else scene_from_parser(parsed)
        ms_ = mentions(caption)
        bad = tuple(_phrase(m) for m in ms_ if not exists(m, reference))
        notes = [UPLOAD_NOTE] if uploaded else []
        if scene is None:
            notes.append("No ground truth for this image: the hallucination check compares the "
                         "caption with the scene parser's reading of it.")
        return SceneCaption(shown, caption, words, maps.numpy().astype(np.float32), tags,
                            describe_scene(scene) if scene is not None else None, bad, len(ms_),
                            self.name, decoding, ms, tuple(notes))


# -- change captioning -----------------------------------------------------------------------
@dataclass(frozen=True)
class SceneChange:
    """DUDA's answer for one pair.

    Attributes:
        before, after: the images (RGB, :data:`DISPLAY_SIZE` square).
        before_overlay, after_overlay: the dual attention maps over them.
        caption: DUDA's sentence. no_change: it is a "no change" sentence.
        map_before, map_after: (h, w) float32 attention maps (each sums to 1).
        dynamic_attention: per word, the dynamic speaker's weights of the before, difference
            and after features.
        truth: the pair's reference captions (empty if unknown). change_type: the pair's type
            ("distractor" for none; None if unknown).
        model, ms: what ran and how long (milliseconds).
    """

    before: Image.Image
    after: Image.Image
    before_overlay: Image.Image
    after_overlay: Image.Image
    caption: str
    no_change: bool
    map_before: np.ndarray
    map_after: np.ndarray
    dynamic_attention: list[dict]
    truth: tuple[str, ...]
    change_type: str | None
    model: str
    ms: float

    def to_json(self) -> dict:
        return {"caption": self.caption, "no_change": self.no_change,
                "truth": list(self.truth), "change_type": self.change_type,
                "dynamic_attention": self.dynamic_attention, "model": self.model,
                "ms": round(self.ms, 1)}


class SceneChangePipeline:
    """(before, after) -> :class:`SceneChange` with a learned change captioner.

    Args:
        captioner: a :class:`~engine.scenes.duda.DudaCaptioner`.
        name: its model name (reported).
    """

    def __init__(self, captioner, name: str = "duda"):
        self.captioner, self.name = captioner, name

    def __call__(self, before: Image.Image, after: Image.Image,
                 pair: ChangePair | None = None) -> SceneChange:
        """Describe the change from ``before`` to ``after`` (any sizes; resized to the model's).

        Args:
            pair: the pair the images show, if known (its reference captions and type).
        """
        b = before.convert("RGB").resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.BILINEAR)
        a = after.convert("RGB").resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.BILINEAR)
        t0 = time.perf_counter()
        out = self.captioner(np.asarray(b), np.asarray(a))[0]
        ms = (time.perf_counter() - t0) * 1000
        return SceneChange(b, a, attention_overlay(b, out.map_before),
                           attention_overlay(a, out.map_after), out.caption, out.no_change,
                           np.asarray(out.map_before, np.float32),
                           np.asarray(out.map_after, np.float32),
                           out.to_json()["dynamic_attention"],
                           tuple(pair.captions) if pair is not None else (),
                           pair.type if pair is not None else None, self.name, ms)


__all__ = ["CHANGE_CHOICES", "DECODINGS", "DISPLAY_SIZE", "MAX_SEED", "SceneCaption",
           "SceneCaptionPipeline", "SceneChange", "SceneChangePipeline", "UPLOAD_NOTE",
           "attention_overlay", "check_seed", "new_change_pair", "new_scene"]
