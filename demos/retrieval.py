"""Retrieve tab: composed image retrieval (reference image + modification text -> gallery).

The bundled default gallery's index is read-only and shared; a user's own gallery (many files or
a .zip) is decoded, indexed once with a progress bar and kept in this browser session's
``gr.State`` only. Clicking a result makes it the new reference, so a query can be refined step
by step (as the CLIP4Cir demo allows).
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import zipfile
from pathlib import Path

import gradio as gr
import pandas as pd
from PIL import Image

from demos.common import (UploadFiles, UploadImage, file_path, handle_errors, hub_or_embedded,
                          notes_markdown)
from engine.inputs.images import MAX_BYTES, ImageInputError, load_image
from engine.retrieval.index import (EMBEDDED_RETRIEVER, index_folder, index_images,
                                            retrieval_models)
from engine.retrieval.pipeline import RetrievalPipeline

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GALLERY = ROOT / "assets" / "galleries" / "default"
EXAMPLES = json.loads((ROOT / "assets" / "galleries" / "examples.json").read_text())
#: Most images a session's own gallery may hold, and their long side in pixels (as the default).
MAX_GALLERY, GALLERY_SIDE = 500, 192
#: Zip guards: members read, total uncompressed bytes, and the largest compression ratio.
MAX_ZIP_MEMBERS, MAX_ZIP_BYTES, MAX_ZIP_RATIO = 2000, 300 * 2**20, 200
_pipeline = RetrievalPipeline()


@functools.lru_cache(maxsize=4)
def default_index(model: str):
    """The bundled gallery's index for ``model`` (read-only, shared by every session)."""
    return index_folder(DEFAULT_GALLERY, model)[0]


def _zip_members(path: str, label: str) -> list[tuple[str, bytes]]:
    """Image-candidate members of a zip, read in memory (nothing is extracted to disk).

    Raises:
        ValueError: too many members, too large uncompressed, or a zip bomb.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{label} is not a readable zip archive ({exc}).") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_ZIP_MEMBERS:
            raise ValueError(f"{label} holds {len(infos)} files; the limit is {MAX_ZIP_MEMBERS}.")
        total = sum(i.file_size for i in infos)
        if total > MAX_ZIP_BYTES:
            raise ValueError(f"{label} unpacks to {total / 2**20:.0f} MB; the limit is "
                             f"{MAX_ZIP_BYTES / 2**20:.0f} MB.")
        out = []
        for info in infos:
            name = Path(info.filename.replace("\\", "/")).name  # display only; never a path
            if not name or name.startswith("."):
                continue
            if info.file_size > MAX_BYTES or (
                    info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO):
                raise ValueError(f"{label}: member {name} is too large or too compressed "
                                 f"(zip bomb guard).")
            with zf.open(info) as fh:
                data = fh.read(MAX_BYTES + 1)
            if len(data) != info.file_size:
                raise ValueError(f"{label}: member {name} does not match its declared size.")
            out.append((name, data))
    return out


def _decode_uploads(files: list) -> tuple[list[tuple[str, Image.Image, str]], list[str]]:
    """(name, RGB thumbnail, sha256) of every usable uploaded image, and notes on the others."""
    items, notes = [], []
    for up in files:
        local = file_path(up)
        label = Path(local).name
        members = (_zip_members(local, label) if zipfile.is_zipfile(local)
                   else [(label, Path(local).read_bytes() if Path(local).is_file() else b"")])
        for name, data in members:
            try:
                image = load_image(data, name=name, max_side=GALLERY_SIDE).image
            except ImageInputError as exc:
                notes.append(str(exc))
                continue
            items.append((name, image, hashlib.sha256(data).hexdigest()))
    return items, notes


@handle_errors
def index_gallery(files: list | None, model: str = EMBEDDED_RETRIEVER,
                  progress=gr.Progress()):
    """Decode and index the user's gallery (images and/or .zip files) for this session.

    Returns:
        (session gallery state, status markdown).

    Raises:
        gr.Error: no file, no usable image (the refused files named), too many images.
    """
    if not files:
        raise gr.Error("Upload some images (or a .zip of images) for your gallery first.")
    model, note = hub_or_embedded(model, EMBEDDED_RETRIEVER)
    progress(0.0, desc="decoding uploads")
    items, notes = _decode_uploads(list(files))
    if not items:
        raise gr.Error("No usable image in the upload: " + " ".join(notes))
    if len(items) > MAX_GALLERY:
        raise gr.Error(f"{len(items)} images were uploaded; a session gallery holds at most "
                       f"{MAX_GALLERY}.")
    index = index_images([(n, im) for n, im, _ in items], model,
                         progress=lambda d, t: progress(d / t, desc=f"indexing {d}/{t}"))
    index.hashes = [h for _, _, h in items]
    state = {"index": index, "images": [im for _, im, _ in items]}
    lines = [f"**Your gallery:** {len(items)} images indexed with `{model}`."]
    if notes:
        lines.append(f"{len(notes)} file(s) skipped:\n" + notes_markdown(notes))
    if note:
        lines.append(note)
    return state, "\n\n".join(lines)


def use_default_gallery(state=None):
    """Forget the session's own gallery and search the bundled one again."""
    return None, f"**Gallery:** the bundled default gallery ({len(default_index(EMBEDDED_RETRIEVER))} images)."


@handle_errors
def retrieve(reference, text: str, weight: float = 0.5, top_k: int = 10,
             model: str = EMBEDDED_RETRIEVER, session=None):
    """Rank the session's gallery (or the default one) for a reference image and a text.

    Returns:
        (gallery items [(image, caption)], score table, details markdown, shown results).
    """
    if reference is None:
        raise gr.Error("Please upload a reference image first.")
    local = file_path(reference)
    try:
        loaded = load_image(local, name=Path(local).name)
        digest = hashlib.sha256(Path(local).read_bytes()).hexdigest()
    except ImageInputError as exc:
        raise gr.Error(f"The reference image: {exc}") from None
    notes = list(loaded.notes)
    if session:
        index, images = session["index"], session["images"]
        if model != index.model:
            notes.append(f"Your gallery was indexed with `{index.model}`; that model is used.")
    else:
        model, note = hub_or_embedded(model, EMBEDDED_RETRIEVER)
        notes += [note] if note else []
        index, images = default_index(model), None
    result = _pipeline(loaded.image, text, index=index, weight=float(weight),
                       top_k=int(top_k), reference_hash=digest)
    shown = [images[m.index] if images else m.path for m in result.results]
    items = [(img, f"{r}. {m.score:+.2f} = text {m.explicit:+.2f} + reference {m.implicit:+.2f}")
             for r, (img, m) in enumerate(zip(shown, result.results), start=1)]
    table = pd.DataFrame([{"rank": r, "image": Path(m.path).name, "score": round(m.score, 3),
                           "explicit (text)": round(m.explicit, 3),
                           "implicit (reference)": round(m.implicit, 3)}
                          for r, m in enumerate(result.results, start=1)])
    looked = ", ".join(filter(None, [f"objects: *{result.content}*" if result.content else "",
                                     *(f"appearance: *{a}*" for a in result.attributes)]))
    md = [f"**Model:** `{result.model}` · {len(index)} images · {result.ms:.0f} ms",
          f"**From the text:** {looked or 'nothing to match'}"]
    md += [notes_markdown(notes + result.notes)] if notes + result.notes else []
    return items, table, "\n\n".join(md), shown


def select_result(shown: list | None, evt: gr.SelectData):
    """Make the clicked result the new reference image."""
    if not shown or evt.index is None or not 0 <= evt.index < len(shown):
        raise gr.Error("Click one of the results to use it as the new reference.")
    return shown[evt.index]


def build() -> None:
    """Add the Retrieve tab to the current Blocks."""
    with gr.Tab("Retrieve", id="retrieve"):
        gr.Markdown(
            "Give a **reference image** and say how the wanted image differs (\"in black and "
            "white\", \"at night\", \"the same but with a dog\"). Each gallery image scores an "
            "**explicit** match (does it show what the text asks for?) plus an **implicit** "
            "similarity (does it look like the reference?), as in ARTEMIS; the slider sets the "
            "share of each. Click a result to make it the new reference.")
        session = gr.State(None)
        shown = gr.State([])
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
                model = gr.Dropdown(retrieval_models(), value=EMBEDDED_RETRIEVER, label="Model")
                button = gr.Button("Retrieve", variant="primary")
                with gr.Accordion("Your own gallery", open=False):
                    files = UploadFiles(file_count="multiple", label="Images or a .zip of images")
                    with gr.Row():
                        index_button = gr.Button("Index my gallery")
                        default_button = gr.Button("Use the default gallery")
                status = gr.Markdown()
            with gr.Column():
                results = gr.Gallery(label="Results (click one to refine from it)", columns=5,
                                     height=420, allow_preview=False)
                table = gr.Dataframe(label="Scores", interactive=False)
                details = gr.Markdown()
        gr.Examples([[str(ROOT / e["reference"]), e["text"], e["weight"]] for e in EXAMPLES],
                    inputs=[reference, text, weight], label="Examples")
        button.click(retrieve, [reference, text, weight, top_k, model, session],
                     [results, table, details, shown], api_name="retrieve",
                     concurrency_id="cpu")
        index_button.click(index_gallery, [files, model], [session, status],
                           api_name="retrieval_index_gallery", concurrency_id="cpu")
        default_button.click(use_default_gallery, [session], [session, status],
                             api_name="retrieval_use_default")
        results.select(select_result, [shown], [reference], api_name="retrieval_select")
