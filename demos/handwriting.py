"""Handwriting panel of the Few-shot tab: draw labelled support symbols, draw a query, and see
what the models meta-trained on Omniglot answer (Prototypical, Matching, Relation, MAML, ...).

The drawn support set lives in the browser session's ``gr.State``.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from demos.common import UploadEditor, handle_errors, notes_markdown, user_image
from engine.fewshot.omniglot import preprocess_drawing
from engine.inputs.text import TextInputError, clean_text
from engine.viz import embedding_figure

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples" / "handwriting"
MAX_DRAWINGS = 100
#: Side (pixels) drawings are kept at in the session state.
DRAWING_SIDE = 128


def _blank() -> Image.Image:
    """A white canvas to draw on."""
    return Image.new("RGB", (280, 280), "white")


def _models() -> list[str]:
    from engine.fewshot.handwriting import handwriting_models
    return handwriting_models()


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


def _view(drawings: list[dict]):
    counts: dict[str, int] = {}
    for d in drawings:
        counts[d["label"]] = counts.get(d["label"], 0) + 1
    summary = ("*No drawings yet: add at least one drawing of each of two symbols.*"
               if not drawings else
               "**Support set:** " + ", ".join(f"{k} ({v})" for k, v in counts.items()))
    return drawings, [(d["image"], d["label"]) for d in drawings], summary


@handle_errors
def add_drawing(drawings: list[dict] | None, label: str, sketch):
    """Add the sketchpad's drawing to the session's support set under ``label``."""
    drawings = list(drawings or [])
    try:
        name = clean_text(label, field="symbol name", max_chars=40).text
    except TextInputError:
        raise gr.Error("Type a name for this symbol first (e.g. 'A').") from None
    if len(drawings) >= MAX_DRAWINGS:
        raise gr.Error(f"The support set already has {len(drawings)} drawings (the limit).")
    drawings.append({"label": name, "image": _drawing(sketch, f"a drawing of '{name}'")})
    return _view(drawings)


def clear_drawings(drawings: list[dict] | None = None):
    """Empty the session's drawn support set."""
    return _view([])


@handle_errors
def load_example(drawings: list[dict] | None = None):
    """Support set of 3 held-out Omniglot symbols (Korean alphabet), 2 drawings each."""
    out = []
    for folder in sorted(p for p in (EXAMPLES / "support").iterdir() if p.is_dir()):
        for f in sorted(folder.glob("*.png")):
            out.append({"label": folder.name, "image": user_image(str(f), "example")[0]})
    return _view(out)


@handle_errors
def classify(drawings: list[dict] | None, sketch, model: str, maml_steps: float,
             maml_step_size: float):
    """Classify the query drawing with the drawn support set.

    Returns:
        ({label: p}, embedding plot, MAML support loss per step (DataFrame), what the model saw
         (28x28 image, enlarged), markdown details).
    """
    from engine.fewshot.handwriting import classify_handwriting
    from engine.models import get_spec
    drawings = list(drawings or [])
    query = _drawing(sketch, "the query symbol")
    is_maml = get_spec(model).extra.get("method", "").startswith("maml") if model else False
    result = classify_handwriting([d["image"] for d in drawings], [d["label"] for d in drawings],
                                  [query], model,
                                  maml_steps=int(maml_steps) if is_maml else None,
                                  maml_step_size=float(maml_step_size) if is_maml else None)
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
    return pred.probabilities, fig, losses, seen, "\n\n".join(notes)


def build_panel() -> None:
    """Add the handwriting panel (inside the Few-shot tab)."""
    gr.Markdown(
        "Models **meta-trained on Omniglot** (handwritten characters of 5 alphabets; the "
        "examples come from alphabets they never saw). Draw a few labelled examples of each "
        "symbol, then a query. Drawings are processed like Omniglot: dark strokes on white, "
        "cropped to the ink, centred, 28x28.")
    drawings = gr.State([], time_to_live=3 * 3600)
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
            summary = gr.Markdown(_view([])[2], label="summary")
            gallery = gr.Gallery(label="Support drawings", columns=8, height=180)
        with gr.Column():
            query = UploadEditor(_blank(), label="Draw the query", type="filepath", sources=["upload"],
                                 height=280, canvas_size=(280, 280),
                                 brush=gr.Brush(default_size=8, colors=["#000000"],
                                                color_mode="fixed"))
            with gr.Row():
                model = gr.Dropdown(_models(), value=_models()[0], label="Meta-learned model")
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
