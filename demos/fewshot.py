"""Few-shot tab: build a support set in the browser, then classify query photos.

The support set lives in this browser session's ``gr.State`` (never shared between visitors);
features are cached in it per backbone so a query does not re-embed the support set.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from demos import handwriting
from demos.common import (STATE_IMAGE_SIDE, UploadFiles, UploadImage, handle_errors,
                          hub_or_embedded, notes_markdown, user_image)
from engine.fewshot.pipeline import (MAX_CLASSES, MAX_SHOTS, METHOD_TITLES, FewShotPipeline,
                                      fewshot_backbones)
from engine.inputs.text import TextInputError, clean_text
from engine.viz import embedding_figure

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples" / "fewshot"
EMBEDDED_BACKBONE = "efficientnet_lite0"
MAX_NAME_CHARS = 60
#: Dropdown labels short enough for a half-width column (the full titles go in the results).
SHORT_TITLES = {"protonet": "Prototypical Networks", "cosine": "Cosine (Baseline++)",
                "linear": "Linear head"}
_pipeline = FewShotPipeline()


def _summary(support: list[dict]) -> str:
    if not support:
        return "*The support set is empty: add at least two classes.*"
    rows = "\n".join(f"| {i} | {c['name']} | {len(c['images'])} |"
                     for i, c in enumerate(support, start=1))
    n_way, shots = len(support), sorted({len(c["images"]) for c in support})
    k = f"{shots[0]}" if len(shots) == 1 else f"{shots[0]}-{shots[-1]}"
    return (f"**{n_way}-way {k}-shot support set**\n\n| # | class | images |\n|---|---|---|\n"
            + rows)


def _gallery(support: list[dict]) -> list[tuple]:
    return [(img, c["name"]) for c in support for img in c["images"]]


def _view(support: list[dict], notes: list[str] | None = None):
    names = [c["name"] for c in support]
    return (support, _gallery(support), _summary(support) + (
        "\n\n" + notes_markdown(notes) if notes else ""),
        gr.update(choices=names, value=names[-1] if names else None))


@handle_errors
def add_class(support: list[dict] | None, name: str, files: list | None, photo=None):
    """Add a class (or more images to an existing class) to the session's support set.

    Args:
        support: the session's support set (gr.State).
        name: class name (non-blank; an existing name adds images to that class).
        files: uploaded image files; photo: one more image (webcam or upload), optional.

    Returns:
        (support, gallery, summary markdown, class dropdown update).

    Raises:
        gr.Error: blank name, no image, a bad image (named), more than 10 classes or images.
    """
    support = list(support or [])
    try:
        cleaned = clean_text(name, field="class name", max_chars=MAX_NAME_CHARS)
    except TextInputError:
        raise gr.Error("Type a class name first (e.g. 'cat').") from None
    clean = cleaned.text
    uploads = list(files or []) + ([photo] if photo is not None else [])
    if not uploads:
        raise gr.Error(f"Add at least one image for class '{clean}'.")
    existing = next((c for c in support if c["name"].casefold() == clean.casefold()), None)
    if existing is None and len(support) >= MAX_CLASSES:
        raise gr.Error(f"The support set already has {len(support)} classes; the limit is "
                       f"{MAX_CLASSES}. Remove one first.")
    have = len(existing["images"]) if existing else 0
    if have + len(uploads) > MAX_SHOTS:
        raise gr.Error(f"Class '{clean}' would have {have + len(uploads)} images; the limit "
                       f"is {MAX_SHOTS} per class.")
    images, notes = [], list(cleaned.notes)
    for i, up in enumerate(uploads, start=1):
        img, n = user_image(up, f"image {i} of class '{clean}'",
                            max_side=STATE_IMAGE_SIDE)
        images.append(img)
        notes += n
    if existing:
        existing = {**existing, "images": existing["images"] + images, "features": {}}
        support = [existing if c["name"] == existing["name"] else c for c in support]
    else:
        support.append({"name": clean, "images": images, "features": {}})
    return _view(support, notes)


@handle_errors
def remove_class(support: list[dict] | None, name: str | None):
    """Remove the class called ``name`` from the support set."""
    support = [c for c in (support or []) if c["name"] != name]
    return _view(support)


def clear_support(support: list[dict] | None = None):
    """Empty the session's support set."""
    return _view([])


@handle_errors
def load_example(support: list[dict] | None = None):
    """Replace the support set with the bundled example (cat vs coffee, 3 shots each)."""
    support = []
    for folder in sorted(p for p in (EXAMPLES / "support").iterdir() if p.is_dir()):
        images = [user_image(str(f), "example image", max_side=STATE_IMAGE_SIDE)[0]
                  for f in sorted(folder.glob("*.jpg"))]
        support.append({"name": folder.name, "images": images, "features": {}})
    return _view(support)


@handle_errors
def classify(support: list[dict] | None, query_files: list | None, query_photo,
             method: str, backbone: str):
    """Classify the query images with the session's support set.

    Returns:
        (support with cached features, {class: p} of the first query, table of all queries,
         embedding plot, markdown details).
    """
    support = list(support or [])
    uploads = list(query_files or []) + ([query_photo] if query_photo is not None else [])
    if not uploads:
        raise gr.Error("Add at least one query image to classify.")
    if len(uploads) > 20:
        raise gr.Error(f"{len(uploads)} query images were given; at most 20 at a time.")
    queries, notes = [], []
    for i, up in enumerate(uploads, start=1):
        img, n = user_image(up, f"query image {i}")
        queries.append(img)
        notes += n
    backbone, note = hub_or_embedded(backbone, EMBEDDED_BACKBONE)
    if note:
        notes.append(note)
    pairs = [(c["name"], c["images"]) for c in support]
    from engine.fewshot.pipeline import validate_support
    validate_support(pairs)
    feats = []
    for c in support:
        if backbone not in c["features"]:
            c["features"] = {**c["features"], backbone: _pipeline.embed(c["images"], backbone)}
        feats.append(c["features"][backbone])
    result = _pipeline(pairs, queries, method=method, model=backbone, support_features=feats)
    table = pd.DataFrame([{"query": i + 1, "prediction": p.label,
                           **{n: round(v, 4) for n, v in p.probabilities.items()}}
                          for i, p in enumerate(result.predictions)])
    fig = embedding_figure(result.support_xy, result.support_labels, result.prototype_xy,
                           result.query_xy, [result.class_names.index(p.label)
                                             for p in result.predictions],
                           result.class_names, title=f"{METHOD_TITLES[method]}")
    md = f"**Backbone:** `{result.model}` · **method:** {METHOD_TITLES[method]} · " \
         f"{result.ms:.0f} ms"
    if notes:
        md += "\n\n" + notes_markdown(notes)
    return support, result.predictions[0].probabilities, table, fig, md


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
    support = gr.State([], time_to_live=3 * 3600)
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
            summary = gr.Markdown(_summary([]), label="summary")
            gallery = gr.Gallery(label="Support images", columns=6, height=220)
        with gr.Column():
            gr.Markdown("### 2. Query")
            query_files = UploadFiles(label="Query images", file_count="multiple",
                                  file_types=["image"])
            query_photo = UploadImage(type="filepath", label="...or one photo (webcam / upload)",
                                      sources=["upload", "webcam", "clipboard"], height=200)
            with gr.Row():
                method = gr.Dropdown([(SHORT_TITLES[m], m) for m in METHOD_TITLES],
                                     value="protonet", label="Method")
                backbone = gr.Dropdown(fewshot_backbones(), value=EMBEDDED_BACKBONE,
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
              [support, label, table, plot, details], api_name="fewshot_classify",
              concurrency_id="cpu")
