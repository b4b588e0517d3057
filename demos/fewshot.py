"""Few-shot tab: build a support set in the browser, then classify query photos.

The support set lives in this browser session's ``gr.State`` (an
:class:`engine.fewshot.support.SupportSet`, never shared between visitors); the pipeline keeps
the support images' features in its own cache, so a new query does not re-embed them. The
Handwriting panel (:mod:`demos.handwriting`) follows the same add / load example / clear design.

Class names are the user's own text, shown verbatim everywhere: escaped in Markdown
(:func:`demos.common.escape_markdown`), drawn without math text in the plot, and given their
own ``p(<class>)`` columns in the results table, so a class called "Ba$$in", "<b>x</b>" or
"prediction" changes nothing but its label. Names are NFC-normalised and spaces collapsed
(:func:`engine.inputs.text.normalize_name`); a name equal to an existing class up to case, spaces
and Unicode form adds to that class, and the summary says so.
"""
from __future__ import annotations

import re
from pathlib import Path

import gradio as gr
import pandas as pd

from demos import handwriting
from PIL import Image

from demos.common import (STATE_IMAGE_SIDE, ProbabilityLabel, UploadFiles, UploadImage,
                          clear_outputs_js, escape_markdown, file_path, handle_errors,
                          label_value, notes_markdown, papers_panel, recipe_file,
                          reproduce_file, user_image)
from engine.factory import choose_pipeline, default_model, task_models
from engine.fewshot.methods import method_class
from engine.fewshot.photos import DEFAULT_METHOD, PHOTO_LIMITS, photo_methods
from engine.fewshot.support import SupportSet, check_addition, read_support_folder
from engine.inputs.images import small_image_note
from engine.inputs.text import TextInputError, clean_text, normalize_name
from engine.recipe import fewshot_output, image_input, make_recipe
from engine.viz import embedding_figure

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples" / "fewshot"
MAX_NAME_CHARS = 60
MAX_QUERIES = 20
#: Labels of the two query inputs (both are used; messages name the input a bad file is in).
QUERY_FILES_LABEL = "Query images (1 to 20)"
QUERY_PHOTO_LABEL = "+ one more query photo (webcam / upload / paste)"
#: Labels of the two inputs of a class's images (both are used).
CLASS_FILES_LABEL = "Images of this class (1 to 10)"
CLASS_PHOTO_LABEL = "+ one more photo of this class (webcam / upload / paste)"
#: Fixed columns of the "All queries" table; class probabilities are "p(<class>)" columns.
TABLE_COLUMNS = ("query", "file", "prediction")


def _summary(support: SupportSet) -> str:
    if not support.n_classes:
        return "*The support set is empty: add at least two classes.*"
    counts = support.counts()
    rows = "\n".join(f"| {i} | {escape_markdown(name)} | {n} |"
                     for i, (name, n) in enumerate(zip(support.names, counts), start=1))
    shots = sorted(set(counts))
    k = f"{shots[0]}" if len(shots) == 1 else f"{shots[0]}-{shots[-1]}"
    return (f"**{support.n_classes}-way {k}-shot support set**\n\n| # | class | images |\n"
            f"|---|---|---|\n" + rows)


def _view(support: SupportSet, notes: list[str] | None = None):
    """(state, gallery, summary, class dropdown): what every support-set event returns."""
    names = list(support.names)
    gallery = [(img, name) for name, images in support.classes() for img in images]
    summary = _summary(support) + ("\n\n" + notes_markdown([escape_markdown(n) for n in notes])
                                   if notes else "")
    return support, gallery, summary, gr.update(choices=names, value=names[-1] if names else None)


def _class_name(name: str | None) -> tuple[str, list[str]]:
    """The typed class name, cleaned and NFC-normalised, and notes (e.g. it was cut)."""
    try:
        cleaned = clean_text(name, field="class name", max_chars=MAX_NAME_CHARS)
    except TextInputError:
        raise gr.Error("Type a class name first (e.g. 'cat').") from None
    return normalize_name(cleaned.text), list(cleaned.notes)


def _upload_name(up) -> str:
    """The file name of an upload as the user named it (Gradio keeps it in the cached path)."""
    path = file_path(up)
    return Path(path).name if isinstance(path, str) else "pasted image"


def _load_uploads(uploads: list[tuple[object, str]], what: str, max_side: int | None = 1024,
                  note_small: bool = False) -> tuple[list[Image.Image], list[str], list[str]]:
    """Decode (upload, input label) pairs: (images, their file names, notes).

    ``note_small`` adds :func:`~engine.inputs.images.small_image_note` for each image (support
    images when they are added; queries get it from the pipeline).

    Raises:
        gr.Error: a file that cannot be read, named with the input it sits in (so a file left
            in the other input is found), e.g. "Query image 'scan.png' (in "Query images")
            cannot be used: ... Remove it from that input and try again."
    """
    images, names, notes = [], [], []
    for i, (up, where) in enumerate(uploads, start=1):
        fname = _upload_name(up)
        try:
            img, n = user_image(up, f"{what} {i}", max_side=max_side)
        except gr.Error as exc:
            raise gr.Error(f"{what[:1].upper()}{what[1:]} '{fname}' (in \"{where}\") cannot be "
                           f"used: {exc.message} Remove it from that input and try again."
                           ) from None
        images.append(img)
        names.append(fname)
        notes += n
        small = small_image_note(img, f"{what} '{fname}'") if note_small else None
        if small:
            notes.append(small)
    return images, names, notes


@handle_errors
def add_class(support: SupportSet | None, name: str, files: list | None, photo=None):
    """Add a class (or more images to an existing class) to the session's support set.

    Args:
        support: the session's support set (gr.State).
        name: class name (non-blank; NFC-normalised, spaces collapsed; a name equal to an
            existing class up to case, spaces and Unicode form adds images to that class, and
            the notes say so).
        files: uploaded image files; photo: one more image (webcam or upload), optional.

    Returns:
        (support, gallery, summary markdown, class dropdown update, and the cleared class
         name, files and photo inputs, ready for the next class).

    Raises:
        gr.Error: blank name, no image, a bad image (named), more than 10 classes or images.
    """
    support = support or SupportSet()
    clean, notes = _class_name(name)
    uploads = [(f, CLASS_FILES_LABEL) for f in files or []]
    if photo is not None:
        uploads.append((photo, CLASS_PHOTO_LABEL))
    if not uploads:
        raise gr.Error(f"Add at least one image for class '{clean}'.")
    target = check_addition(support, clean, len(uploads), PHOTO_LIMITS, merge_case=True)
    if target != clean and target in support.names:
        notes.append(f"'{clean}' was added to the existing class '{target}' (names equal up "
                     f"to case, spaces and Unicode form are one class).")
    images, _, image_notes = _load_uploads(uploads, f"image of class '{target}'", note_small=True,
                                           max_side=STATE_IMAGE_SIDE)
    return (*_view(support.add(target, images), notes + image_notes), "", None, None)


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


def results_table(result, files: list[str]) -> pd.DataFrame:
    """One row per query: number, file name, prediction ("no class preferred: ..." for a tie),
    then one ``p(<class>)`` column per class, so that no class name (even "query" or
    "prediction") can take a fixed column's place."""
    rows = []
    for i, (p, fname) in enumerate(zip(result.predictions, files), start=1):
        answer = (f"no class preferred ({', '.join(p.tied)})" if p.tied else p.label)
        rows.append([i, fname, answer, *[round(v, 4) for v in p.probabilities.values()]])
    columns = [*TABLE_COLUMNS, *[f"p({n})" for n in result.class_names]]
    return pd.DataFrame(rows, columns=columns)


@handle_errors
def classify(support: SupportSet | None, query_files: list | None, query_photo,
             method: str, backbone: str):
    """Classify the query images (both query inputs are used) with the session's support set.

    Returns:
        ({class: p} of the first query, or a tie; table of all queries; embedding plot;
         markdown details).
    """
    return _classify(support, query_files, query_photo, method, backbone)[:4]


@handle_errors
def classify_with_recipe(support: SupportSet | None, query_files: list | None, query_photo,
                         method: str, backbone: str):
    """:func:`classify`'s outputs and the result's reproduce recipe (for a gr.State)."""
    return _classify(support, query_files, query_photo, method, backbone)


def _classify(support, query_files, query_photo, method, backbone):
    uploads = [(f, QUERY_FILES_LABEL) for f in query_files or []]
    if query_photo is not None:
        uploads.append((query_photo, QUERY_PHOTO_LABEL))
    if not uploads:
        raise gr.Error("Add at least one query image to classify.")
    if len(uploads) > MAX_QUERIES:
        raise gr.Error(f"{len(uploads)} query images were given; at most {MAX_QUERIES} at a "
                       f"time.")
    queries, files, notes = _load_uploads(uploads, "query image")
    choice = choose_pipeline("fewshot", backbone)
    if choice.note:
        notes.append(choice.note)
    result = choice.pipeline(support or SupportSet(), queries, method=method)
    title, short = method_class(result.method).title, method_class(result.method).short_title
    fig = embedding_figure(result.support_xy, result.support_labels, result.prototype_xy,
                           result.query_xy, [-1 if p.tied else result.class_names.index(p.label)
                                             for p in result.predictions],
                           result.class_names, title=f"Embedding space (PCA): {short}")
    md = f"**Backbone:** `{result.model}` · **method:** {title} · {result.ms:.0f} ms"
    for i, p in enumerate(result.predictions):  # the pipeline numbers queries; name the files
        named = re.compile(rf"\b([Qq]uery image {i + 1})\b")
        notes += [named.sub(lambda m: f"{m.group(1)} ('{files[i]}')", n) for n in p.notes]
    notes = [*result.notes, *notes]
    if notes:
        md += "\n\n" + notes_markdown([escape_markdown(n) for n in notes])
    first = result.predictions[0]
    support = support or SupportSet()
    inputs = [{**image_input("support", im, None, STATE_IMAGE_SIDE), "class_index": int(y)}
              for im, y in zip(support.images, support.labels)]
    inputs += [image_input("query", im, f, 1024) for im, f in zip(queries, files)]
    recipe = make_recipe("fewshot", inputs, result.model, None,
                         {"method": result.method, "classes": list(support.names)},
                         fewshot_output(result))
    return (label_value(first.probabilities, first.tied), results_table(result, files), fig,
            md, recipe)


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
            class_files = UploadFiles(label=CLASS_FILES_LABEL, file_count="multiple",
                                      file_types=["image"])
            class_photo = UploadImage(type="filepath", label=CLASS_PHOTO_LABEL,
                                      sources=["upload", "webcam", "clipboard"], height=200)
            with gr.Row():
                add = gr.Button("Add to support set", variant="primary")
                example = gr.Button("Load example (cat vs coffee)")
            with gr.Row():
                class_list = gr.Dropdown([], label="Class", interactive=True)
                remove = gr.Button("Remove class")
                clear = gr.Button("Clear all")
            summary = gr.Markdown(_summary(SupportSet()), label="summary", latex_delimiters=[])
            gallery = gr.Gallery(label="Support images", columns=5, height=220,
                                 object_fit="contain", fit_columns=False)
        with gr.Column():
            gr.Markdown("### 2. Query")
            query_files = UploadFiles(label=QUERY_FILES_LABEL, file_count="multiple",
                                      file_types=["image"])
            query_photo = UploadImage(type="filepath", label=QUERY_PHOTO_LABEL,
                                      sources=["upload", "webcam", "clipboard"], height=200)
            with gr.Row():
                method = gr.Dropdown([(method_class(m).short_title, m) for m in photo_methods()],
                                     value=DEFAULT_METHOD, label="Method")
                backbone = gr.Dropdown(task_models("fewshot"), value=default_model("fewshot"),
                                       label="Backbone")
            run = gr.Button("Classify", variant="primary")
            label = ProbabilityLabel(label="Query 1: class probabilities")
            table = gr.Dataframe(label="All queries", interactive=False,
                                 headers=list(TABLE_COLUMNS), latex_delimiters=[])
            plot = gr.Plot(label="Embedding space", show_label=False)
            details = gr.Markdown(label="details", latex_delimiters=[])
            reproduce = reproduce_file()
    gr.Examples([[str(p)] for p in sorted((EXAMPLES / "query").glob("*.jpg"))],
                inputs=[query_photo], label="Example queries")
    view = [support, gallery, summary, class_list]
    # a successful add also empties the name and image inputs for the next class; an error
    # leaves them (and shows on the summary only), so the user can fix and add again
    add.click(add_class, [support, class_name, class_files, class_photo],
              [*view, class_name, class_files, class_photo], api_name="fewshot_add_class",
              concurrency_id="cpu", show_progress_on=[gallery, summary])
    example.click(load_example, [support], view, api_name="fewshot_load_example")
    remove.click(remove_class, [support, class_list], view, api_name="fewshot_remove_class")
    clear.click(clear_support, [support], view, api_name="fewshot_clear")
    outputs = [label, table, plot, details]
    # the previous answer goes at once (in the browser), so an error is never shown beside it
    run.click(None, None, outputs, js=clear_outputs_js(outputs), api_name=False)
    recipe = gr.State(None)
    done = run.click(classify_with_recipe, [support, query_files, query_photo, method, backbone],
                     outputs + [recipe], api_name="fewshot_classify", concurrency_id="cpu")
    done.failure(lambda: None, None, reproduce, api_name=False, queue=False)
    done.success(recipe_file, recipe, reproduce, api_name=False, queue=False)
    papers_panel("fewshot")
