"""Retrieve tab: composed image retrieval (reference image + modification text -> gallery).

The bundled default gallery's index is read-only and shared; a user's own gallery (many files or
a .zip) is decoded, indexed once with a progress bar and kept in this browser session's
``gr.State`` only, for at most 3 hours. Clicking a result makes it the new reference, so a query can be refined step
by step (as the CLIP4Cir demo allows).
"""
from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pandas as pd

from demos import retrieval_scenes
from demos.common import (UploadFiles, UploadImage, file_path, handle_errors, notes_markdown,
                          papers_panel)
from engine.factory import choose_pipeline, default_model, get_pipeline, task_models
from engine.inputs.images import ImageInputError, load_image
from engine.retrieval.pipeline import image_digest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = json.loads((ROOT / "assets" / "galleries" / "examples.json").read_text())
#: How long a session's own gallery (and the results shown) are kept: 3 hours, in seconds.
SESSION_TTL_S = 3 * 3600
#: Columns of the scores table (score = explicit + implicit).
TABLE_COLUMNS = ["rank", "image", "score", "explicit (text)", "implicit (reference)"]


@handle_errors
def index_gallery(files: list | None, model: str = default_model("retrieve"),
                  progress=gr.Progress()):
    """Decode and index the user's gallery (images and/or .zip files) for this session.

    Returns:
        (session gallery state: :class:`engine.retrieval.pipeline.UploadedGallery`, status
        markdown).

    Raises:
        gr.Error: no file, no usable image (the refused files named), too many images.
    """
    if not files:
        raise gr.Error("Upload some images (or a .zip of images) for your gallery first.")
    choice = choose_pipeline("retrieve", model)
    progress(0.0, desc="decoding uploads")
    gallery = choice.pipeline.index_uploads(
        [file_path(f) for f in files],
        progress=lambda d, t: progress(d / t, desc=f"indexing {d}/{t}"))
    n = len(gallery.images)
    lines = [f"**Your gallery:** {n} image{'' if n == 1 else 's'} indexed with "
             f"`{choice.pipeline.name}`."]
    if gallery.notes:
        lines.append(f"{len(gallery.notes)} file(s) skipped:\n" + notes_markdown(gallery.notes))
    if choice.note:
        lines.append(choice.note)
    return gallery, "\n\n".join(lines)


def use_default_gallery(state=None):
    """Forget the session's own gallery and search the bundled one again."""
    size = len(get_pipeline("retrieve").default_index())
    return None, f"**Gallery:** the bundled default gallery ({size} images)."


@handle_errors
def retrieve(reference, text: str, weight: float = 0.5, top_k: int = 10,
             model: str = default_model("retrieve"), session=None):
    """Rank the session's gallery (or the default one) for a reference image and a text.

    Args:
        session: the session's :class:`engine.retrieval.pipeline.UploadedGallery`, or None
            for the bundled gallery. Its own model is used whatever ``model`` says.

    Returns:
        (gallery items [(image, caption)], score table, details markdown, shown results).
    """
    if reference is None:
        raise gr.Error("Please upload a reference image first.")
    local = file_path(reference)
    try:
        loaded = load_image(local, name=Path(local).name)
        digest = image_digest(local)
    except ImageInputError as exc:
        raise gr.Error(f"The reference image: {exc}") from None
    notes = list(loaded.notes)
    if session:
        index, images = session.index, session.images
        if model != index.model:
            notes.append(f"Your gallery was indexed with `{index.model}`; that model is used.")
        pipeline = get_pipeline("retrieve", index.model)
    else:
        choice = choose_pipeline("retrieve", model)
        notes += [choice.note] if choice.note else []
        pipeline, images = choice.pipeline, None
        index = pipeline.default_index()
    result = pipeline(loaded.image, text, index=index, weight=float(weight), top_k=int(top_k),
                      reference_hash=digest)
    shown = [images[m.index] if images else m.path for m in result.results]
    # short captions (the thumbnails are narrow); the split is read in the table beside them
    items = [(img, f"#{r} {m.score:+.2f}")
             for r, (img, m) in enumerate(zip(shown, result.results), start=1)]
    table = pd.DataFrame([{"rank": r, "image": Path(m.path).name, "score": round(m.score, 2),
                           "explicit (text)": round(m.explicit, 2),
                           "implicit (reference)": round(m.implicit, 2)}
                          for r, m in enumerate(result.results, start=1)],
                         columns=TABLE_COLUMNS)
    looked = ", ".join(filter(None, [f"objects: *{result.content}*" if result.content else "",
                                     *(f"appearance: *{a}*" for a in result.attributes)]))
    md = [f"**Model:** `{result.model}` · {len(index)} images · {result.ms:.0f} ms",
          f"**From the text:** {looked or 'nothing to match'}"]
    md += [notes_markdown(notes + result.notes)] if notes + result.notes else []
    return items, table, "\n\n".join(md), shown


def cleared():
    """Empty outputs, shown when a search fails, so no earlier ranking stays beside the error:
    (results, scores table, details, shown results)."""
    return [], pd.DataFrame(columns=TABLE_COLUMNS), "", []


def clicked_rank(evt: gr.SelectData) -> int | None:
    """The rank (1 = best) of the result clicked in the gallery (browser only)."""
    return None if evt.index is None else int(evt.index) + 1


@handle_errors
def select_result(shown: list | None, rank: float | None):
    """Make result number ``rank`` (1 = best, as captioned) of this session's last search the
    new reference image. ``/retrieval_select`` from ``gradio_client`` takes the rank.

    Raises:
        gr.Error: no search yet in this session, or no result with that rank.
    """
    if not shown:
        raise gr.Error("There are no results to choose from yet: run a search first, then pick "
                       "one of its results.")
    if rank is None or not float(rank).is_integer() or not 1 <= int(rank) <= len(shown):
        raise gr.Error(f"Choose a result by its rank: 1 to {len(shown)} (got {rank}).")
    return shown[int(rank) - 1]


def build() -> None:
    """Add the Retrieve tab to the current Blocks."""
    with gr.Tab("Retrieve", id="retrieve"):
        gr.Markdown(
            "Give a **reference image** and say how the wanted image differs (\"in black and "
            "white\", \"at night\", \"the same but with a dog\"). Each gallery image scores an "
            "**explicit** match (does it show what the text asks for?) plus an **implicit** "
            "similarity (does it look like the reference?), as in ARTEMIS; the slider sets the "
            "share of each. Click a result to make it the new reference.")
        session = gr.State(None, time_to_live=SESSION_TTL_S)
        shown = gr.State([], time_to_live=SESSION_TTL_S)
        with gr.Row():
            with gr.Column():
                reference = UploadImage(label="Reference image", height=260,
                                        sources=["upload", "clipboard"])
                text = gr.Textbox(label="Modification text", value="in black and white",
                                  max_lines=2)
                with gr.Row():
                    weight = gr.Slider(0, 1, value=0.5, step=0.05,
                                       label="Weight of the text (explicit) vs the reference")
                    top_k = gr.Slider(1, 30, value=10, step=1, label="Results")
                model = gr.Dropdown(task_models("retrieve"), value=default_model("retrieve"),
                                    label="Model")
                button = gr.Button("Retrieve", variant="primary")
                with gr.Accordion("Your own gallery", open=False):
                    files = UploadFiles(file_count="multiple", label="Images or a .zip of images")
                    with gr.Row():
                        index_button = gr.Button("Index my gallery")
                        default_button = gr.Button("Use the default gallery")
                status = gr.Markdown()
            with gr.Column():
                results = gr.Gallery(label="Results (click one to refine from it)", columns=5,
                                     height="auto", allow_preview=False)
                table = gr.Dataframe(
                    headers=TABLE_COLUMNS, label="Scores: score = explicit (does it show what "
                    "the text asks for?) + implicit (does it look like the reference?)",
                    interactive=False, wrap=True, max_height=640,
                    column_widths=["9%", "37%", "14%", "20%", "20%"])
                details = gr.Markdown()
        gr.Examples([[str(ROOT / e["reference"]), e["text"], e["weight"]] for e in EXAMPLES],
                    inputs=[reference, text, weight], label="Examples")
        retrieval_scenes.build(SESSION_TTL_S)
        outputs = [results, table, details, shown]
        button.click(retrieve, [reference, text, weight, top_k, model, session], outputs,
                     api_name="retrieve", concurrency_id="cpu"
                     ).failure(cleared, None, outputs, api_name=False, queue=False)
        index_button.click(index_gallery, [files, model], [session, status],
                           api_name="retrieval_index_gallery", concurrency_id="cpu")
        default_button.click(use_default_gallery, [session], [session, status],
                             api_name="retrieval_use_default")
        # the gallery's click gives its rank to a hidden number; the public endpoint takes the
        # rank, so /retrieval_select can be scripted (a SelectData cannot be sent by a client)
        rank = gr.Number(visible=False, precision=0, label="Result rank (1 = best)")
        results.select(clicked_rank, None, rank, api_visibility="private", queue=False).then(
            select_result, [shown, rank], [reference], api_name="retrieval_select")
        papers_panel("retrieve")
