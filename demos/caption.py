"""Caption tab: tags, a sentence built from them, the CAM of the top tag; BLIP in hub mode.
Its "Scenes" sub-tab: the learned scene captioner on a rendered scene (or an upload), the
caption as clickable words, each word's cross-attention map, the parser's tags, the truth."""
from __future__ import annotations

import random
from pathlib import Path

import gradio as gr

from demos.common import (UploadImage, escape_markdown, handle_errors, notes_markdown,
                          papers_panel, recipe_file, reproduce_file, upload_name, user_image)
from engine.factory import (choose_pipeline, default_model, scene_caption_pipeline,
                            task_models)
from engine.recipe import caption_output, image_input, make_recipe
from engine.scenes import demo as scenes

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


# -- Scenes: the learned scene captioner ---------------------------------------------------
#: Word categories shown as colours in the clickable caption (the rest stay plain).
_WORD_CATEGORY = {**{w: "shape" for w in ("cube", "sphere", "cylinder")},
                  **{w: "colour" for w in ("gray", "red", "blue", "green", "brown", "purple",
                                           "cyan", "yellow")},
                  **{w: "size" for w in ("small", "large")},
                  **{w: "material" for w in ("rubber", "metal")}}
WORD_COLOURS = {"shape": "#f4a261", "colour": "#90e0ef", "size": "#d8f3dc",
                "material": "#e9c46a", "selected": "#e63946"}


def word_chips(words, selected: int | None = None) -> list[tuple[str, str | None]]:
    """The caption as HighlightedText tokens: one per word (object words coloured by kind,
    word ``selected`` marked), a space after each so the words read as a sentence."""
    return [(w + " ", "selected" if k == selected else _WORD_CATEGORY.get(w))
            for k, w in enumerate(words)]


def _scene_details(result) -> str:
    lines = [f"**Model:** `{result.model}` ({result.decoding}) · {result.ms:.0f} ms · "
             f"{len(result.words)} words. Click a word to see where the decoder looked "
             "while writing it (its cross-attention over the 16x16 grid)."]
    if result.truth is not None:
        lines.append(f"**Ground truth:** {escape_markdown(result.truth)}")
    lines.append("**Scene parser's objects (tags), left to right:** " + (
        ", ".join(escape_markdown(t) for t in result.tags) or "none found"))
    against = "the scene" if result.truth is not None else "the parser's reading"
    if result.hallucinated:
        lines.append(f"**Hallucinated ({len(result.hallucinated)} of {result.mentions} object "
                     f"mentions name no object of {against}):** "
                     + ", ".join(escape_markdown(h) for h in result.hallucinated))
    else:
        lines.append(f"**Hallucination check:** all {result.mentions} object mentions name an "
                     f"object of {against}.")
    if result.notes:
        lines.append(notes_markdown(list(result.notes)))
    return "\n\n".join(lines)


#: The scene image's label before a word is clicked.
SCENE_IMAGE_LABEL = "The scene (click a word of the caption to see where the model looked)"


def _scene_outputs(result):
    return (gr.update(value=result.image, label=SCENE_IMAGE_LABEL), word_chips(result.words),
            _scene_details(result), result)


@handle_errors
def scene_caption(seed: float = 0, decoding: str = "greedy", sample_seed: float = 0):
    """Render the scene of ``seed`` and caption it with the learned scene captioner.

    Args:
        seed: the scene's seed (a whole number, 0..2^31-1).
        decoding: "greedy", "beam" (3 beams) or "nucleus" (top-p 0.9, seeded).
        sample_seed: the nucleus-sampling seed.

    Returns:
        (scene image, clickable caption words, details markdown, session state).
    """
    scene, image = scenes.new_scene(seed)
    result = scene_caption_pipeline()(image, scene=scene, decoding=decoding,
                                      seed=int(scenes.check_seed(sample_seed)))
    return _scene_outputs(result)


@handle_errors
def scene_caption_upload(image, decoding: str = "greedy", sample_seed: float = 0):
    """Caption an uploaded image with the learned scene captioner (a scene-world model: the
    result says so). Returns as :func:`scene_caption`."""
    img, notes = user_image(image, "the image")
    result = scene_caption_pipeline()(img, decoding=decoding, uploaded=True,
                                      seed=int(scenes.check_seed(sample_seed)))
    if notes:
        from dataclasses import replace
        result = replace(result, notes=tuple(notes) + result.notes)
    return _scene_outputs(result)


@handle_errors
def scene_attention(seed: float = 0, decoding: str = "greedy", sample_seed: float = 0,
                    word: float = 0):
    """The attention map of word ``word`` (0-based) of the caption of scene ``seed`` (for API
    clients; the browser uses the session's result). Returns (overlay image, the word)."""
    scene, image = scenes.new_scene(seed)
    result = scene_caption_pipeline()(image, scene=scene, decoding=decoding,
                                      seed=int(scenes.check_seed(sample_seed)))
    k = int(word)
    return result.overlay(k), result.words[k]


@handle_errors
def show_word(result, evt: gr.SelectData):
    """A word of the caption was clicked: its attention map over the scene, the word marked.
    Returns (overlay image with its label, chips)."""
    if result is None:
        raise gr.Error("Caption a scene first.")
    k = int(evt.index if not isinstance(evt.index, (list, tuple)) else evt.index[0])
    word = result.words[k] if 0 <= k < len(result.words) else "?"
    return (gr.update(value=result.overlay(k),
                      label=f"Where the model looked writing word {k + 1}, \"{word}\""),
            word_chips(result.words, k))


def random_seed() -> int:
    """A fresh scene seed (the "New scene" button)."""
    return random.randrange(scenes.MAX_SEED)


def scene_cleared():
    """Outputs after a failed scene request: (image, chips, details, state)."""
    return gr.update(value=None, label=SCENE_IMAGE_LABEL), None, "", None


def build_scenes() -> None:
    """The Scenes sub-tab of the Caption tab."""
    gr.Markdown(
        "A **learned captioner** trained on this project's rendered CLEVR-style scenes "
        "(a frozen scene-parser CNN reads a 16x16 feature grid, a small Transformer decoder "
        "writes the caption with cross-attention; docs/scenes.md). **New scene** draws a random "
        "scene; the ground truth and the scene parser's objects are shown beside the caption. "
        "**Click any word** of the caption to see where the model looked while writing it. "
        "It only knows this world: an uploaded photo is described in cubes and spheres.")
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Row():
                seed = gr.Number(0, precision=0, minimum=0, maximum=scenes.MAX_SEED,
                                 label="Scene seed")
                decoding = gr.Radio(list(scenes.DECODINGS), value="greedy", label="Decoding")
                sample_seed = gr.Number(0, precision=0, minimum=0, label="Sampling seed (nucleus)")
            with gr.Row():
                new = gr.Button("New scene", variant="primary")
                again = gr.Button("Caption this seed")
            with gr.Accordion("Or caption your own image", open=False):
                upload = UploadImage(type="filepath", label="Image for the scene captioner",
                                     sources=["upload", "clipboard"], height=220)
                upload_button = gr.Button("Caption the upload")
        with gr.Column(scale=1):
            shown = gr.Image(label=SCENE_IMAGE_LABEL,
                             height=320, interactive=False, elem_id="scene-caption-image")
    words = gr.HighlightedText(label="Learned caption (click a word)", show_legend=True,
                               show_inline_category=False, color_map=WORD_COLOURS,
                               combine_adjacent=False, elem_id="scene-caption-words")
    details = gr.Markdown()
    state = gr.State(None)
    outputs = [shown, words, details, state]
    new.click(random_seed, None, seed, api_name=False, queue=False).then(
        scene_caption, [seed, decoding, sample_seed], outputs, api_name=False,
        concurrency_id="cpu").failure(scene_cleared, None, outputs, api_name=False, queue=False)
    again.click(scene_caption, [seed, decoding, sample_seed], outputs, api_name="scene_caption",
                concurrency_id="cpu").failure(scene_cleared, None, outputs, api_name=False,
                                              queue=False)
    upload_button.click(scene_caption_upload, [upload, decoding, sample_seed], outputs,
                        api_name="scene_caption_upload", concurrency_id="cpu").failure(
        scene_cleared, None, outputs, api_name=False, queue=False)
    words.select(show_word, state, [shown, words], api_name=False, queue=False)  # light: no queue
    # for API clients only (hidden): one word's map for a seed, as a click shows it
    word_index = gr.Number(0, precision=0, visible=False, label="Word index (0-based)")
    word_out = gr.Textbox(visible=False, label="Word")
    word_map = gr.Image(visible=False, label="Attention of the word")
    api_button = gr.Button(visible=False)
    api_button.click(scene_attention, [seed, decoding, sample_seed, word_index],
                     [word_map, word_out], api_name="scene_attention", concurrency_id="cpu")


def build() -> None:
    """Add the Caption tab to the current Blocks."""
    with gr.Tab("Caption", id="caption"):
        with gr.Tabs():
            with gr.Tab("Photo captions", id="caption-photos"):
                build_photos()
            with gr.Tab("Scenes (learned captioner)", id="caption-scenes"):
                build_scenes()
        papers_panel("caption")


def build_photos() -> None:
    """The photo captioning of the Caption tab (tags, sentence, CAM; BLIP in hub mode)."""
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
