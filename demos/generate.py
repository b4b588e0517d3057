"""Generate tab: text -> image with the scene world's diffusion model (diffusers UNet + a small
text Transformer trained here), classifier-free guidance, and the denoising steps as a strip
(the lecture's picture of diffusion). UI only: the engine room is engine/generation/."""
from __future__ import annotations

import gradio as gr
from PIL import Image

from demos.common import escape_markdown, handle_errors, notes_markdown, papers_panel
from engine.factory import choose_pipeline, default_model, scene_parser

#: The model name the tab uses (the registered scene generator).
MODEL = default_model("generate")
#: Examples: (description, guidance, seed).
EXAMPLES = [
    ("a large blue metal sphere left of a small yellow cube", 3.0, 0),
    ("there is a large red rubber cylinder", 3.0, 1),
    ("a small green metal cube is in front of a large purple rubber sphere", 3.0, 2),
    ("a large cyan rubber cube left of a small gray metal cylinder. the small gray metal "
     "cylinder is behind a large brown metal sphere", 3.0, 3),
    ("a large yellow metal cylinder right of a small blue rubber sphere", 6.0, 0),
]
#: Side (pixels) the 32x32 output and the strip are shown at (nearest-neighbour upscaling,
#: so the model's pixels stay visible).
SHOW_SIDE, STRIP_SIDE = 256, 96


def _big(arr, side: int) -> Image.Image:
    return Image.fromarray(arr).resize((side, side), Image.Resampling.NEAREST)


@handle_errors
def generate(text: str, guidance: float = 3.0, seed: int = 0, steps: int = 25,
             progress=gr.Progress()):
    """Generate a scene from a description.

    Returns:
        (image upscaled to 256x256, the denoising strip as (image, caption) pairs, details
        markdown).
    """
    choice = choose_pipeline("generate", MODEL)

    def report(done: int, total: int) -> None:
        progress((done, total), desc="denoising", unit="steps")

    r = choice.pipeline(text, seed=seed, steps=steps, guidance=guidance, progress=report)
    strip = [(_big(f, STRIP_SIDE), "noise" if k == 0 else f"after {k}/{r.steps} steps")
             for k, f in zip(r.frame_steps, r.frames)]
    parsed = scene_parser()(r.image)[0]
    seen = ", ".join(p.object.name() for p in parsed) or "no object"
    details = [f"**Read by the model:** {escape_markdown(' '.join(r.words))}",
               f"**The scene parser sees:** {escape_markdown(seen)}",
               f"**Seed** {r.seed} · **steps** {r.steps} · **guidance** {r.guidance:g} · "
               f"**model** `{choice.pipeline.name}` · {1000 * r.seconds:.0f} ms"]
    notes = ([choice.note] if choice.note else []) + r.notes
    if notes:
        details.append(notes_markdown([escape_markdown(n) for n in notes]))
    return _big(r.image, SHOW_SIDE), strip, "\n\n".join(details)


def cleared():
    """Empty outputs after a failed request: (image, strip, details)."""
    return None, None, ""


def build() -> None:
    """Add the Generate tab to the current Blocks."""
    with gr.Tab("Generate", id="generate"):
        gr.Markdown(
            "Type a scene of 1-3 objects of the scene world (size, colour, material, shape: "
            "\"a large blue metal sphere left of a small yellow cube\"). A diffusion model "
            "trained here on 10,000 rendered scenes and their descriptions turns noise into a "
            "32x32 image step by step (DDIM); the **guidance scale** weighs the text against "
            "the model's unconditional guess (classifier-free guidance: 0 ignores the text, 1 "
            "is the plain model, higher follows the text more). The same seed gives the same "
            "image. It is small (1.2 M parameters) and was trained for only 75 minutes on a "
            "shared CPU: expect noisy blobs in the colours of the text, rarely the objects "
            "asked for (object F1 0.09 read by the scene parser; docs/generate.md).")
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(EXAMPLES[0][0], label="Description", max_lines=3)
                guidance = gr.Slider(0.0, 10.0, value=3.0, step=0.5,
                                     label="Guidance scale (classifier-free)")
                with gr.Row():
                    seed = gr.Number(0, precision=0, minimum=0, label="Seed")
                    steps = gr.Slider(1, 100, value=25, step=1, label="Denoising steps")
                run = gr.Button("Generate", variant="primary")
            with gr.Column():
                image = gr.Image(label="Generated (32x32, shown 8x)", height=280,
                                 interactive=False, format="png")
                details = gr.Markdown()
        strip = gr.Gallery(label="Denoising: from noise (left) to the image (right)", columns=8,
                           rows=1, height=150, object_fit="contain", allow_preview=False,
                           format="png")
        gr.Examples([list(e) for e in EXAMPLES], inputs=[text, guidance, seed],
                    label="Examples")
        outputs = [image, strip, details]
        run.click(generate, [text, guidance, seed, steps], outputs, api_name="generate",
                  concurrency_id="cpu").failure(cleared, None, outputs, api_name=False,
                                                queue=False)
        papers_panel("generate")
