"""Caption tab: tags, a sentence built from them, the CAM of the top tag; BLIP in hub mode."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from demos.common import (UploadImage, handle_errors, notes_markdown, papers_panel,
                          recipe_file, reproduce_file, upload_name, user_image)
from engine.factory import choose_pipeline, default_model, task_models
from engine.recipe import caption_output, image_input, make_recipe

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
#: The embedded tagger's model name (the tab's default and the hub fallback).
EMBEDDED_MODEL = default_model("caption")


def _caption(image, model: str, decoding: str, seed: int, top_k: int):
    """(outputs of :func:`caption_image`, reproduce recipe)."""
    img, notes = user_image(image, "the image")
    choice = choose_pipeline("caption", model)
    if choice.note:
        notes.append(choice.note)
    result = choice.pipeline(img, top_k=int(top_k), decoding=decoding, seed=int(seed))
    details = [f"**Model:** `{result.model}` · **device:** {result.device} · {result.ms:.0f} ms",
               f"**Sentence from tags:** {result.tag_caption}",
               "**Tag groups:** " + "; ".join(f"{t.name} ({', '.join(t.members)})"
                                               for t in result.tags if len(t.members) > 1)]
    if not any(len(t.members) > 1 for t in result.tags):
        details.pop()
    notes += result.notes
    md = "\n\n".join(details + ([notes_markdown(notes)] if notes else []))
    label = {t.name: t.probability for t in result.tags}
    recipe = make_recipe("caption", [image_input("image", img, upload_name(image), 1024)],
                         result.model, int(seed), {"decoding": decoding, "top_k": int(top_k)},
                         caption_output(result), result.device)
    return (result.caption, label, result.heatmap, md), recipe


@handle_errors
def caption_with_recipe(image, model: str = EMBEDDED_MODEL, decoding: str = "beam",
                        seed: int = 0, top_k: int = 5):
    """:func:`caption_image`'s outputs and the result's reproduce recipe (for a gr.State)."""
    outputs, recipe = _caption(image, model, decoding, seed, top_k)
    return (*outputs, recipe)


@handle_errors
def caption_image(image, model: str = EMBEDDED_MODEL, decoding: str = "beam",
                  seed: int = 0, top_k: int = 5):
    """Caption one uploaded image.

    Args:
        image: uploaded file path (decoded by engine.inputs.images).
        model: a caption model name (embedded tagger or hub BLIP).
        decoding: "beam" or "nucleus" (BLIP only).
        seed: nucleus-sampling seed.
        top_k: number of tags (1..20).

    Returns:
        (caption, {tag: probability}, CAM overlay image, markdown details).
    """
    return _caption(image, model, decoding, seed, top_k)[0]


def hub_controls(model: str):
    """Show the decoding and seed controls only for a hub captioner (the embedded tagger has
    no decoding): updates for (decoding, seed)."""
    hub = model != EMBEDDED_MODEL
    return gr.update(visible=hub), gr.update(visible=hub)


def cleared():
    """Empty outputs, shown when a request fails, so no earlier result stays beside the
    error: (caption, tags, heatmap, details)."""
    return "", None, None, ""


def build() -> None:
    """Add the Caption tab to the current Blocks."""
    with gr.Tab("Caption", id="caption"):
        gr.Markdown(
            "Upload a photo. The offline model tags it with ImageNet's 1,000 classes (similar "
            "tags are grouped and their probabilities summed), writes a sentence from the tags "
            "(the VIVO/Oscar idea: tags name the objects), and shows where it looked for the "
            "top tag (class activation map). Choose **blip-base** for a learned caption when "
            "the model hub is reachable.")
        with gr.Row():
            with gr.Column():
                image = UploadImage(type="filepath", label="Image", sources=["upload", "webcam", "clipboard"],
                                    height=320)
                with gr.Row():
                    model = gr.Dropdown(task_models("caption"), value=EMBEDDED_MODEL,
                                        label="Model")
                    top_k = gr.Slider(1, 10, value=5, step=1, label="Tags")
                with gr.Row():  # hub captioners only (BLIP)
                    decoding = gr.Radio(["beam", "nucleus"], value="beam",
                                        label="Decoding (BLIP)", visible=False)
                    seed = gr.Number(0, precision=0, label="Seed (nucleus)", minimum=0,
                                     visible=False)
                button = gr.Button("Caption", variant="primary")
            with gr.Column():
                caption = gr.Textbox(label="Caption", interactive=False)
                tags = gr.Label(label="Tags (probability)", num_top_classes=10)
                heatmap = gr.Image(label="Where the model looked (top tag)", height=280,
                                   interactive=False)
                details = gr.Markdown(label="details")
                reproduce = reproduce_file()
        gr.Examples([[str(p)] for p in sorted(EXAMPLES.glob("*.jpg"))], inputs=[image],
                    label="Example photos")
        outputs = [caption, tags, heatmap, details]
        model.change(hub_controls, model, [decoding, seed], api_name=False, queue=False)
        recipe = gr.State(None)
        run = button.click(caption_with_recipe, [image, model, decoding, seed, top_k],
                           outputs + [recipe], api_name="caption", concurrency_id="cpu")
        run.failure(cleared, None, outputs, api_name=False, queue=False)
        run.failure(lambda: None, None, reproduce, api_name=False, queue=False)
        run.success(recipe_file, recipe, reproduce, api_name=False, queue=False)
        papers_panel("caption")
