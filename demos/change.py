"""Describe-the-changes tab: one sentence per change between a before and an after image, the
difference heatmap over both images with numbered boxes; BLIP describes regions in hub mode.
Its "Scenes" sub-tab: DUDA, the learned change captioner, on a rendered CLEVR-Change pair, with
its before and after attention maps and the pair's ground truth."""
from __future__ import annotations

import random
from pathlib import Path

import gradio as gr

from demos.common import (UploadImage, escape_markdown, handle_errors, notes_markdown,
                          papers_panel, user_image)
from engine.change import detection
from engine.change.pipeline import HEATMAP_CMAP
from engine.factory import choose_pipeline, default_model, scene_change_pipeline, task_models
from engine.scenes import demo as scenes

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


# -- Scenes: DUDA on CLEVR-Change pairs --------------------------------------------------------
def _change_details(result) -> str:
    verdict = "no change" if result.no_change else "a change"
    lines = [f"**DUDA:** {escape_markdown(result.caption)} ({verdict})"]
    if result.truth:
        lines.append(f"**Ground truth** ({escape_markdown(result.change_type)}): "
                     + escape_markdown(result.truth[0]) + (
                         "" if len(result.truth) == 1 else
                         " · also accepted: " + "; ".join(escape_markdown(t)
                                                          for t in result.truth[1:])))
    if result.dynamic_attention:
        lines.append("**Dynamic speaker** (per word, the weight of the before, difference and "
                     "after features):\n\n| word | before | difference | after |\n|---|---|---|---|\n"
                     + "\n".join(f"| {escape_markdown(d['word'])} | {d['before']:.2f} | "
                                 f"{d['difference']:.2f} | {d['after']:.2f} |"
                                 for d in result.dynamic_attention))
    lines.append(f"**Model:** `{result.model}` · {result.ms:.0f} ms. The after image's camera "
                 "and lights are moved in every pair (CLEVR-Change's distractors): a pair with "
                 "only that is \"no change\".")
    return "\n\n".join(lines)


@handle_errors
def scene_change(seed: float = 0, change_type: str = "random"):
    """Draw the CLEVR-Change pair of ``seed`` and ``change_type`` and describe it with DUDA.

    Args:
        seed: the pair's seed (a whole number, 0..2^31-1).
        change_type: "random", "color", "material", "add", "drop", "move" or "distractor".

    Returns:
        (before image, after image, before attention overlay, after attention overlay, details
        markdown, JSON).
    """
    pair, before, after = scenes.new_change_pair(seed, change_type)
    result = scene_change_pipeline()(before, after, pair)
    return (result.before, result.after, result.before_overlay, result.after_overlay,
            _change_details(result), {**result.to_json(), "seed": pair.seed})


def scene_change_cleared():
    """Outputs after a failed scene-pair request (nothing stale beside the message)."""
    return None, None, None, None, "", None


def build_scenes() -> None:
    """The Scenes sub-tab of the Describe-the-changes tab."""
    gr.Markdown(
        "**DUDA** (Dual Dynamic Attention, Park et al., ICCV 2019), trained on this project's "
        "CLEVR-Change pairs: two attention maps find the change in the before and in the after "
        "image, and a dynamic speaker chooses per word between the before, difference and after "
        "features. **New pair** draws a random pair of the chosen type; the ground truth is "
        "shown beside DUDA's sentence. Only this world: photos stay on the Photo pairs sub-tab.")
    with gr.Row():
        seed = gr.Number(0, precision=0, minimum=0, maximum=scenes.MAX_SEED, label="Pair seed")
        change_type = gr.Dropdown(list(scenes.CHANGE_CHOICES), value="random",
                                  label="Change type")
        new = gr.Button("New pair", variant="primary")
        again = gr.Button("Describe this seed")
    sentence = gr.Markdown(elem_id="scene-change-details")
    with gr.Row():
        before = gr.Image(label="Before (scene)", interactive=False, height=260)
        after = gr.Image(label="After (scene)", interactive=False, height=260)
    with gr.Row():
        before_map = gr.Image(label="DUDA's attention on the before image", interactive=False,
                              height=260)
        after_map = gr.Image(label="DUDA's attention on the after image", interactive=False,
                             height=260)
    with gr.Accordion("Answer as JSON", open=False):
        as_json = gr.JSON()
    outputs = [before, after, before_map, after_map, sentence, as_json]
    new.click(lambda: random.randrange(scenes.MAX_SEED), None, seed, api_name=False,
              queue=False).then(scene_change, [seed, change_type], outputs, api_name=False,
                                concurrency_id="cpu").failure(
        scene_change_cleared, None, outputs, api_name=False, queue=False)
    again.click(scene_change, [seed, change_type], outputs, api_name="scene_change",
                concurrency_id="cpu").failure(scene_change_cleared, None, outputs,
                                              api_name=False, queue=False)


def build() -> None:
    """Add the Describe-the-changes tab to the current Blocks."""
    with gr.Tab("Describe the changes", id="change"):
        with gr.Tabs():
            with gr.Tab("Photo pairs", id="change-photos"):
                build_photos()
            with gr.Tab("Scenes (DUDA)", id="change-scenes"):
                build_scenes()
        papers_panel("change")


def build_photos() -> None:
    """The photo pipeline of the Describe-the-changes tab."""
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
