"""Few-shot tab: build a support set in the browser, then classify query photos.

The support set lives in this browser session's ``gr.State`` (an
:class:`engine.fewshot.support.SupportSet`, never shared between visitors); the pipeline keeps
the support images' features in its own cache, so a new query does not re-embed them. The
Handwriting panel (:mod:`demos.handwriting`) follows the same add / load example / clear design.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from demos import handwriting
from demos.common import (STATE_IMAGE_SIDE, UploadFiles, UploadImage, handle_errors,
                          notes_markdown, user_image)
from engine.factory import choose_pipeline, default_model, task_models
from engine.fewshot.methods import method_class
from engine.fewshot.photos import DEFAULT_METHOD, PHOTO_LIMITS, photo_methods
from engine.fewshot.support import SupportSet, read_support_folder
from engine.inputs.text import TextInputError, clean_text
from engine.viz import embedding_figure

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples" / "fewshot"
MAX_NAME_CHARS = 60
MAX_QUERIES = 20


def _summary(support: SupportSet) -> str:
    if not support.n_classes:
        return "*The support set is empty: add at least two classes.*"
    counts = support.counts()
    rows = "\n".join(f"| {i} | {name} | {n} |"
                     for i, (name, n) in enumerate(zip(support.names, counts), start=1))
    shots = sorted(set(counts))
    k = f"{shots[0]}" if len(shots) == 1 else f"{shots[0]}-{shots[-1]}"
    return (f"**{support.n_classes}-way {k}-shot support set**\n\n| # | class | images |\n"
            f"|---|---|---|\n" + rows)


def _view(support: SupportSet, notes: list[str] | None = None):
    """(state, gallery, summary, class dropdown): what every support-set event returns."""
    names = list(support.names)
    gallery = [(img, name) for name, images in support.classes() for img in images]
    summary = _summary(support) + ("\n\n" + notes_markdown(notes) if notes else "")
    return support, gallery, summary, gr.update(choices=names, value=names[-1] if names else None)


@handle_errors
def add_class(support: SupportSet | None, name: str, files: list | None, photo=None):
    """Add a class (or more images to an existing class) to the session's support set.

    Args:
        support: the session's support set (gr.State).
        name: class name (non-blank; a name equal up to case adds images to that class).
        files: uploaded image files; photo: one more image (webcam or upload), optional.

    Returns:
        (support, gallery, summary markdown, class dropdown update).

    Raises:
        gr.Error: blank name, no image, a bad image (named), more than 10 classes or images.
    """
    support = support or SupportSet()
    try:
        cleaned = clean_text(name, field="class name", max_chars=MAX_NAME_CHARS)
    except TextInputError:
        raise gr.Error("Type a class name first (e.g. 'cat').") from None
    clean = cleaned.text
    uploads = list(files or []) + ([photo] if photo is not None else [])
    if not uploads:
        raise gr.Error(f"Add at least one image for class '{clean}'.")
    existing = support.find(clean)
    if existing is None and support.n_classes >= PHOTO_LIMITS.max_classes:
        raise gr.Error(f"The support set already has {support.n_classes} classes; the limit is "
                       f"{PHOTO_LIMITS.max_classes}. Remove one first.")
    have = support.counts()[support.names.index(existing)] if existing else 0
    if have + len(uploads) > PHOTO_LIMITS.max_shots:
        raise gr.Error(f"Class '{clean}' would have {have + len(uploads)} images; the limit "
                       f"is {PHOTO_LIMITS.max_shots} per class.")
    images, notes = [], list(cleaned.notes)
    for i, up in enumerate(uploads, start=1):
        img, n = user_image(up, f"image {i} of class '{clean}'", max_side=STATE_IMAGE_SIDE)
        images.append(img)
        notes += n
    return _view(support.add(existing or clean, images), notes)


@handle_errors
def remove_class(support: SupportSet | None, name: str | None):
    """Remove the class called ``name`` from the support set."""
    return _view((support or SupportSet()).remove(name))


def clear_support(support: SupportSet | None = None):
    """Empty the session's support set."""
    return _view(SupportSet())


@handle_errors
def load_example(support: SupportSet | None = None):
    """Replace the support set with the bundled example (cat vs coffee, 3 shots each)."""
    return _view(read_support_folder(EXAMPLES / "support", max_side=STATE_IMAGE_SIDE))


@handle_errors
def classify(support: SupportSet | None, query_files: list | None, query_photo,
             method: str, backbone: str):
    """Classify the query images with the session's support set.

    Returns:
        ({class: p} of the first query, table of all queries, embedding plot, markdown details).
    """
    uploads = list(query_files or []) + ([query_photo] if query_photo is not None else [])
    if not uploads:
        raise gr.Error("Add at least one query image to classify.")
    if len(uploads) > MAX_QUERIES:
        raise gr.Error(f"{len(uploads)} query images were given; at most {MAX_QUERIES} at a "
                       f"time.")
    queries, notes = [], []
    for i, up in enumerate(uploads, start=1):
        img, n = user_image(up, f"query image {i}")
        queries.append(img)
        notes += n
    choice = choose_pipeline("fewshot", backbone)
    if choice.note:
        notes.append(choice.note)
    result = choice.pipeline(support or SupportSet(), queries, method=method)
    title = method_class(result.method).title
    table = pd.DataFrame([{"query": i + 1, "prediction": p.label,
                           **{n: round(v, 4) for n, v in p.probabilities.items()}}
                          for i, p in enumerate(result.predictions)])
    fig = embedding_figure(result.support_xy, result.support_labels, result.prototype_xy,
                           result.query_xy, [result.class_names.index(p.label)
                                             for p in result.predictions],
                           result.class_names, title=title)
    md = f"**Backbone:** `{result.model}` · **method:** {title} · {result.ms:.0f} ms"
    if notes:
        md += "\n\n" + notes_markdown(notes)
    return result.predictions[0].probabilities, table, fig, md


def build() -> None:
    """Add the Few-shot tab to the current Blocks."""
    with gr.Tab("Few-shot", id="fewshot"):
        with gr.Tab("Photos", id="fewshot-photos"):
            _build_photos()
        with gr.Tab("Handwriting (meta-learned)", id="fewshot-handwriting"):
            handwriting.build_panel()


def _build_photos() -> None:
    """Photos panel: support set of named classes of photos, query photos."""
    gr.Markdown(
        "Build a **support set**: 2 to 10 classes, each a name and 1 to 10 images. Then "
        "classify **query** images. The embedded ImageNet network gives features; "
        "the method compares the query with each class's **prototype** (mean feature). "
        "The plot shows the episode in 2-D (PCA): why the query landed where it did.")
    support = gr.State(SupportSet(), time_to_live=3 * 3600)
    with gr.Row():
        with gr.Column():
            gr.Markdown("### 1. Support set")
            class_name = gr.Textbox(label="Class name", placeholder="e.g. cat")
            class_files = UploadFiles(label="Images of this class (1 to 10)",
                                  file_count="multiple", file_types=["image"])
            class_photo = UploadImage(type="filepath", label="...or one photo (webcam / upload)",
                                      sources=["upload", "webcam", "clipboard"], height=200)
            with gr.Row():
                add = gr.Button("Add to support set", variant="primary")
                example = gr.Button("Load example (cat vs coffee)")
            with gr.Row():
                class_list = gr.Dropdown([], label="Class", interactive=True)
                remove = gr.Button("Remove class")
                clear = gr.Button("Clear all")
            summary = gr.Markdown(_summary(SupportSet()), label="summary")
            gallery = gr.Gallery(label="Support images", columns=6, height=220)
        with gr.Column():
            gr.Markdown("### 2. Query")
            query_files = UploadFiles(label="Query images", file_count="multiple",
                                  file_types=["image"])
            query_photo = UploadImage(type="filepath", label="...or one photo (webcam / upload)",
                                      sources=["upload", "webcam", "clipboard"], height=200)
            with gr.Row():
                method = gr.Dropdown([(method_class(m).short_title, m) for m in photo_methods()],
                                     value=DEFAULT_METHOD, label="Method")
                backbone = gr.Dropdown(task_models("fewshot"), value=default_model("fewshot"),
                                       label="Backbone")
            run = gr.Button("Classify", variant="primary")
            label = gr.Label(label="Query 1: class probabilities")
            table = gr.Dataframe(label="All queries", interactive=False,
                                 headers=["query", "prediction"])
            plot = gr.Plot(label="Embedding space")
            details = gr.Markdown(label="details")
    gr.Examples([[str(p)] for p in sorted((EXAMPLES / "query").glob("*.jpg"))],
                inputs=[query_photo], label="Example queries")
    view = [support, gallery, summary, class_list]
    add.click(add_class, [support, class_name, class_files, class_photo], view,
              api_name="fewshot_add_class", concurrency_id="cpu")
    example.click(load_example, [support], view, api_name="fewshot_load_example")
    remove.click(remove_class, [support, class_list], view, api_name="fewshot_remove_class")
    clear.click(clear_support, [support], view, api_name="fewshot_clear")
    run.click(classify, [support, query_files, query_photo, method, backbone],
              [label, table, plot, details], api_name="fewshot_classify",
              concurrency_id="cpu")
