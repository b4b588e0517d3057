"""Edit-by-text tab: an instruction ("make the cat red") or a painted region + a caption;
before/after side by side and a heatmap of how much each pixel changed. Offline editor by
default; InstructPix2Pix / Stable Diffusion inpainting when a hub model is chosen."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np

from demos.common import UploadEditor, UploadImage, handle_errors, notes_markdown, user_image
from engine.errors import UserInputError
from engine.factory import choose_pipeline, default_model, task_models
from engine.inputs.images import ImageInputError
from engine.inputs.masks import painted_mask
from engine.inputs.text import clean_text

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
#: The offline editor's model name (the tab's default and the hub fallback).
EMBEDDED_MODEL = default_model("edit")
#: Instruction examples: (photo, instruction).
INSTRUCTION_EXAMPLES = [
    ("flower.jpg", "make the flower blue"),
    ("cat.jpg", "blur the background"),
    ("coffee.jpg", "turn it black and white"),
    ("cat.jpg", "make the cat purple"),
    ("rocket.jpg", "make it look vintage"),
    ("china_temple.jpg", "make the picture darker"),
]
#: Caption + mask examples: (photo, painted mask, caption).
MASK_EXAMPLES = [
    ("astronaut.jpg", "astronaut_shuttle_mask.png", "nothing"),
    ("astronaut.jpg", "astronaut_helmet_mask.png", "gold"),
    ("coffee.jpg", "coffee_saucer_mask.png", "green"),
]


def editor_mask(value: dict, size: tuple[int, int]) -> np.ndarray | None:
    """Union of the painted layers of an image-editor value, at ``size`` (None: nothing painted).

    Raises:
        gr.Error: a layer that does not decode (the message names it).
    """
    try:
        mask = painted_mask(value.get("layers") or [], size)
    except ImageInputError as exc:
        raise gr.Error(f"The painted mask: {exc}") from None
    return mask if mask.any() else None


def _run(img, text: str, mask, notes: list[str], model: str, steps, guidance, image_guidance,
         seed, progress):
    choice = choose_pipeline("edit", model)
    if choice.note:
        notes.append(choice.note)
    cleaned = clean_text(text, field="instruction")
    notes += cleaned.notes

    def report(step: int, total: int) -> None:
        progress((step, total), desc="denoising", unit="steps")

    result = choice.pipeline(img, cleaned.text, mask, seed=int(seed), steps=int(steps),
                             guidance_scale=float(guidance),
                             image_guidance_scale=float(image_guidance), progress=report)
    details = [f"**Operation:** {result.operation} · **target:** {result.target} · "
               f"**model:** `{result.model}` · {result.ms:.0f} ms",
               f"**Changed pixels:** {100 * result.changed_fraction:.1f} % of the image; "
               f"outside the edited region: {100 * result.changed_fraction_outside:.2f} %"]
    if notes or result.notes:
        details.append(notes_markdown(notes + result.notes))
    mask_img = (result.mask.astype(np.uint8) * 255)
    return (img, result.image), result.heatmap, mask_img, result.to_json(), "\n\n".join(details)


@handle_errors
def edit_image(image, instruction: str, model: str = EMBEDDED_MODEL, steps: int = 20,
               guidance: float = 7.5, image_guidance: float = 1.5, seed: int = 0,
               progress=gr.Progress()):
    """Instruction mode: edit an uploaded image as the instruction says.

    Returns:
        ((before, after) for the slider, change heatmap, region mask, JSON, details markdown).
    """
    img, notes = user_image(image, "the image")
    return _run(img, instruction, None, notes, model, steps, guidance, image_guidance, seed,
                progress)


@handle_errors
def edit_masked(editor, caption: str, model: str = EMBEDDED_MODEL, steps: int = 20,
                guidance: float = 7.5, image_guidance: float = 1.5, seed: int = 0,
                progress=gr.Progress()):
    """Caption + mask mode: change the painted region of the editor's image as the caption says.

    Nothing painted: the caption is applied as an instruction to the whole image (and said so).
    """
    if not isinstance(editor, dict) or not (editor.get("background") or editor.get("composite")):
        raise gr.Error("Please upload an image in the editor first, then paint the region.")
    img, notes = user_image(editor.get("background") or editor.get("composite"), "the image")
    mask = editor_mask(editor, img.size)
    if mask is None:
        notes.append("Nothing was painted, so the caption was applied to the whole image as an "
                     "instruction.")
        try:
            return _run(img, caption, None, notes, model, steps, guidance, image_guidance,
                        seed, progress)
        except UserInputError as exc:
            raise gr.Error(f"Nothing was painted: paint the region to change with the brush, "
                           f"or write an instruction for the whole image. ({exc})") from None
    return _run(img, caption, mask, notes, model, steps, guidance, image_guidance, seed,
                progress)


def build() -> None:
    """Add the Edit-by-text tab to the current Blocks."""
    with gr.Tab("Edit by text", id="edit"):
        gr.Markdown(
            "**Instruction**: type what to do (\"make the cat red\", \"remove the cup\", \"turn "
            "it black and white\", \"blur the background\"). The offline editor matches the "
            "object words to ImageNet classes (MiniLM), finds the object with a class "
            "activation map refined by superpixels, and changes only those pixels. **Caption + "
            "mask**: paint the region, then say what it should become (a colour, \"nothing\" "
            "to fill it from its surroundings, \"blur\", ...). Pixels outside the region keep "
            "their exact values. Drawing new objects needs a hub model (InstructPix2Pix, "
            "Stable Diffusion inpainting).")
        mode = gr.Radio(["Instruction", "Caption + mask"], value="Instruction", label="Mode")
        with gr.Row():
            with gr.Column():
                with gr.Group(visible=True) as instruction_group:
                    image = UploadImage(label="Image to edit", sources=["upload", "clipboard"],
                                        height=320)
                    instruction = gr.Textbox("make it blue", label="Instruction", max_lines=2)
                    run_instruction = gr.Button("Edit", variant="primary")
                with gr.Group(visible=False) as mask_group:
                    editor = UploadEditor(label="Upload, then paint the region to change",
                                          type="filepath", sources=["upload", "clipboard"],
                                          format="png", layers=False, height=360,
                                          brush=gr.Brush(colors=["#ff0000"],
                                                         color_mode="fixed"))
                    caption = gr.Textbox("blue", label="What the painted region should become",
                                         max_lines=2)
                    run_mask = gr.Button("Edit the painted region", variant="primary")
                with gr.Accordion("Model and sampling (hub models)", open=False):
                    model = gr.Dropdown(task_models("edit"), value=EMBEDDED_MODEL,
                                        label="Model")
                    steps = gr.Slider(1, 50, value=20, step=1, label="Steps")
                    guidance = gr.Slider(1.0, 15.0, value=7.5, step=0.5,
                                         label="Guidance scale (text)")
                    image_guidance = gr.Slider(1.0, 3.0, value=1.5, step=0.1,
                                               label="Image guidance scale (InstructPix2Pix)")
                    seed = gr.Number(0, precision=0, minimum=0, label="Seed")
            with gr.Column():
                slider = gr.ImageSlider(label="Before / after", type="pil", height=320,
                                        interactive=False)
                heatmap = gr.Image(label="How much each pixel changed", height=240,
                                   interactive=False)
                with gr.Accordion("Edited region and JSON", open=False):
                    region = gr.Image(label="Region the edit could touch", height=200,
                                      interactive=False)
                    info = gr.JSON()
                details = gr.Markdown()
        # each example also sets the mode, so a mask example opens the mask editor
        gr.Examples([[str(EXAMPLES / p), t, "Instruction"] for p, t in INSTRUCTION_EXAMPLES],
                    inputs=[image, instruction, mode], label="Instruction examples")
        gr.Examples([[{"background": str(EXAMPLES / p), "layers": [str(EXAMPLES / "edit" / m)],
                       "composite": None}, c, "Caption + mask"] for p, m, c in MASK_EXAMPLES],
                    inputs=[editor, caption, mode], label="Caption + mask examples")
        mode.change(lambda m: (gr.update(visible=m == "Instruction"),
                               gr.update(visible=m != "Instruction")), mode,
                    [instruction_group, mask_group], api_name=False, queue=False)
        outputs = [slider, heatmap, region, info, details]
        options = [model, steps, guidance, image_guidance, seed]
        run_instruction.click(edit_image, [image, instruction] + options, outputs,
                              api_name="edit", concurrency_id="cpu")
        run_mask.click(edit_masked, [editor, caption] + options, outputs,
                       api_name="edit_masked", concurrency_id="cpu")
