"""Handwriting panel of the Few-shot tab: draw labelled support symbols, draw a query, and see
what the models meta-trained on Omniglot answer (Prototypical, Matching, Relation, MAML, ...).

The drawn support set lives in the browser session's ``gr.State`` (an
:class:`engine.fewshot.support.SupportSet`, drawings in the order they were added); the panel
follows the Photos panel's add / load example / clear design.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from demos.common import UploadEditor, handle_errors, user_image
from engine.factory import choose_pipeline, default_model, task_models
from engine.fewshot.handwriting import DRAWING_LIMITS
from engine.fewshot.omniglot import preprocess_drawing
from engine.fewshot.support import SupportSet, read_support_folder
from engine.inputs.text import TextInputError, clean_text
from engine.viz import embedding_figure

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples" / "handwriting"
#: Side (pixels) drawings are kept at in the session state.
DRAWING_SIDE = 128


def _blank() -> Image.Image:
    """A white canvas to draw on."""
    return Image.new("RGB", (280, 280), "white")


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


def _summary(support: SupportSet) -> str:
    if not support.n_images:
        return "*No drawings yet: add at least one drawing of each of two symbols.*"
    return "**Support set:** " + ", ".join(
        f"{name} ({n})" for name, n in zip(support.names, support.counts()))


def _view(support: SupportSet):
    """(state, gallery, summary): what every support-set event returns."""
    return support, [(img, name) for img, name in support.items()], _summary(support)


@handle_errors
def add_drawing(drawings: SupportSet | None, label: str, sketch):
    """Add the sketchpad's drawing to the session's support set under ``label``."""
    drawings = drawings or SupportSet()
    try:
        name = clean_text(label, field="symbol name", max_chars=40).text
    except TextInputError:
        raise gr.Error("Type a name for this symbol first (e.g. 'A').") from None
    if drawings.n_images >= DRAWING_LIMITS.max_images:
        raise gr.Error(f"The support set already has {drawings.n_images} drawings (the limit).")
    return _view(drawings.add(name, [_drawing(sketch, f"a drawing of '{name}'")]))


def clear_drawings(drawings: SupportSet | None = None):
    """Empty the session's drawn support set."""
    return _view(SupportSet())


@handle_errors
def load_example(drawings: SupportSet | None = None):
    """Support set of 3 held-out Omniglot symbols (Korean alphabet), 2 drawings each."""
    return _view(read_support_folder(EXAMPLES / "support"))


@handle_errors
def classify(drawings: SupportSet | None, sketch, model: str, maml_steps: float,
             maml_step_size: float):
    """Classify the query drawing with the drawn support set.

    Returns:
        ({label: p}, embedding plot, MAML support loss per step (DataFrame), what the model saw
         (28x28 image, enlarged), markdown details).
    """
    query = _drawing(sketch, "the query symbol")
    choice = choose_pipeline("handwriting", model)
    pipeline = choice.pipeline
    adapt = pipeline.adapts_weights  # the MAML sliders apply
    result = pipeline(drawings or SupportSet(), [query],
                      maml_steps=int(maml_steps) if adapt else None,
                      maml_step_size=float(maml_step_size) if adapt else None)
    pred = result.predictions[0]
    fig = embedding_figure(result.support_xy, result.support_labels, result.prototype_xy,
                           result.query_xy, [result.class_names.index(pred.label)],
                           result.class_names, title=f"{result.model}: embedding space (PCA)")
    losses = pd.DataFrame({"step": list(range(len(result.inner_losses or []))),
                           "support loss": result.inner_losses or []})
    seen = Image.fromarray(((1 - result.query_inputs[0]) * 255).astype(np.uint8)).resize(
        (112, 112), Image.Resampling.NEAREST)
    notes = [f"**Model:** `{result.model}` ({result.method}) · {result.ms:.0f} ms"]
    if result.inner_losses:
        notes.append("MAML support loss per adaptation step: "
                     + " → ".join(f"{v:.3f}" for v in result.inner_losses))
    if choice.note:
        notes.append(choice.note)
    return pred.probabilities, fig, losses, seen, "\n\n".join(notes)


def build_panel() -> None:
    """Add the handwriting panel (inside the Few-shot tab)."""
    gr.Markdown(
        "Models **meta-trained on Omniglot** (handwritten characters of 5 alphabets; the "
        "examples come from alphabets they never saw). Draw a few labelled examples of each "
        "symbol, then a query. Drawings are processed like Omniglot: dark strokes on white, "
        "cropped to the ink, centred, 28x28.")
    drawings = gr.State(SupportSet(), time_to_live=3 * 3600)
    with gr.Row():
        with gr.Column():
            label = gr.Textbox(label="Symbol name", placeholder="e.g. A")
            sketch = UploadEditor(_blank(), label="Draw a support example", type="filepath",
                                  sources=["upload"], height=280, canvas_size=(280, 280),
                                  brush=gr.Brush(default_size=8, colors=["#000000"],
                                                 color_mode="fixed"))
            with gr.Row():
                add = gr.Button("Add drawing", variant="primary")
                example = gr.Button("Load example (3 symbols)")
                clear = gr.Button("Clear")
            summary = gr.Markdown(_summary(SupportSet()), label="summary")
            gallery = gr.Gallery(label="Support drawings", columns=8, height=180)
        with gr.Column():
            query = UploadEditor(_blank(), label="Draw the query", type="filepath",
                                 sources=["upload"], height=280, canvas_size=(280, 280),
                                 brush=gr.Brush(default_size=8, colors=["#000000"],
                                                color_mode="fixed"))
            with gr.Row():
                model = gr.Dropdown(task_models("handwriting"),
                                    value=default_model("handwriting"),
                                    label="Meta-learned model")
                steps = gr.Slider(0, 20, value=2, step=1, label="MAML steps (MAML models)",
                                  info="trained with 2 steps of size 0.4")
                step_size = gr.Number(0.4, label="MAML step size", minimum=0.001, maximum=10)
            run = gr.Button("Classify drawing", variant="primary")
            probs = gr.Label(label="Class probabilities")
            plot = gr.Plot(label="Embedding space")
            with gr.Row():
                losses = gr.LinePlot(x="step", y="support loss", label="MAML support loss",
                                     height=200)
                seen = gr.Image(label="What the model saw (28x28)", height=140,
                                interactive=False)
            details = gr.Markdown(label="details")
    gr.Examples([[str(p)] for p in sorted((EXAMPLES / "query").glob("*.png"))], inputs=[query],
                label="Example queries")
    view = [drawings, gallery, summary]
    # the canvas is cleared only after a successful add: were it an output of add_drawing, an
    # error would cover it with Gradio's error overlay and swallow the next strokes
    add.click(add_drawing, [drawings, label, sketch], view, api_name="handwriting_add").success(
        _blank, None, sketch, api_name=False)
    example.click(load_example, [drawings], view, api_name="handwriting_load_example")
    clear.click(clear_drawings, [drawings], view, api_name="handwriting_clear")
    run.click(classify, [drawings, query, model, steps, step_size],
              [probs, plot, losses, seen, details], api_name="handwriting_classify",
              concurrency_id="cpu")
