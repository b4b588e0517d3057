"""Few-shot segmentation tab: paint the object on 1-5 support images, segment it in a query.

Nothing is kept between requests: the support images and painted masks come with every call
(no shared state). A support's mask is the union of its editor's painted layers
(:func:`engine.inputs.masks.painted_mask`); the pipeline comes from :mod:`engine.factory`.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from demos.common import (UploadEditor, UploadImage, handle_errors, notes_markdown,
                          papers_panel, user_image)
from engine.factory import choose_pipeline, default_model, task_models
from engine.inputs.images import ImageInputError
from engine.inputs.masks import painted_mask
from engine.segmentation.pipeline import MAX_SUPPORT

EXAMPLE = Path(__file__).resolve().parent.parent / "assets" / "examples" / "segment"


def support_pair(value, k: int) -> tuple[Image.Image, np.ndarray, list[str]] | None:
    """Decode support editor ``k`` (1-based): (image, mask, notes), or None if it is unused.

    A painted layer that is empty is refused (the message names the support); an editor value
    with no layer at all (an API call sending only the image) means the whole image is the
    object, and the notes say so.

    Raises:
        gr.Error: a bad image or layer file, or nothing painted.
    """
    if not isinstance(value, dict) or not (value.get("background") or value.get("composite")):
        return None
    img, notes = user_image(value.get("background") or value.get("composite"),
                            f"support image {k}")
    layers = [x for x in (value.get("layers") or []) if x is not None]
    if not layers:
        notes.append(f"Support image {k} came without a mask layer: the whole image is taken "
                     f"as the object.")
        return img, np.ones((img.height, img.width), bool), notes
    try:
        mask = painted_mask(layers, img.size, what=f"support {k} mask layer")
    except ImageInputError as exc:
        raise gr.Error(f"Support {k}: {exc}") from None
    if not mask.any():
        raise gr.Error(f"Support {k}: its mask is empty. Paint over the object on support "
                       f"image {k} (or clear that image).")
    return img, mask, notes


@handle_errors
def segment(s1, s2, s3, s4, s5, query, model: str = default_model("segment"),
            threshold: float = 0.5):
    """Segment the painted object in the query image.

    Args:
        s1..s5: support editor values ({"background", "layers", "composite"}; unused: None).
        query: query image upload.
        model: encoder name; threshold: foreground probability cut in (0, 1).

    Returns:
        (overlay image, similarity heatmap, area markdown; the markdown opens with "Probably not
        in this query" when the query probably does not contain the object).
    """
    support, notes = [], []
    for k, value in enumerate((s1, s2, s3, s4, s5), start=1):
        pair = support_pair(value, k)
        if pair:
            support.append(pair[:2])
            notes += pair[2]
    if not support:
        raise gr.Error("Upload at least one support image and paint the object on it.")
    image, qnotes = user_image(query, "the query image")
    choice = choose_pipeline("segment", model)
    notes += qnotes + ([choice.note] if choice.note else [])
    result = choice.pipeline(support, image, threshold=float(threshold))
    area = (f"**Predicted area:** {100 * result.foreground_fraction:.1f} % of the query "
            f"({result.foreground_pixels:,} of {result.mask.size:,} pixels, "
            f"{image.width}x{image.height})\n\n**Model:** `{result.model}` · {len(support)} "
            f"support image(s) · {result.ms:.0f} ms")
    if result.object_present is False:  # said first, so it is not missed under the numbers
        area = ("**Probably not in this query:** the painted object was not found with enough "
                "similarity; the red mask is only the closest match (see the note).\n\n" + area)
    notes += result.notes
    return result.overlay, result.heatmap, area + ("\n\n" + notes_markdown(notes) if notes else "")


#: What the outputs show after a failed request: the previous mask and heatmap are removed so
#: they do not sit beside the error as if they were its result.
CLEARED = (None, None, "*No result: the last request was refused or failed (its message says "
                       "why).*")


def cleared_outputs():
    """The outputs after an error (overlay, heatmap, area markdown)."""
    return CLEARED


def load_example():
    """The bundled example: support 1 with its mask as a painted layer, the query, a note.

    Every file is a committed asset (the layer is ``support_layer.png``, written by
    ``assets/make_segmentation_data.py``), so concurrent sessions only ever read files.
    """
    editor = {"background": str(EXAMPLE / "support.jpg"),
              "layers": [str(EXAMPLE / "support_layer.png")], "composite": None}
    note = ("**Example loaded:** support 1 is a horse drawing on a temple photo, its mask (the "
            "drawing's exact outline) comes with it as the painted layer (the editor may not "
            "draw a loaded layer; painting over it adds to it). The query shows the same horse "
            "elsewhere on the temple, smaller. Press **Segment**.")
    return (editor, *[None] * (MAX_SUPPORT - 1), str(EXAMPLE / "query.jpg"), note)


def build() -> None:
    """Add the Few-shot segmentation tab to the current Blocks."""
    with gr.Tab("Few-shot segmentation", id="segment"):
        gr.Markdown(
            "Upload one to five **support** images and paint the object on each; the object is "
            "then found in the **query**. Support features inside the painted mask are averaged "
            "into an object prototype, outside it into a background prototype (masked average "
            "pooling); every query position is labelled by cosine similarity to the two "
            "(PANet, ICCV 2019), refined with prototypes from the query's own confident areas.")
        with gr.Row():
            with gr.Column():
                editors = []
                with gr.Tabs():
                    for k in range(1, MAX_SUPPORT + 1):
                        with gr.Tab(f"Support {k}"):
                            editors.append(UploadEditor(
                                label=f"Support image {k}: upload, then paint the object",
                                type="filepath", sources=["upload", "clipboard"], format="png",
                                layers=False, height=320,
                                brush=gr.Brush(colors=["#ff0000"], color_mode="fixed",
                                               default_size=18)))
                query = UploadImage(label="Query image", height=260,
                                    sources=["upload", "clipboard"])
                with gr.Row():
                    model = gr.Dropdown(task_models("segment"), value=default_model("segment"),
                                        label="Encoder")
                    threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05,
                                          label="Object probability threshold")
                with gr.Row():
                    button = gr.Button("Segment", variant="primary")
                    example = gr.Button("Load the example (horse)")
            with gr.Column():
                overlay = gr.Image(label="Predicted mask on the query", interactive=False,
                                   height=300)
                heatmap = gr.Image(label="Similarity to the object prototype (blue: lowest in "
                                   "this query, red: highest)",
                                   interactive=False, height=300)
                area = gr.Markdown()
        outputs = [overlay, heatmap, area]
        # .failure runs only after an error: the stale result is cleared, a success is one event
        button.click(segment, [*editors, query, model, threshold], outputs,
                     api_name="segment", concurrency_id="cpu").failure(
            cleared_outputs, None, outputs, api_name=False, queue=False)
        example.click(load_example, None, [*editors, query, area],
                      api_name="segment_load_example")
        papers_panel("segment")
