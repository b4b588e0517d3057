"""Edit-by-text tab: an instruction ("make the cat red") or a painted region + a caption;
before/after side by side and a heatmap of how much each pixel changed. Offline editor by
default; InstructPix2Pix / Stable Diffusion inpainting when a hub model is chosen."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np

from demos.common import (ADVANCED, UploadEditor, UploadImage, handle_errors, log,
                          notes_markdown, papers_panel, recipe_file, reproduce_file,
                          upload_name, user_image)
from engine.errors import UserInputError
from engine.factory import choose_pipeline, default_model, sampling_defaults, task_models
from engine.inputs.images import ImageInputError, load_image
from engine.inputs.masks import painted_mask
from engine.inputs.text import clean_text
from engine.recipe import edit_output, image_input, make_recipe, mask_input

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


def mask_example_value(index: int) -> dict:
    """The image-editor value of Caption + mask example ``index`` (photo + painted layer)."""
    photo, mask, _ = MASK_EXAMPLES[index]
    return {"background": str(EXAMPLES / photo), "layers": [str(EXAMPLES / "edit" / mask)],
            "composite": None}


#: Side (pixels) of the thumbnails two canvas contents are compared on.
_PRINT_SIDE = 24


def canvas_print(value) -> tuple | None:
    """A small fingerprint of an image-editor value: (size, (s, s) gray of the image, (s, s)
    painted fraction), s = :data:`_PRINT_SIDE`; None if it holds no image or does not decode."""
    if not isinstance(value, dict) or not (value.get("background") or value.get("composite")):
        return None
    try:
        loaded = load_image(value.get("background") or value.get("composite"), max_side=None)
        small = loaded.image.convert("L").resize((_PRINT_SIDE, _PRINT_SIDE))
        painted = painted_mask(value.get("layers") or [], (_PRINT_SIDE * 4, _PRINT_SIDE * 4))
    except ImageInputError:
        return None
    paint = painted.reshape(_PRINT_SIDE, 4, _PRINT_SIDE, 4).mean((1, 3))
    return loaded.image.size, np.asarray(small, np.float32), paint.astype(np.float32)


def same_canvas(a: tuple | None, b: tuple | None) -> bool:
    """Whether two fingerprints (:func:`canvas_print`) show the same image (same size, mean
    gray difference < 4 of 255) painted the same (< 1 % of the painted fraction differs); two
    empty canvases (None) are the same."""
    if a is None or b is None:
        return a is None and b is None
    if a[0] != b[0] or float(np.abs(a[1] - b[1]).mean()) >= 4.0:
        return False
    return float(np.abs(a[2] - b[2]).mean()) < 0.01


def load_mask_example(index: int, editor, caption: str):
    """Load Caption + mask example ``index`` into the editor, from the server.

    The browser's image editor and caption box get the new values only when this answer
    arrives (and the editor draws them some time later), so an action clicked right after an
    example can still send the previous canvas and caption. The returned state remembers the
    example and what the canvas and caption held before the click, for :func:`shown_example`.

    Returns:
        (editor value, caption, mode "Caption + mask", state {"index", "stale", "caption"}).
    """
    index = int(index)
    state = {"index": index, "stale": canvas_print(editor), "caption": caption}
    return mask_example_value(index), MASK_EXAMPLES[index][2], "Caption + mask", state


def caption_typed(state):
    """The user typed a caption: it is theirs, never replaced by the example's."""
    return {**state, "caption": None} if state else state


def shown_example(editor, caption: str, state) -> tuple:
    """(editor value, caption) to edit, given the last clicked example (``state``).

    An editor value that is still what the canvas held when the example was clicked (same
    photo, same painted region) was sent before the example arrived: the example's photo and
    mask are used. A caption still equal to the one before the click (and not typed since) is
    replaced by the example's. Anything else is the user's and is used as sent. (Limit: a user
    who re-uploads exactly the photo shown before the click, and paints it exactly the same,
    gets the example.)
    """
    if not state:
        return editor, caption
    index = state["index"]
    if state["caption"] is not None and caption == state["caption"]:
        caption = MASK_EXAMPLES[index][2]
    if same_canvas(canvas_print(editor), state["stale"]):
        log.info("edit_masked: the canvas had not drawn example %d yet; the example is used",
                 index)
        return mask_example_value(index), caption
    return editor, caption


def _run(img, text: str, mask, notes: list[str], model: str, steps, guidance, image_guidance,
         seed, progress, name: str | None = None):
    """Edit and describe: (slider, heatmap, region, JSON, details, reproduce recipe)."""
    choice = choose_pipeline("edit", model)
    if choice.note:
        notes.append(choice.note)
    cleaned = clean_text(text, field="instruction")
    notes += cleaned.notes

    # a sampling model says how long it will take before it starts (issue 16)
    estimate = getattr(choice.pipeline, "estimate", lambda *a: None)(img.size, int(steps))
    waiting = "denoising" if estimate is None else \
        f"denoising, {estimate.text(choice.pipeline.device)}"
    if estimate is not None:
        progress((0, int(steps)), desc=waiting, unit="steps")

    def report(step: int, total: int) -> None:
        progress((step, total), desc=waiting, unit="steps")

    result = choice.pipeline(img, cleaned.text, mask, seed=int(seed), steps=int(steps),
                             guidance_scale=float(guidance),
                             image_guidance_scale=float(image_guidance), progress=report)
    details = [f"**Operation:** {result.operation} · **target:** {result.target} · "
               f"**model:** `{result.model}` · **device:** {result.device} · "
               f"{result.ms:.0f} ms",
               f"**Changed pixels:** {100 * result.changed_fraction:.1f} % of the image; "
               f"outside the edited region: {100 * result.changed_fraction_outside:.2f} %"]
    if estimate is not None:
        details.append(f"**Waiting time:** estimated {estimate.seconds:.0f} s before it started "
                       f"({estimate.source}); took {result.ms / 1000:.1f} s.")
    if notes or result.notes:
        details.append(notes_markdown(notes + result.notes))
    mask_img = (result.mask.astype(np.uint8) * 255)
    inputs = [image_input("image", img, name, 1024)] + ([] if mask is None else [mask_input(mask)])
    recipe = make_recipe("edit", inputs, result.model, int(seed), {
        "text": cleaned.text, "steps": int(steps), "guidance": float(guidance),
        "image_guidance": float(image_guidance)}, edit_output(result), result.device)
    return ((img, result.image), result.heatmap, mask_img, result.to_json(),
            "\n\n".join(details), recipe)


@handle_errors
def edit_image(image, instruction: str, model: str = EMBEDDED_MODEL, steps: int = 20,
               guidance: float = 7.5, image_guidance: float = 1.5, seed: int = 0,
               progress=gr.Progress()):
    """Instruction mode: edit an uploaded image as the instruction says.

    Returns:
        ((before, after) for the slider, change heatmap, region mask, JSON, details markdown).
    """
    return _edit_image(image, instruction, model, steps, guidance, image_guidance, seed,
                       progress)[:5]


@handle_errors
def edit_image_with_recipe(image, instruction: str, model: str = EMBEDDED_MODEL,
                           steps: int = 20, guidance: float = 7.5, image_guidance: float = 1.5,
                           seed: int = 0, progress=gr.Progress()):
    """:func:`edit_image`'s outputs and the result's reproduce recipe (for a gr.State)."""
    return _edit_image(image, instruction, model, steps, guidance, image_guidance, seed,
                       progress)


def _edit_image(image, instruction, model, steps, guidance, image_guidance, seed, progress):
    img, notes = user_image(image, "the image")
    return _run(img, instruction, None, notes, model, steps, guidance, image_guidance, seed,
                progress, upload_name(image))


@handle_errors
def edit_masked(editor, caption: str, model: str = EMBEDDED_MODEL, steps: int = 20,
                guidance: float = 7.5, image_guidance: float = 1.5, seed: int = 0,
                example=None, progress=gr.Progress()):
    """Caption + mask mode: change the painted region of the editor's image as the caption says.

    Nothing painted: the caption is applied as an instruction to the whole image (and said so).
    ``example`` is the session's state of the last clicked example (:func:`load_mask_example`;
    not part of the API).
    """
    return _edit_masked(editor, caption, model, steps, guidance, image_guidance, seed, example,
                        progress)[:5]


@handle_errors
def edit_masked_with_recipe(editor, caption: str, model: str = EMBEDDED_MODEL, steps: int = 20,
                            guidance: float = 7.5, image_guidance: float = 1.5, seed: int = 0,
                            example=None, progress=gr.Progress()):
    """:func:`edit_masked`'s outputs and the result's reproduce recipe (for a gr.State)."""
    return _edit_masked(editor, caption, model, steps, guidance, image_guidance, seed, example,
                        progress)


def _edit_masked(editor, caption, model, steps, guidance, image_guidance, seed, example,
                 progress):
    editor, caption = shown_example(editor, caption, example)
    if not isinstance(editor, dict) or not (editor.get("background") or editor.get("composite")):
        raise gr.Error("Please upload an image in the editor first, then paint the region.")
    source = editor.get("background") or editor.get("composite")
    img, notes = user_image(source, "the image")
    mask = editor_mask(editor, img.size)
    if mask is None:
        notes.append("Nothing was painted, so the caption was applied to the whole image as an "
                     "instruction.")
        try:
            return _run(img, caption, None, notes, model, steps, guidance, image_guidance,
                        seed, progress, upload_name(source))
        except UserInputError as exc:
            raise gr.Error(f"Nothing was painted: paint the region to change with the brush, "
                           f"or write an instruction for the whole image. ({exc})") from None
    return _run(img, caption, mask, notes, model, steps, guidance, image_guidance, seed,
                progress, upload_name(source))


def hub_controls(model: str):
    """Show the sampling controls only for a hub model (the offline editor does not sample),
    the steps set to this device's default (about 30 s on a CPU): updates for (steps,
    guidance, image guidance, seed)."""
    defaults = sampling_defaults(model) if model != EMBEDDED_MODEL else None
    steps = gr.update(visible=model != EMBEDDED_MODEL, **(
        {"value": defaults["steps"]} if defaults else {}))
    return (steps,) + tuple(gr.update(visible=model != EMBEDDED_MODEL) for _ in range(3))


def waiting_time(model: str, steps) -> str:
    """Markdown of the expected wait of a hub diffusion edit with ``steps`` steps on this
    server, before it is started (empty for the offline editor)."""
    defaults = sampling_defaults(model, int(steps or 0) or None) \
        if model != EMBEDDED_MODEL else None
    if defaults is None:
        return ""
    est, side = defaults["estimate"], defaults["work_side"]
    if est is None:
        return (f"**Expected wait:** not measured yet on this server ({defaults['device']}, "
                f"{side} px); the first edit measures it.")
    return (f"**Expected wait** for {int(steps or defaults['steps'])} steps at {side} px: "
            f"{est.text(defaults['device'])}.")


def cleared():
    """Empty outputs, shown when a request fails, so no earlier result and its details stay
    beside the error: (slider, heatmap, region, JSON, details)."""
    return None, None, None, None, ""


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
                    # sampling: hub models only (shown when one is chosen)
                    steps = gr.Slider(1, 50, value=20, step=1, label="Steps", visible=False)
                    guidance = gr.Slider(1.0, 15.0, value=7.5, step=0.5,
                                         label="Guidance scale (text)", visible=False)
                    image_guidance = gr.Slider(1.0, 3.0, value=1.5, step=0.1,
                                               label="Image guidance scale (InstructPix2Pix)",
                                               visible=False)
                    seed = gr.Number(0, precision=0, minimum=0, label="Seed", visible=False)
                    wait = gr.Markdown()  # the expected wait of a hub model, before it runs
            with gr.Column():
                # no fixed height: a fixed one cropped the top and bottom of wide photos
                slider = gr.ImageSlider(label="Before / after", type="pil", max_height=420,
                                        interactive=False)
                heatmap = gr.Image(label="How much each pixel changed", height=240,
                                   interactive=False)
                with gr.Accordion("Edited region and JSON", open=False, elem_classes=[ADVANCED]):
                    region = gr.Image(label="Region the edit could touch", height=200,
                                      interactive=False)
                    info = gr.JSON()
                details = gr.Markdown()
                reproduce = reproduce_file()
        # each example also sets the mode, so a mask example opens the mask editor
        gr.Examples([[str(EXAMPLES / p), t, "Instruction"] for p, t in INSTRUCTION_EXAMPLES],
                    inputs=[image, instruction, mode], label="Instruction examples")
        # loaded by the server (load_mask_example), so the action knows what was clicked even
        # before the canvas has drawn it
        mask_examples = gr.Dataset(
            components=[gr.Image(label="Photo (its mask is painted when loaded)", render=False),
                        gr.Textbox(label="What the painted region should become",
                                   render=False)],
            samples=[[str(EXAMPLES / p), c] for p, _, c in MASK_EXAMPLES], type="index",
            label="Caption + mask examples")
        example = gr.State(None)
        mask_examples.click(load_mask_example, [mask_examples, editor, caption],
                            [editor, caption, mode, example], api_name=False, queue=False)
        editor.clear(lambda: None, None, example, api_name=False, queue=False)
        caption.input(caption_typed, example, example, api_name=False, queue=False)
        mode.change(lambda m: (gr.update(visible=m == "Instruction"),
                               gr.update(visible=m != "Instruction")), mode,
                    [instruction_group, mask_group], api_name=False, queue=False)
        outputs = [slider, heatmap, region, info, details]
        options = [model, steps, guidance, image_guidance, seed]
        model.change(hub_controls, model, [steps, guidance, image_guidance, seed],
                     api_name=False, queue=False)
        for control in (model, steps):
            control.change(waiting_time, [model, steps], wait, api_name=False, queue=False)
        recipe = gr.State(None)
        for run in (run_instruction.click(edit_image_with_recipe, [image, instruction] + options,
                                          outputs + [recipe], api_name="edit",
                                          concurrency_id="cpu"),
                    run_mask.click(edit_masked_with_recipe,
                                   [editor, caption] + options + [example], outputs + [recipe],
                                   api_name="edit_masked", concurrency_id="cpu")):
            run.failure(cleared, None, outputs, api_name=False, queue=False)
            run.failure(lambda: None, None, reproduce, api_name=False, queue=False)
            run.success(recipe_file, recipe, reproduce, api_name=False, queue=False)
        papers_panel("edit")
