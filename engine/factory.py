"""Builds each task's pipeline from the model registry: the one place models are created.

The demos and the command line ask here for a pipeline by (task, model name); pipelines and
algorithms receive their components in their constructors and never look a model up. Every
pipeline is built once per process per (task, model) and is read-only afterwards (per-request
state lives in the call). A hub model the server cannot reach is reported in one sentence and
the task's embedded default is used instead (:func:`choose_pipeline`).

    >>> from engine.factory import get_pipeline, task_models
    >>> task_models("caption")
    ['efficientnet_lite0', 'blip-base']
    >>> result = get_pipeline("caption")(image)
"""
from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from engine.errors import UserInputError, unknown_name_message
from engine.models import (OFFLINE_MESSAGE, HubUnavailableError, ModelSpec, get_spec,
                           hub_available, list_models, load_model)

#: The embedded backbone most tasks run on (EfficientNet-Lite0, ImageNet).
EMBEDDED_BACKBONE = "efficientnet_lite0"
#: The embedded sentence encoder (all-MiniLM-L6-v2).
EMBEDDED_TEXT = "minilm"
#: The app's default handwriting model (the best one measured, docs/meta_learning.md).
DEFAULT_HANDWRITING = "omniglot-protonet"


@dataclass(frozen=True)
class Task:
    """How to build one task's pipeline.

    Attributes:
        name: task name ("caption", "change", ...).
        default: the embedded model used by default and as the offline fallback.
        models: callable returning the model names the task accepts, default first.
        build: callable(model name) -> pipeline.
    """

    name: str
    default: str
    models: Callable[[], list[str]]
    build: Callable[[str], Any]


# --- components shared by several tasks --------------------------------------------------------

@functools.lru_cache(maxsize=1)
def imagenet_class_text():
    """The process-wide MiniLM table of the backbone's 1,000 ImageNet class names (captioning
    groups synonymous tags with it; editing matches object words to classes; retrieval's ConSE
    embeds images with it). Read from the shipped file when its inputs hash matches; MiniLM is
    loaded only if the table must be computed or a task asks for the encoder."""
    from engine.models.class_text import IMAGENET_MINILM, ClassNameEmbeddings
    from engine.models.efficientnet import imagenet_class_names
    from engine.models.minilm import weights_id
    return ClassNameEmbeddings(lambda: load_model(EMBEDDED_TEXT), imagenet_class_names(),
                               encoder_id=weights_id(), shipped=IMAGENET_MINILM)


# --- caption ---------------------------------------------------------------------------------

def _caption_models() -> list[str]:
    return [EMBEDDED_BACKBONE] + list_models(task="caption")


def _hub_captioner(model: str):
    """The hub captioner component on registered model ``model`` (BLIP)."""
    from engine.captioning.captioners import HubCaptioner
    return HubCaptioner(load_model(model), get_spec(model).preprocess)


def _build_caption(model: str):
    from engine.captioning.pipeline import CaptionPipeline
    from engine.captioning.tagger import ImageNetTagger
    tagger = ImageNetTagger(load_model(EMBEDDED_BACKBONE), None,
                            get_spec(EMBEDDED_BACKBONE).preprocess,
                            class_text=imagenet_class_text())
    captioner = None if model == EMBEDDED_BACKBONE else _hub_captioner(model)
    return CaptionPipeline(tagger, captioner, name=model)


# --- change ----------------------------------------------------------------------------------

def _change_models() -> list[str]:
    return [EMBEDDED_BACKBONE] + list_models(task="caption")


def _build_change(model: str):
    from engine.change.features import ChangeFeatures
    from engine.change.namers import CaptionNamer, ImageNetNamer
    from engine.change.pipeline import ChangePipeline
    backbone = load_model(EMBEDDED_BACKBONE)
    features = ChangeFeatures(backbone, get_spec(EMBEDDED_BACKBONE).preprocess)
    namer = (ImageNetNamer(features.class_names) if model == EMBEDDED_BACKBONE
             else CaptionNamer(_hub_captioner(model)))
    return ChangePipeline(features, namer, name=model)


# --- edit ------------------------------------------------------------------------------------

def _edit_models() -> list[str]:
    return [EMBEDDED_BACKBONE] + list_models(task="edit") + list_models(task="inpaint")


def _build_edit(model: str):
    from engine.editing.pipeline import EditPipeline
    if model == EMBEDDED_BACKBONE:
        from engine.editing.localize import Localiser
        from engine.editing.offline import OfflineEditor
        class_text = imagenet_class_text()
        _ = class_text.table  # read (or embed) the class names now, not inside the first edit
        localiser = Localiser(load_model(model), get_spec(model).preprocess,
                              class_text.text_encoder, class_text)
        return EditPipeline(OfflineEditor(localiser, name=model))
    from engine.editing.diffusion import InpaintingEditor, InstructPix2PixEditor
    editor = InpaintingEditor if get_spec(model).task == "inpaint" else InstructPix2PixEditor
    return EditPipeline(editor(load_model(model), name=model))


# --- retrieve --------------------------------------------------------------------------------

def _retrieve_models() -> list[str]:
    return [EMBEDDED_BACKBONE, "openclip-vit-b-32"]


def _build_retrieve(model: str):
    from engine.retrieval.encoders import ClipEncoder, ConseEncoder
    from engine.retrieval.pipeline import RetrievalPipeline
    if model == EMBEDDED_BACKBONE:
        class_text = imagenet_class_text()
        encoder = ConseEncoder(load_model(model), get_spec(model).preprocess,
                               class_text.text_encoder, class_text, name=model)
    else:
        encoder = ClipEncoder(load_model(model), get_spec(model).preprocess, name=model)
    return RetrievalPipeline(encoder)


# --- segment ---------------------------------------------------------------------------------

def _segment_models() -> list[str]:
    return [EMBEDDED_BACKBONE] + list_models(task="segmentation")


def _build_segment(model: str):
    from engine.segmentation.pipeline import SegmentPipeline
    if model == EMBEDDED_BACKBONE:  # the shared Lite0 network behind smp's encoder interface
        from engine.models.smp_encoders import Lite0Encoder
        encoder = Lite0Encoder(load_model(model).net)
    else:  # a hub smp encoder (smp-convnext-tiny)
        encoder = load_model(model)
    return SegmentPipeline(encoder, get_spec(model).preprocess, name=model)


# --- few-shot (photos over a frozen backbone; drawings with meta-learned checkpoints) -----------

def _fewshot_models() -> list[str]:
    return list_models(task="backbone", source="embedded") + list_models(task="backbone",
                                                                        source="hub")


def _build_fewshot(model: str):
    from engine.fewshot.photos import PHOTO_LIMITS, BackboneFeatures, FrozenFeatureMethods
    from engine.fewshot.pipeline import FewShotPipeline
    encoder = BackboneFeatures(load_model(model), get_spec(model).preprocess, name=model)
    return FewShotPipeline(encoder, FrozenFeatureMethods(), PHOTO_LIMITS, name=model)


def handwriting_models(include_variants: bool = False) -> list[str]:
    """Omniglot models meta-trained here, the app's default first.

    Args:
        include_variants: also the ProtoNets trained at other (N, K) for the train/test
            mismatch table (``omniglot-protonet-5w1s`` ...): hidden from the app, accepted by
            ``python -m engine classify`` and ``fewshot-eval``.
    """
    import re
    names = [n for n in list_models(task="fewshot")
             if include_variants or not re.search(r"-\d+w\d+s$", n)]
    return sorted(names, key=lambda n: (n != DEFAULT_HANDWRITING, n))


def _handwriting_models() -> list[str]:
    return handwriting_models()


def _build_handwriting(model: str):
    from engine.fewshot.checkpoints import build_classifier
    from engine.fewshot.handwriting import DRAWING_LIMITS, DrawingEncoder, MetaLearned
    from engine.fewshot.pipeline import FewShotPipeline
    classifier = build_classifier(load_model(model))  # once per process; copied per request
    return FewShotPipeline(DrawingEncoder(), MetaLearned(classifier), DRAWING_LIMITS, name=model)


def handwriting_pipeline(model: str | None = None) -> Any:
    """The handwriting pipeline of any Omniglot model, the hidden (N, K) variants included
    (for the command line; the app uses :func:`get_pipeline`). Default: the app's default.

    Raises:
        UserInputError: not an Omniglot model; the message lists every valid one.
    """
    model = model or default_model("handwriting")
    valid = handwriting_models(include_variants=True)
    if model not in valid:
        raise UserInputError(unknown_name_message("handwriting model", model, valid))
    if model in task_models("handwriting"):
        return get_pipeline("handwriting", model)
    return _build_handwriting(model)  # a variant: built for this (command-line) process


#: The registry name of the scene world's parser (image -> objects).
SCENE_PARSER = "scene-parser"


def scene_parser_models() -> list[str]:
    """Registered scene parsers (empty when ``assets/scenes/scene_parser.safetensors`` is
    missing)."""
    return list_models(task="scene-parser")


@functools.lru_cache(maxsize=4)
def scene_parser(model: str | None = None) -> Any:
    """The process-wide :class:`engine.scenes.parser.SceneParser` of ``model`` (default
    :data:`SCENE_PARSER`), read-only.

    Raises:
        UserInputError: not a registered scene parser (the message lists the valid ones).
    """
    from engine.scenes.parser import SceneParser
    model = model or SCENE_PARSER
    valid = scene_parser_models()
    if model not in valid:
        raise UserInputError(unknown_name_message("scene parser", model, valid or ["(none: "
                             "train one with python -m engine train-scene-parser)"]))
    return SceneParser(load_model(model))


#: The registry name of the scene world's learned captioner.
SCENE_CAPTIONER = "scene-captioner"


def scene_captioner_models() -> list[str]:
    """Registered scene captioners (empty when ``assets/scenes/scene_captioner.safetensors``
    is missing)."""
    return list_models(task="scene-captioner")


@functools.lru_cache(maxsize=4)
def scene_captioner(model: str | None = None) -> Any:
    """The process-wide :class:`engine.models.scene_captioner.SceneCaptionerNet` of ``model``
    (default :data:`SCENE_CAPTIONER`), in eval mode, read-only.

    Raises:
        UserInputError: not a registered scene captioner (the message lists the valid ones).
    """
    model = model or SCENE_CAPTIONER
    valid = scene_captioner_models()
    if model not in valid:
        raise UserInputError(unknown_name_message("scene captioner", model, valid or ["(none: "
                             "train one with python -m engine train-scene-captioner)"]))
    return load_model(model).eval()


#: The registry name of the learned change captioner (DUDA, trained on the scene world).
DUDA = "duda"


def change_captioner_models() -> list[str]:
    """Registered learned change captioners (empty when ``assets/scenes/duda.safetensors`` is
    missing)."""
    return list_models(task="change-captioner")


@functools.lru_cache(maxsize=4)
def change_captioner(model: str | None = None) -> Any:
    """The process-wide :class:`engine.scenes.duda.DudaCaptioner` of ``model`` (default
    :data:`DUDA`), read-only.

    Raises:
        UserInputError: not a registered change captioner (the message lists the valid ones).
    """
    from engine.scenes.duda import DudaCaptioner
    model = model or DUDA
    valid = change_captioner_models()
    if model not in valid:
        raise UserInputError(unknown_name_message("change captioner", model, valid or ["(none: "
                             "train one with python -m engine train-duda)"]))
    return DudaCaptioner(load_model(model))


@functools.lru_cache(maxsize=4)
def scene_caption_pipeline(model: str | None = None) -> Any:
    """The process-wide :class:`engine.scenes.demo.SceneCaptionPipeline` on scene captioner
    ``model`` (default :data:`SCENE_CAPTIONER`) with the scene parser, read-only.

    Raises:
        UserInputError: not a registered scene captioner (the message lists the valid ones).
    """
    from engine.scenes.demo import SceneCaptionPipeline
    model = model or SCENE_CAPTIONER
    return SceneCaptionPipeline(scene_captioner(model), scene_parser(), name=model)


@functools.lru_cache(maxsize=4)
def scene_change_pipeline(model: str | None = None) -> Any:
    """The process-wide :class:`engine.scenes.demo.SceneChangePipeline` on change captioner
    ``model`` (default :data:`DUDA`), read-only.

    Raises:
        UserInputError: not a registered change captioner (the message lists the valid ones).
    """
    from engine.scenes.demo import SceneChangePipeline
    model = model or DUDA
    return SceneChangePipeline(change_captioner(model), name=model)


#: The registry name of the scene world's text-to-image generator.
SCENE_GENERATOR = "scene-generator"


def _generate_models() -> list[str]:
    """Registered text-to-image generators (empty when
    ``assets/generation/scene_generator.safetensors`` is missing)."""
    return list_models(task="generation")


def _build_generate(model: str):
    from engine.generation.pipeline import GeneratePipeline
    return GeneratePipeline(load_model(model), name=model)


def embedded_encoders() -> tuple[Any, Any]:
    """The process-wide frozen (EfficientNet-Lite0, MiniLM) pair that the scene composers and
    the clip-art alignment are trained on (for the command line's data builders)."""
    return load_model(EMBEDDED_BACKBONE), load_model(EMBEDDED_TEXT)


@functools.lru_cache(maxsize=1)
def clipart_text_search() -> Any:
    """The process-wide :class:`engine.retrieval.clipart.ClipartTextSearch` (LiT projections
    over the held-out clip-art drawings; MiniLM reads the text), read-only.

    Raises:
        FileNotFoundError: the projections or the drawings are not in assets/retrieval.
    """
    from engine.retrieval.clipart import ClipartTextSearch, load_projections
    return ClipartTextSearch(load_projections(), load_model(EMBEDDED_TEXT))


#: The default composer of the Retrieve tab's "Scenes" source.
SCENE_CIR = "scene-tirg"


def scene_cir_models() -> list[str]:
    """Registered scene composers, the default first (empty when none is in assets/)."""
    names = list_models(task="scene-cir")
    return sorted(names, key=lambda n: n != SCENE_CIR)


@functools.lru_cache(maxsize=4)
def scene_retrieval(model: str | None = None) -> Any:
    """The process-wide :class:`engine.retrieval.scene_search.SceneRetrievalPipeline` of a
    scene composer (default :data:`SCENE_CIR`), read-only.

    Raises:
        UserInputError: not a registered scene composer (the message lists the valid ones).
    """
    from engine.retrieval.scene_search import SceneGallery, SceneRetrievalPipeline
    model = model or SCENE_CIR
    valid = scene_cir_models()
    if model not in valid:
        raise UserInputError(unknown_name_message("scene composer", model, valid or [
            "(none: train one with python -m engine train-scene-cir)"]))
    composer = load_model(model)
    text = load_model(EMBEDDED_TEXT) if composer.config.text_encoder == "minilm" else None
    return SceneRetrievalPipeline(composer, SceneGallery.load(), load_model(EMBEDDED_BACKBONE),
                                  text, name=model)


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("caption", EMBEDDED_BACKBONE, _caption_models, _build_caption),
    Task("change", EMBEDDED_BACKBONE, _change_models, _build_change),
    Task("edit", EMBEDDED_BACKBONE, _edit_models, _build_edit),
    Task("retrieve", EMBEDDED_BACKBONE, _retrieve_models, _build_retrieve),
    Task("segment", EMBEDDED_BACKBONE, _segment_models, _build_segment),
    Task("fewshot", EMBEDDED_BACKBONE, _fewshot_models, _build_fewshot),
    Task("handwriting", DEFAULT_HANDWRITING, _handwriting_models, _build_handwriting),
    Task("generate", SCENE_GENERATOR, _generate_models, _build_generate),
)}

_PIPELINES: dict[tuple[str, str], Any] = {}
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_GUARD = threading.Lock()


def _task(task: str) -> Task:
    if task not in TASKS:
        raise ValueError(unknown_name_message("task", task, list(TASKS)))
    return TASKS[task]


def task_models(task: str) -> list[str]:
    """Model names ``task`` accepts, its embedded default first.

    Raises:
        ValueError: unknown task (a programming error, not a user's).
    """
    return _task(task).models()


def default_model(task: str) -> str:
    """The embedded model ``task`` uses by default and falls back to offline."""
    return _task(task).default


def check_model(task: str, model: str) -> str:
    """Return ``model`` if ``task`` accepts it.

    Raises:
        UserInputError: it does not; the message lists the valid names.
    """
    valid = task_models(task)
    if model not in valid:
        raise UserInputError(unknown_name_message(f"{task} model", model, valid))
    return model


def get_pipeline(task: str, model: str | None = None) -> Any:
    """The process-wide pipeline of ``task`` on ``model`` (default: the embedded one).

    Built on first use (loading its models) and shared read-only afterwards. Building one
    pipeline never waits for another (one lock per (task, model)).

    Raises:
        UserInputError: ``task`` does not accept ``model``.
        engine.models.HubUnavailableError: a hub model while the hub is unreachable.
    """
    spec = _task(task)
    model = check_model(task, model or spec.default)
    key = (task, model)
    pipe = _PIPELINES.get(key)
    if pipe is not None:
        return pipe
    with _GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        if key not in _PIPELINES:
            _PIPELINES[key] = spec.build(model)
        return _PIPELINES[key]


def preload(tasks: tuple[str, ...] = ("caption",)) -> threading.Thread:
    """Build the embedded pipelines of ``tasks`` and run each once on a small blank image, in
    a daemon thread, so a server's first request does not wait for them (the app starts this
    before it launches: the models load while the web server starts).

    Returns:
        The started thread (join it to wait).
    """
    def work() -> None:
        for task in tasks:
            try:
                pipe = get_pipeline(task)
                warm = getattr(pipe, "warm_up", None)
                if warm is not None:
                    warm()
            except Exception:  # noqa: BLE001  (a bug: the first request will build it again)
                logging.getLogger(__name__).exception("preloading %s failed", task)

    thread = threading.Thread(target=work, name="preload", daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class Choice:
    """A pipeline ready to run: the model it runs on and, after a fallback, why (one sentence)."""

    pipeline: Any
    model: str
    note: str | None = None


def choose_pipeline(task: str, model: str | None = None) -> Choice:
    """Like :func:`get_pipeline`, but a hub model the server cannot reach falls back to the
    task's embedded default, with :data:`engine.models.OFFLINE_MESSAGE` as the note.

    Raises:
        UserInputError: ``task`` does not accept ``model``.
    """
    spec = _task(task)
    model = check_model(task, model or spec.default)
    if model != spec.default and get_spec(model).source == "hub":
        if not hub_available():
            return Choice(get_pipeline(task, spec.default), spec.default, OFFLINE_MESSAGE)
        try:
            return Choice(get_pipeline(task, model), model)
        except HubUnavailableError:
            return Choice(get_pipeline(task, spec.default), spec.default, OFFLINE_MESSAGE)
    return Choice(get_pipeline(task, model), model)


#: Registry task of a diffusion model -> its editor kind (engine.models.diffusion.KINDS).
_DIFFUSION_KINDS = {"edit": "instruct", "inpaint": "inpaint"}
#: What a default hub diffusion call should take at most on this device, seconds (issue 16:
#: a student waits about this long before the result).
WAIT_BUDGET_S = 30.0


def sampling_defaults(model: str, steps: int | None = None) -> dict | None:
    """Device-dependent defaults of a hub diffusion model, known before it is loaded.

    Args:
        model: a registered model name.
        steps: the steps to estimate (default: the default steps).

    Returns:
        None for a model that does not sample; else ``{"device": "cpu float32", "work_side":
        256, "steps": n, "estimate": engine.latency.Estimate | None}``: ``steps`` is the most
        (4..20) that fit in :data:`WAIT_BUDGET_S` on this device for a square image (20 when
        nothing is measured), ``estimate`` the expected time of ``steps`` (or of the default
        steps) on a square image, None when nothing is measured on this kind of device.
    """
    from engine.device import placement
    from engine.latency import CLOCK
    from engine.models.diffusion import work_side_for
    spec = get_spec(model)
    kind = _DIFFUSION_KINDS.get(spec.task)
    if kind is None or spec.source != "hub":
        return None
    where = placement(spec.task, spec.source)
    side = work_side_for(where.device)
    default = CLOCK.steps_within(kind, where.device.type, side, WAIT_BUDGET_S) or 20
    return {"device": where.label(), "work_side": side, "steps": default,
            "estimate": CLOCK.estimate(kind, where.device.type, side, (side, side),
                                       int(steps or default))}


def hub_repo(name: str) -> str | None:
    """The Hugging Face Hub repository id of registered model ``name`` (from its ``weights``,
    "hub: <repo id>"), or None for an embedded model."""
    spec = get_spec(name)
    if spec.source != "hub" or not spec.weights.startswith("hub: "):
        return None
    return spec.weights[len("hub: "):].strip()


def offered_hub_models() -> dict[str, str]:
    """Every hub model some task offers, {registry name: hub repo id}, in task order (what a
    Space preloads at build time: README's ``preload_from_hub``)."""
    out: dict[str, str] = {}
    for task in TASKS:
        for name in task_models(task):
            repo = hub_repo(name)
            if repo is not None:
                out.setdefault(name, repo)
    return out


def model_info(name: str) -> ModelSpec:
    """The registry entry of ``name`` (its task, source, weights, licence, preprocessing).

    Raises:
        UserInputError: unknown name (lists the valid ones).
    """
    try:
        return get_spec(name)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None


__all__ = ["Choice", "TASKS", "check_model", "hub_repo", "offered_hub_models",
           "sampling_defaults", "imagenet_class_text", "choose_pipeline", "default_model", "get_pipeline",
           "handwriting_models", "handwriting_pipeline", "list_models", "model_info", "preload",
           "scene_captioner", "scene_captioner_models", "scene_parser", "scene_parser_models",
           "task_models", "SCENE_CAPTIONER", "DUDA", "change_captioner", "change_captioner_models",
           "scene_caption_pipeline", "scene_change_pipeline", "SCENE_GENERATOR"]
