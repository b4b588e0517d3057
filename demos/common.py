"""What every tab shares: the upload component, user-facing errors, and image loading."""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from PIL import Image

from engine.errors import UserInputError
from engine.inputs.images import ImageInputError, load_image
from engine.models import OFFLINE_MESSAGE, HubUnavailableError

log = logging.getLogger("demo")

def _atomic_save_pil_to_cache(img: Image.Image, cache_dir: str, name: str = "image",
                              format: str = "webp") -> str:
    """Gradio's ``save_pil_to_cache``, but written under a temporary name and renamed.

    Gradio 6.31 writes the content-addressed file in place, so two sessions producing the same
    image (e.g. the same example gallery) truncate it while a third is downloading it; the load
    test saw "received 0 bytes, expected 14028". A file that exists already is reused.
    """
    import os
    import tempfile

    from gradio import processing_utils as pu
    data = pu.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / pu.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    if not path.exists():
        fd, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(staging, path)
    else:  # handed out again: renew its age so delete_cache does not remove it too early
        try:
            os.utime(path)
        except OSError:
            pass
    return str(path)


def install_gradio_patches() -> None:
    """Make Gradio write its cached output images atomically (see
    :func:`_atomic_save_pil_to_cache`). Called once by ``app.build_app``; idempotent."""
    from gradio import processing_utils
    processing_utils.save_pil_to_cache = _atomic_save_pil_to_cache

#: Long side (pixels) of images kept in a session's state (support sets, galleries).
STATE_IMAGE_SIDE = 384


class UploadImage(gr.Image):
    """``gr.Image`` that hands the handler the uploaded file's path *without decoding it*.

    Gradio's own preprocessing opens the upload with Pillow and trusts its file name; here the
    bytes go untouched to :func:`engine.inputs.images.load_image`, the one place uploads are decoded
    and checked, so every bad file gets the same clear message in every tab.
    """

    is_template = True  # rendered by the frontend's ordinary Image component
    # No __init__ override: Gradio serialises a component's props from its __init__ signature.

    def preprocess(self, payload):  # noqa: D102 (see class docstring)
        if payload is None:
            return None
        if payload.path is None or (payload.url and payload.url.startswith("data:")):
            from gradio import image_utils  # a pasted/webcam data URL: written to a file
            return image_utils.preprocess_image(payload, cache_dir=self.GRADIO_CACHE,
                                                format=self.format, image_mode=None,
                                                type="filepath")
        return payload.path


class UploadFiles(gr.File):
    """``gr.File`` that hands the handler the uploaded paths without touching them.

    Gradio's own ``File.preprocess`` (type "filepath") creates an empty temporary file per
    upload per request that nothing ever deletes (a soak test showed the cache folder growing
    with them); it also judges types by file name. Here the paths go straight to the engine,
    which decodes and checks every file.
    """

    is_template = True  # rendered by the frontend's ordinary File component

    def preprocess(self, payload):  # noqa: D102 (see class docstring)
        if payload is None:
            return None
        items = getattr(payload, "root", None)
        if items is not None:  # file_count="multiple"
            return [f.path for f in items]
        return payload.path


class UploadEditor(gr.ImageEditor):
    """``gr.ImageEditor`` (sketchpad / mask painter) that hands over its images *undecoded*.

    The handler receives ``{"background": src, "layers": [src, ...], "composite": src}`` where
    each ``src`` is a file path, raw bytes or None; decode them with :func:`user_image` /
    :func:`engine.inputs.images.load_mask`, which check every file the same way as uploads.
    """

    is_template = True  # rendered by the frontend's ordinary ImageEditor component

    def preprocess(self, payload):  # noqa: D102 (see class docstring)
        if payload is None:
            return None
        data = payload
        if getattr(payload, "id", None) is not None:
            data = self.blob_storage.get(payload.id)
            if data is None:
                return None

        def raw(item):
            if item is None:
                return None
            if isinstance(item, (bytes, bytearray, memoryview)):
                return bytes(item)
            return getattr(item, "path", None)

        return {"background": raw(data.background),
                "layers": [raw(x) for x in (data.layers or []) if x is not None],
                "composite": raw(data.composite)}


def file_path(item: Any) -> str:
    """Path of an uploaded file as Gradio hands it over (str, dict or FileData-like)."""
    if isinstance(item, (str, bytes)):
        return item
    if isinstance(item, dict):
        return item.get("path") or item.get("name")
    return getattr(item, "path", None) or getattr(item, "name")


def upload_name(item: Any) -> str | None:
    """The file name of an upload (None for a drawing or pasted bytes)."""
    if item is None:
        return None
    local = file_path(item)
    return Path(local).name if isinstance(local, str) else None


def user_image(path: Any, what: str, max_side: int | None = 1024) -> tuple[Image.Image, list[str]]:
    """Decode one upload through the engine's input rules.

    Args:
        path: the upload (path or Gradio file object); None means nothing was uploaded.
        what: what the image is, for messages ("the image", "support image 3 of 'cat'").
        max_side: long side to downscale to.

    Returns:
        (RGB image, notes for the user).

    Raises:
        gr.Error: nothing uploaded, or the file is refused (the message says why).
    """
    if path is None:
        raise gr.Error(f"Please upload {what} first.")
    local = file_path(path)
    name = Path(local).name if isinstance(local, str) else "drawing"
    try:
        loaded = load_image(local, name=name, max_side=max_side)
    except ImageInputError as exc:
        raise gr.Error(f"{what[:1].upper()}{what[1:]}: {exc}") from None
    return loaded.image, list(loaded.notes)


#: What the user sees when the server fails on its own (the traceback goes to the log).
INTERNAL_ERROR = ("Internal error on the server (it has been logged); this is not a problem with "
                  "your input. Please try again or try another input.")


def handle_errors(fn: Callable) -> Callable:
    """Show user mistakes as their one-line message; log anything else and say so briefly.

    * ``gr.Error`` raised by the handler, and ``engine.errors.UserInputError`` (bad image, text,
      support set, option) -> the message, logged as one INFO line without a traceback;
    * hub unreachable -> the one-sentence offline message;
    * anything else (a bug) -> :data:`INTERNAL_ERROR`, the traceback logged once.
    """
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:  # a user's mistake: one log line, not a traceback
            log.info("refused input in %s: %s", fn.__name__, exc.message)
            exc.print_exception = False
            raise
        except HubUnavailableError:
            log.info("hub unreachable in %s", fn.__name__)
            raise gr.Error(OFFLINE_MESSAGE, print_exception=False) from None
        except UserInputError as exc:
            log.info("refused input in %s: %s", fn.__name__, exc)
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception:
            log.exception("internal error in %s", fn.__name__)  # the traceback, once
            raise gr.Error(INTERNAL_ERROR, print_exception=False) from None
    return wrapper


#: Label of the "reproduce" download beside a result (issue 16).
REPRODUCE_LABEL = "Reproduce: JSON for python -m engine reproduce"
#: CSS class of controls the presenter view hides (see :data:`PRESENTER_CSS`).
ADVANCED = "vl-advanced"
#: The presenter view (a projector): larger text, the advanced controls hidden. It applies
#: while ``<body>`` has the class ``vl-presenter`` (:func:`presenter_toggle`).
PRESENTER_CSS = """
body.vl-presenter .gradio-container { --body-text-size: 22px !important;
  --input-text-size: 22px !important; --prose-text-size: 22px !important;
  --block-label-text-size: 18px !important; --block-info-text-size: 18px !important;
  --block-title-text-size: 20px !important; --checkbox-label-text-size: 20px !important;
  --section-header-text-size: 22px !important; --button-large-text-size: 24px !important;
  --button-medium-text-size: 22px !important; --button-small-text-size: 20px !important; }
body.vl-presenter .gradio-container .prose { font-size: 22px !important; }
body.vl-presenter .vl-advanced { display: none !important; }
"""


#: Browser code run at page load: the presenter view is on when the URL has ``?presenter``.
PRESENTER_FROM_URL = "() => new URLSearchParams(window.location.search).has('presenter')"


def reproduce_file() -> gr.File:
    """The "reproduce" download beside a result (hidden in the presenter view)."""
    return gr.File(label=REPRODUCE_LABEL, interactive=False, height=60,
                   elem_classes=[ADVANCED])


def papers_panel(tab: str) -> gr.Accordion:
    """A closed "Papers" accordion: the tab's published figures beside this product's
    measured ones, rendered from docs/results.json (:mod:`engine.results`)."""
    from engine.results import markdown
    with gr.Accordion("Papers: published figures beside ours", open=False,
                      elem_classes=["vl-papers"]) as panel:
        gr.Markdown(markdown(tab), latex_delimiters=[])
    return panel


def presenter_toggle() -> gr.Checkbox:
    """The presenter-view checkbox (also switched on by ``?presenter`` in the URL): it puts
    the class ``vl-presenter`` on ``<body>`` in the browser, no server round trip."""
    box = gr.Checkbox(False, label="Presenter view (projector: larger text, fewer controls)",
                      elem_id="vl-presenter-toggle", container=False)
    box.change(None, box, None, api_name=False,
               js="(on) => { document.body.classList.toggle('vl-presenter', on); return []; }")
    return box


def recipe_file(recipe: dict | None) -> str | None:
    """Write a result's reproduce recipe (:mod:`engine.recipe`) to a JSON file for the
    download beside it; None (no file) without a recipe. Files are named by their content's
    hash in the system's temporary folder, so the same recipe is written once."""
    import hashlib
    import json
    import tempfile
    if not recipe:
        return None
    text = json.dumps(recipe, ensure_ascii=False, indent=1)
    folder = Path(tempfile.gettempdir()) / "vl-demo-recipes"
    folder.mkdir(exist_ok=True)
    path = folder / f"{recipe['command']}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    if not path.exists():
        path.write_text(text, encoding="utf-8")
    return str(path)


def notes_markdown(notes: list[str]) -> str:
    """Bullet list of notes for a gr.Markdown (empty string when none)."""
    return "\n".join(f"- {n}" for n in notes)


_MARKDOWN_SPECIAL = {c: f"&#{ord(c)};" for c in "\\`*_{}[]<>#|~$^&"}


def escape_markdown(text: object) -> str:
    """``text`` shown verbatim inside ``gr.Markdown``: every Markdown, HTML and math-text
    special character (``* _ ` $ ^ \\ < > | [ ] ...``) becomes an HTML entity, so a class named
    "Ba$$in", "<b>x</b>" or "_a_" reads as typed. An underscore between two letters or digits
    ("symbol_1") is kept: it cannot start or end emphasis (CommonMark). (Components showing
    user text also set ``latex_delimiters=[]``.)"""
    text = str(text)
    out = []
    for i, c in enumerate(text):
        inside_word = (c == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum()
                       and text[i + 1].isalnum())
        out.append(c if inside_word else _MARKDOWN_SPECIAL.get(c, c))
    return "".join(out)


class ProbabilityLabel(gr.Label):
    """``gr.Label`` that also takes a ready ``LabelData`` (a heading that is not a class: a tie).

    Gradio's own ``Label.postprocess`` always heads the box with the most probable class; with
    a tie that would be a confident answer the model did not give. Build values with
    :func:`label_value`.
    """

    is_template = True  # rendered by the frontend's ordinary Label component

    def postprocess(self, value):  # noqa: D102 (see class docstring)
        from gradio.components.label import LabelData
        if isinstance(value, LabelData):
            return value
        return super().postprocess(value)


#: The heading of a probability box when no class is preferred.
TIE_HEADING = "no class is preferred (tie)"


def label_value(probabilities: dict[str, float], tied: list[str] | None = None):
    """Value of a :class:`ProbabilityLabel`: the probabilities, headed by the top class, or by
    :data:`TIE_HEADING` when ``tied`` names two or more classes."""
    if not tied:
        return dict(probabilities)
    from gradio.components.label import LabelConfidence, LabelData
    ranked = sorted(probabilities.items(), key=lambda kv: -kv[1])
    return LabelData(label=TIE_HEADING, confidences=[
        LabelConfidence(label=k, confidence=v) for k, v in ranked])


def clear_outputs_js(components: list) -> str:
    """JavaScript for a browser-only event that empties ``components`` at once (before the
    server answers), so an error is never shown beside the previous result.

    Each component gets exactly what its own ``postprocess(None)`` would send (e.g. ``{}`` for
    a Label: a ``null`` Label keeps showing its old bars when the next value comes). Use as
    ``button.click(None, None, outputs, js=clear_outputs_js(outputs))`` registered before the
    handler's own ``click``; a browser-only event needs no server round trip and is never
    reordered after the handler's answer.
    """
    import json

    from gradio.data_classes import GradioModel, GradioRootModel

    values = []
    for component in components:
        value = component.postprocess(None)
        if isinstance(value, (GradioModel, GradioRootModel)):
            value = value.model_dump()
        values.append(value)
    return f"() => {json.dumps(values)}"
