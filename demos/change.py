"""Describe-the-changes tab: one sentence per change between a before and an after image, the
difference heatmap over both images with numbered boxes; BLIP describes regions in hub mode."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from demos.common import (UploadImage, handle_errors, notes_markdown, papers_panel,
                          user_image)
from engine.change import detection
from engine.change.pipeline import HEATMAP_CMAP
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
    missing = [key for key in ("before", "after") if key not in images]
    if len(missing) == 2:
        raise gr.Error("Please upload the before and after images.")
    if missing:
        raise gr.Error(f"Please upload the {missing[0]} image too (both images are needed).")
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


#: What the outputs show after a failed request (cleared, so no stale result sits beside the
#: error): sentences, two overlays, JSON, details.
CLEARED = ("*No result: the last request was refused or failed (its message says why).*",
           None, None, None, "")


def cleared_outputs():
    """The outputs after an error: the previous result is removed, not left beside it."""
    return CLEARED


def colour_scale_html(stops: int = 11) -> str:
    """The heatmaps' colour scale as an HTML bar: the colormap over 0..1 with the threshold.

    The difference (unitless, 0..1) is the mean of the CIELAB colour difference / 30 and the
    backbone features' cosine distance / 0.6, each capped at 1 (``engine.change.detection``);
    regions above the threshold are the numbered changes.
    """
    from matplotlib import colormaps
    cmap = colormaps[HEATMAP_CMAP]
    colours = ", ".join(
        "rgb({}, {}, {}) {:.0f}%".format(*(round(255 * c) for c in cmap(k / (stops - 1))[:3]),
                                         100 * k / (stops - 1)) for k in range(stops))
    t = detection.THRESHOLD
    return (
        '<div class="change-scale" style="max-width: 640px; font-size: 0.85em">'
        f'<div style="height: 14px; border-radius: 3px; background: linear-gradient(to right, '
        f'{colours})"></div>'
        '<div style="position: relative; height: 1.4em">'
        '<span style="position: absolute; left: 0">0 same</span>'
        f'<span style="position: absolute; left: {100 * t:.0f}%; transform: translateX(-50%)">'
        f'&#9650; {t:g} changed</span>'
        '<span style="position: absolute; right: 0">1 very different</span></div>'
        '<div>Colour scale of both heatmaps (drawn at half opacity over the photos): the '
        f'difference, 0 to 1 (no unit), is the mean of the colour difference (CIELAB &Delta;E '
        f'/ {detection.DELTA_E_SCALE:g}) and of the network features\' cosine distance '
        f'(/ {detection.FEATURE_SCALE:g}), each capped at 1. Regions above {t:g} are the '
        'numbered changes.</div></div>')


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
        gr.HTML(colour_scale_html())
        with gr.Accordion("Changes as JSON", open=False):
            changes = gr.JSON()
        details = gr.Markdown()
        gr.Examples(example_pairs(), inputs=[before, after],
                    label="Bundled pairs (one known change each, or none)")
        outputs = [sentences, before_map, after_map, changes, details]
        # on an error, the previous result goes (it would sit beside the message as if current);
        # .failure runs only then, so a successful request is one event, no chained spinner
        button.click(describe_changes, [before, after, model], outputs, api_name="change",
                     concurrency_id="cpu").failure(cleared_outputs, None, outputs,
                                                   api_name=False, queue=False)
        papers_panel("change")
