"""Describe-the-changes tab: one sentence per change between a before and an after image, the
difference heatmap over both images with numbered boxes; BLIP describes regions in hub mode."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from demos.common import UploadImage, handle_errors, notes_markdown, user_image
from engine.factory import choose_pipeline, default_model, task_models

CHANGES = Path(__file__).resolve().parent.parent / "assets" / "examples" / "changes"


def example_pairs() -> list[list[str]]:
    """[before, after] paths of the bundled pairs (assets/examples/changes)."""
    return [[str(p), str(p.with_name(p.name.replace("_before", "_after")))]
            for p in sorted(CHANGES.glob("*_before.jpg"))]


@handle_errors
def describe_changes(before, after, model: str = default_model("change")):
    """Describe the changes from an uploaded before image to an uploaded after image.

    Args:
        before, after: uploaded file paths (decoded by engine.inputs.images; both required).
        model: the embedded namer or a hub captioner (BLIP).

    Returns:
        (numbered sentences markdown, before overlay, after overlay, changes JSON, details
        markdown).
    """
    # decode what was given first, so a bad file is named even when the other slot is empty
    images, notes = {}, []
    for key, path, what in (("before", before, "the before image"),
                            ("after", after, "the after image")):
        if path is not None:
            images[key], n = user_image(path, what)
            notes += n
    for key in ("before", "after"):
        if key not in images:
            raise gr.Error(f"Please upload the {key} image too (both images are needed).")
    choice = choose_pipeline("change", model)
    if choice.note:
        notes.append(choice.note)
    result = choice.pipeline(images["before"], images["after"])
    if result.changes:
        lines = [f"{k}. **{c.type}**: {c.sentence}" for k, c in enumerate(result.changes, 1)]
    else:
        lines = ["**No change** (after aligning the images and normalising their brightness)."]
    details = [f"**Model:** `{result.model}` · {result.ms:.0f} ms"] + (
        [notes_markdown(notes + result.notes)] if notes or result.notes else [])
    return ("\n".join(lines), result.before_overlay, result.after_overlay, result.to_json(),
            "\n\n".join(details))


def build() -> None:
    """Add the Describe-the-changes tab to the current Blocks."""
    with gr.Tab("Describe the changes", id="change"):
        gr.Markdown(
            "Upload a **before** and an **after** photo of the same scene. The pair is aligned "
            "first (phase correlation for a small camera shift, or a keypoint homography for a small "
            "rotation or zoom; a gain/offset fit for lighting), "
            "then compared in pixels and in the network's feature maps; each changed region is "
            "named before and after (ImageNet classes, or BLIP captions in hub mode) and gets "
            "one sentence: added, removed, moved, replaced or recoloured. Boxes are numbered "
            "like the sentences. Images of different sizes: the after image is resized to the "
            "before image's size.")
        with gr.Row():
            before = UploadImage(label="Before", sources=["upload", "clipboard"], height=300)
            after = UploadImage(label="After", sources=["upload", "clipboard"], height=300)
        with gr.Row():
            model = gr.Dropdown(task_models("change"), value=default_model("change"),
                                label="Model that names the regions")
            button = gr.Button("Describe the changes", variant="primary")
        sentences = gr.Markdown()
        with gr.Row():
            before_map = gr.Image(label="Difference over the before image", interactive=False,
                                  height=300)
            after_map = gr.Image(label="Difference over the after image (numbered boxes)",
                                 interactive=False, height=300)
        with gr.Accordion("Changes as JSON", open=False):
            changes = gr.JSON()
        details = gr.Markdown()
        gr.Examples(example_pairs(), inputs=[before, after],
                    label="Bundled pairs (one known change each, or none)")
        button.click(describe_changes, [before, after, model],
                     [sentences, before_map, after_map, changes, details], api_name="change",
                     concurrency_id="cpu")
