"""Handwriting panel of the Few-shot tab: draw labelled support symbols, draw a query, and see
what the models meta-trained on Omniglot answer (Prototypical, Matching, Relation, MAML, ...).

The drawn support set lives in the browser session's ``gr.State`` (an
:class:`engine.fewshot.support.SupportSet`, drawings in the order they were added); the panel
follows the Photos panel's add / load example / clear design. Symbol names are NFC-normalised
and checked against the models' limits when a drawing is added (a name differing from an
existing one only in case is refused then, not at classification time).

Two browser details shape the events:

* "Add drawing" returns a fresh blank canvas as one of its own outputs (no chained event: a
  chained reset left the canvas on a "processing" spinner and lost the next strokes);
* a click on an example query puts its index in a hidden number at once, in the browser (no
  server round trip that a quick "Classify drawing" could overtake), and "Classify drawing"
  classifies that example until the canvas changes: the canvas loads the example's image
  asynchronously, and a click right after the example used to classify the previous drawing.
"""
from __future__ import annotations

import re
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from demos.common import (ProbabilityLabel, UploadEditor, clear_outputs_js, escape_markdown,
                          handle_errors, label_value, notes_markdown, papers_panel,
                          user_image)
from engine.factory import choose_pipeline, default_model, task_models
from engine.fewshot.handwriting import DRAWING_LIMITS, DrawingEncoder
from engine.fewshot.omniglot import preprocess_drawing
from engine.fewshot.support import SupportSet, check_addition, read_support_folder
from engine.inputs.images import load_image
from engine.inputs.text import TextInputError, clean_text, normalize_name
from engine.viz import embedding_figure

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples" / "handwriting"
#: The bundled query drawings, in the order the example gallery shows them.
EXAMPLE_QUERIES = sorted((EXAMPLES / "query").glob("*.png"))
#: Side (pixels) drawings are kept at in the session state.
DRAWING_SIDE = 128
#: Side (pixels) of the drawing canvases.
CANVAS_SIDE = 280


def _blank() -> Image.Image:
    """A white canvas to draw on (the canvases' first value)."""
    return Image.new("RGB", (CANVAS_SIDE, CANVAS_SIDE), "white")




def _drawing(value, what: str) -> Image.Image:
    """The user's drawing (sketchpad composite, else its background upload) as RGB."""
    if value is None:
        raise gr.Error(f"Draw {what} first.")
    source = value.get("composite") or value.get("background") if isinstance(value, dict) \
        else value
    if source is None:
        raise gr.Error(f"Draw {what} first.")
    img, _ = user_image(source, what, max_side=512)
    try:
        preprocess_drawing(img)  # refuses a blank drawing now, not at classification time
    except ValueError as exc:
        raise gr.Error(f"{what[:1].upper()}{what[1:]}: {exc}") from None
    img.thumbnail((DRAWING_SIDE, DRAWING_SIDE), Image.Resampling.LANCZOS)
    return img


def _summary(support: SupportSet, notes: list[str] | None = None) -> str:
    if not support.n_images:
        text = "*No drawings yet: add at least one drawing of each of two symbols.*"
    else:
        text = "**Support set:** " + ", ".join(
            f"{escape_markdown(name)} ({n})" for name, n in zip(support.names, support.counts()))
    if notes:
        text += "\n\n" + notes_markdown([escape_markdown(n) for n in notes])
    return text


def _view(support: SupportSet, notes: list[str] | None = None):
    """(state, gallery, summary): what every support-set event returns."""
    return support, [(img, name) for img, name in support.items()], _summary(support, notes)


def _symbol_name(label: str | None) -> str:
    """The typed symbol name, cleaned and NFC-normalised (:func:`normalize_name`)."""
    try:
        return normalize_name(clean_text(label, field="symbol name", max_chars=40).text)
    except TextInputError:
        raise gr.Error("Type a name for this symbol first (e.g. 'A').") from None


@handle_errors
def add_drawing(drawings: SupportSet | None, label: str, sketch):
    """Add the sketchpad's drawing to the session's support set under ``label``.

    The name is checked first with the models' own limits (at most 20 symbols and 100
    drawings; a name equal to an existing one up to case, spaces or Unicode form is refused:
    "A" and "a" are two spellings the models would merge).

    Returns:
        (support, gallery, summary markdown, a fresh blank canvas).

    Raises:
        gr.Error: blank name, blank drawing, a duplicate spelling, too many symbols or drawings.
    """
    drawings = drawings or SupportSet()
    name = _symbol_name(label)
    target = check_addition(drawings, name, 1, DRAWING_LIMITS, merge_case=False)
    image = _drawing(sketch, f"a drawing of '{name}'")
    notes = [f"Drawing {drawings.n_images + 1} ({target!r}): {r}."
             for r in DrawingEncoder().remarks(image)]
    return (*_view(drawings.add(target, [image]), notes), _blank())


def clear_drawings(drawings: SupportSet | None = None):
    """Empty the session's drawn support set."""
    return _view(SupportSet())


@handle_errors
def load_example(drawings: SupportSet | None = None):
    """Support set of 3 held-out Omniglot symbols (Korean alphabet), 2 drawings each."""
    return _view(read_support_folder(EXAMPLES / "support"))


def pick_example(index: int | None):
    """An example query clicked: its drawing for the query canvas."""
    if index is None or not 0 <= int(index) < len(EXAMPLE_QUERIES):
        return gr.update()
    return str(EXAMPLE_QUERIES[int(index)])


@handle_errors
def maml_controls(model: str):
    """Show the MAML settings and loss plot only for models that adapt their weights."""
    adapt = choose_pipeline("handwriting", model).pipeline.adapts_weights
    return gr.update(visible=adapt), gr.update(visible=adapt)


@handle_errors
def classify(drawings: SupportSet | None, sketch, model: str, maml_steps: float,
             maml_step_size: float, example: float | None = None):
    """Classify the query drawing with the drawn support set.

    Args:
        drawings: the session's support set (gr.State).
        sketch: the query canvas's value.
        model: a handwriting model; maml_steps, maml_step_size: used by MAML models only.
        example: index (0-based) of a bundled example query to classify instead of the
            canvas: the one clicked last, until the canvas changed (None: the canvas). API
            callers may pass it to classify an example by number.

    Returns:
        ({label: p} or a tie, embedding plot, MAML support loss per step (shown for MAML
         models only), what the model saw (28x28 input, enlarged), markdown details).
    """
    if example is not None:
        if not 0 <= int(example) < len(EXAMPLE_QUERIES):
            raise gr.Error(f"There are {len(EXAMPLE_QUERIES)} example queries; example "
                           f"{example:g} does not exist.")
        query = load_image(EXAMPLE_QUERIES[int(example)]).image
    else:
        query = _drawing(sketch, "the query symbol")
    choice = choose_pipeline("handwriting", model)
    pipeline = choice.pipeline
    adapt = pipeline.adapts_weights  # the MAML sliders apply
    result = pipeline(drawings or SupportSet(), [query],
                      maml_steps=int(maml_steps) if adapt else None,
                      maml_step_size=float(maml_step_size) if adapt else None)
    pred = result.predictions[0]
    fig = embedding_figure(result.support_xy, result.support_labels, result.prototype_xy,
                           result.query_xy,
                           [-1 if pred.tied else result.class_names.index(pred.label)],
                           result.class_names,
                           title=f"Embedding space (PCA): {result.model}",
                           query_names=["query"])
    losses = pd.DataFrame({"step": list(range(len(result.inner_losses or []))),
                           "support loss": result.inner_losses or []})
    seen = ImageOps.expand(  # a white margin: the block's label never covers the drawing
        Image.fromarray(((1 - result.query_inputs[0]) * 255).astype(np.uint8)).resize(
            (112, 112), Image.Resampling.NEAREST), border=(8, 28, 8, 8), fill=255)
    details = f"**Model:** `{result.model}` ({result.method}) · {result.ms:.0f} ms"
    query_drawing = re.compile(r"\b([Qq]uery) image 1\b")  # the pipeline's name for it
    notes = [*result.notes, *[query_drawing.sub(r"\1 drawing", n) for n in pred.notes]]
    if result.inner_losses:
        notes.append("MAML support loss per adaptation step: "
                     + " → ".join(f"{v:.3f}" for v in result.inner_losses))
    if choice.note:
        notes.append(choice.note)
    if notes:
        details += "\n\n" + notes_markdown([escape_markdown(n) for n in notes])
    return (label_value(pred.probabilities, pred.tied), fig,
            gr.update(value=losses, visible=adapt), seen, details)


def build_panel() -> None:
    """Add the handwriting panel (inside the Few-shot tab)."""
    gr.Markdown(
        "Models **meta-trained on Omniglot** (handwritten characters of 5 alphabets; the "
        "examples come from alphabets they never saw). Draw a few labelled examples of each "
        "symbol, then a query. Drawings are processed like Omniglot: dark strokes on white "
        "(light strokes on a dark canvas are inverted), cropped to the ink, centred, 28x28.")
    drawings = gr.State(SupportSet(), time_to_live=3 * 3600)
    brush = dict(default_size=8, colors=["#000000"], color_mode="fixed")
    with gr.Row():
        with gr.Column():
            label = gr.Textbox(label="Symbol name", placeholder="e.g. A")
            sketch = UploadEditor(_blank(), label="Draw a support example", type="filepath",
                                  sources=["upload"], height=CANVAS_SIDE,
                                  canvas_size=(CANVAS_SIDE, CANVAS_SIDE),
                                  brush=gr.Brush(**brush))
            with gr.Row():
                add = gr.Button("Add drawing", variant="primary")
                example = gr.Button("Load example (3 symbols)")
                clear = gr.Button("Clear")
            summary = gr.Markdown(_summary(SupportSet()), label="summary", latex_delimiters=[])
            gallery = gr.Gallery(label="Support drawings", columns=5, height=180,
                                 object_fit="contain", fit_columns=False)
        with gr.Column():
            query = UploadEditor(_blank(), label="Draw the query", type="filepath",
                                 sources=["upload"], height=CANVAS_SIDE,
                                 canvas_size=(CANVAS_SIDE, CANVAS_SIDE), brush=gr.Brush(**brush))
            examples = gr.Dataset(components=[query], samples=[[str(p)] for p in EXAMPLE_QUERIES],
                                  label="Example queries", type="index")
            query_example = gr.Number(None, visible=False, precision=0,
                                      label="example query (0-based; empty: the canvas)")
            model = gr.Dropdown(task_models("handwriting"), value=default_model("handwriting"),
                                label="Meta-learned model")
            with gr.Row(visible=False) as maml_row:
                steps = gr.Slider(0, 20, value=2, step=1, label="MAML steps",
                                  info="adaptation steps on the support set (trained with 2)")
                step_size = gr.Number(0.4, label="MAML step size", minimum=0.001, maximum=10,
                                      info="trained with 0.4")
            run = gr.Button("Classify drawing", variant="primary")
            probs = ProbabilityLabel(label="Class probabilities")
            plot = gr.Plot(label="Embedding space", show_label=False)
            with gr.Row():
                losses = gr.LinePlot(x="step", y="support loss", label="MAML support loss",
                                     height=200, visible=False)
                seen = gr.Image(label="What the model saw (28x28)", height=180,
                                interactive=False)
            details = gr.Markdown(label="details", latex_delimiters=[])
    view = [drawings, gallery, summary]
    add.click(add_drawing, [drawings, label, sketch], [*view, sketch],
              api_name="handwriting_add", show_progress_on=[gallery, summary])
    example.click(load_example, [drawings], view, api_name="handwriting_load_example")
    clear.click(clear_drawings, [drawings], view, api_name="handwriting_clear")
    # the example's index is set in the browser at once; its drawing comes from the server
    examples.click(None, [examples], [query_example], js="(i) => i", api_name=False)
    examples.click(pick_example, [examples], [query], queue=False, show_progress="hidden",
                   api_name=False)
    for event in (query.input, query.upload, query.clear):  # the user changed the canvas
        event(None, None, [query_example], js="() => null", api_name=False)
    model.change(maml_controls, [model], [maml_row, losses], queue=False, api_name=False)
    outputs = [probs, plot, losses, seen, details]
    # the previous answer goes at once (in the browser), so an error is never shown beside it
    run.click(None, None, outputs, js=clear_outputs_js(outputs), api_name=False)
    run.click(classify, [drawings, query, model, steps, step_size, query_example], outputs,
              api_name="handwriting_classify", concurrency_id="cpu")
    papers_panel("handwriting")
