"""Retrieve tab, "Scenes" source: a reference scene + a modification text ranks a gallery of
rendered scenes with a learned composer (ARTEMIS or TIRG, trained on CSS-style scene triplets).

For ARTEMIS each result shows where its two scores come from: the explicit-matching (EM: does
it show what the text asks for?) and implicit-similarity (IS: does it look like the reference
elsewhere?) contributions of each cell of the backbone's 4x4 grid. Clicking a result makes it
the new reference, so edits can be chained.
"""
from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from demos.common import handle_errors, notes_markdown
from engine.factory import SCENE_CIR, clipart_text_search, scene_cir_models, scene_retrieval
from engine.viz import overlay_heatmap

#: Columns of the scores table.
TABLE_COLUMNS = ["rank", "scene", "score", "EM (text)", "IS (reference)", "the edit's target?"]
#: Side of the images shown (renders are 128 px).
SHOW_SIDE = 192


def _show(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image).resize((SHOW_SIDE, SHOW_SIDE), Image.BICUBIC)


def _scene(scene) -> int:
    if scene is None or (isinstance(scene, str) and not scene.strip()):
        raise gr.Error("Choose a reference scene by its number first.")
    try:
        value = float(scene)
    except (TypeError, ValueError):
        raise gr.Error(f"The scene must be a whole number (got {scene!r}).") from None
    if not value.is_integer():
        raise gr.Error(f"The scene must be a whole number (got {scene!r}).")
    return int(value)


@handle_errors
def scene_reference(scene, model: str = SCENE_CIR):
    """The reference scene's image and the edits whose target is in the gallery.

    Returns:
        (reference image, suggestions dropdown update, markdown).

    Raises:
        gr.Error: not a scene number of the gallery.
    """
    pipe = scene_retrieval(model)
    i = _scene(scene)
    n = len(pipe.gallery)
    if not 0 <= i < n:
        raise gr.Error(f"Choose a scene between 0 and {n - 1} (got {i}).")
    from engine.retrieval.scene_search import _render
    hints = pipe.gallery.suggestions(i)
    md = (f"Scene {i} of {n}. " + ("Edits with their answer in the gallery are listed below; "
          "any other wording works too." if hints else
          "This scene is itself an edit: no listed edit starts from it (any text works)."))
    return (_show(_render(pipe.gallery.scenes[i])),
            gr.update(choices=hints, value=hints[0] if hints else None), md)


@handle_errors
def retrieve_scenes(scene, text: str, model: str = SCENE_CIR, top_k: float = 8):
    """Rank the scene gallery for (reference scene, modification text).

    Returns:
        (results [(image, caption)], scores table, attention maps [(image, caption)],
        details markdown, shown gallery indices).

    Raises:
        gr.Error: no or bad scene, empty text, unknown model, bad number of results.
    """
    if top_k is None or not float(top_k).is_integer():
        raise gr.Error(f"Results must be a whole number (got {top_k!r}).")
    pipe = scene_retrieval(model)
    result = pipe(_scene(scene), text, top_k=int(top_k))
    items, maps, rows = [], [], []
    for r, m in enumerate(result.matches, start=1):
        mark = {True: " ✓", False: "", None: ""}[m.is_target]
        items.append((_show(m.image), f"#{r} scene {m.index}{mark}"))
        rows.append({"rank": r, "scene": m.index, "score": round(m.score, 2),
                     "EM (text)": None if m.em is None else round(m.em, 3),
                     "IS (reference)": None if m.is_ is None else round(m.is_, 3),
                     "the edit's target?": {True: "yes", False: "no", None: "-"}[m.is_target]})
        if m.maps:
            for part, label in (("em", "EM"), ("is", "IS")):
                maps.append((overlay_heatmap(_show(m.image), m.maps[part], alpha=0.45),
                             f"#{r} {label} {getattr(m, 'em' if part == 'em' else 'is_'):+.2f}"))
    if result.reference_map is not None:
        maps.insert(0, (overlay_heatmap(_show(result.reference_image), result.reference_map,
                                        alpha=0.45), "reference: IS vs #1"))
    known = [m.is_target for m in result.matches if m.is_target is not None]
    md = [f"**Model:** `{result.model}` · {len(pipe.gallery)} scenes · {result.ms:.0f} ms"]
    if known:
        md.append("✓ = has the scene graph of this edit's target (a known edit of the gallery).")
    md += [notes_markdown(result.notes)] if result.notes else []
    return (items, pd.DataFrame(rows, columns=TABLE_COLUMNS), maps, "\n\n".join(md),
            [m.index for m in result.matches])


def cleared():
    """Empty outputs after a failed search: (results, table, maps, details, shown)."""
    return [], pd.DataFrame(columns=TABLE_COLUMNS), [], "", []


@handle_errors
def select_scene_result(shown: list | None, rank: float | None):
    """Make result number ``rank`` (1 = best) of this session's last scene search the new
    reference scene; returns its scene number.

    Raises:
        gr.Error: no search yet, or no result with that rank.
    """
    if not shown:
        raise gr.Error("There are no results to choose from yet: run a search first, then pick "
                       "one of its results.")
    if rank is None or not float(rank).is_integer() or not 1 <= int(rank) <= len(shown):
        raise gr.Error(f"Choose a result by its rank: 1 to {len(shown)} (got {rank}).")
    return shown[int(rank) - 1]


def _clicked(evt: gr.SelectData) -> int | None:
    return None if evt.index is None else int(evt.index) + 1


@handle_errors
def search_clipart(text: str, top_k: float = 8):
    """Held-out clip-art drawings ranked for a text by the LiT projections.

    Returns:
        (results [(image, caption)], details markdown).

    Raises:
        gr.Error: empty text, no English word, bad number of results.
    """
    if top_k is None or not float(top_k).is_integer():
        raise gr.Error(f"Results must be a whole number (got {top_k!r}).")
    search = clipart_text_search()
    results, notes = search(text, top_k=int(top_k))
    items = [(Image.fromarray(r["image"]).resize((SHOW_SIDE, SHOW_SIDE), Image.BICUBIC),
              f"#{k} {r['score']:+.2f} {r['caption'][:60]}") for k, r in enumerate(results, 1)]
    md = [f"**LiT projections** over {len(search)} held-out openclipart drawings (trained on "
          f"865 others; with the drawings' own captions as queries, text->image R@10 53.5 % "
          f"vs ConSE 11.8 %; short free text like \"a horse\" is read much less well: "
          f"docs/retrieval.md)."]
    md += [notes_markdown(notes)] if notes else []
    return items, "\n\n".join(md)


def build(ttl_s: int) -> None:
    """Add the Scenes accordion to the current Retrieve tab."""
    with gr.Accordion("Search clip art by text (LiT)", open=False):
        gr.Markdown("Type what a drawing shows; learned projections of EfficientNet-Lite0 and "
                    "MiniLM (LiT-style, trained on openclipart captions) rank held-out drawings.")
        with gr.Row():
            query = gr.Textbox(label="Search text", value="a dog", max_lines=1, scale=3)
            shown_n = gr.Slider(1, 30, value=8, step=1, label="Drawings shown", scale=1)
        search_button = gr.Button("Search drawings")
        found = gr.Gallery(label="Drawings", columns=8, height="auto", allow_preview=False)
        found_md = gr.Markdown()
        search_button.click(search_clipart, [query, shown_n], [found, found_md],
                            api_name="retrieve_clipart_text", concurrency_id="cpu")
    models = scene_cir_models()
    with gr.Accordion("Scenes: learned composed retrieval (ARTEMIS / TIRG)", open=False):
        if not models:
            gr.Markdown("No scene composer is installed (`python -m engine train-scene-cir`).")
            return
        gr.Markdown(
            "Pick a **reference scene** and say how the wanted scene differs (\"make the large "
            "cube purple\", \"remove the red sphere\"). A composer trained on CSS-style scene "
            "triplets ranks a gallery of rendered scenes. ARTEMIS scores **EM** (does the "
            "scene show what the text asks for?) + **IS** (does it look like the reference "
            "elsewhere?); the maps show which cells give each score. Click a result to make it "
            "the new reference. Measured Recall@K: docs/retrieval.md.")
        shown = gr.State([], time_to_live=ttl_s)
        with gr.Row():
            with gr.Column():
                scene = gr.Number(value=0, precision=0, label="Reference scene (number)")
                ref_image = gr.Image(label="Reference scene", height=200, interactive=False)
                hints = gr.Dropdown([], label="Edits with an answer in the gallery",
                                    allow_custom_value=False)
                text = gr.Textbox(label="Scene modification text", max_lines=2)
                with gr.Row():
                    model = gr.Dropdown(models, value=models[0], label="Composer")
                    top_k = gr.Slider(1, 30, value=8, step=1, label="Scenes shown")
                button = gr.Button("Retrieve scenes", variant="primary")
                info = gr.Markdown()
            with gr.Column():
                results = gr.Gallery(label="Scene results (click one to refine from it)", columns=4,
                                     height="auto", allow_preview=False)
                table = gr.Dataframe(headers=TABLE_COLUMNS, interactive=False,
                                     label="Scores (ARTEMIS: score = EM + IS, scaled)")
                maps = gr.Gallery(label="ARTEMIS attention: EM and IS per result", columns=6,
                                  height="auto", allow_preview=True)
                details = gr.Markdown()
        reference_outputs = [ref_image, hints, info]
        scene.submit(scene_reference, [scene, model], reference_outputs,
                     api_name="retrieve_scenes_reference")
        scene.blur(scene_reference, [scene, model], reference_outputs, api_visibility="private")
        hints.change(lambda h: h or gr.update(), hints, text, api_visibility="private",
                     queue=False)
        outputs = [results, table, maps, details, shown]
        button.click(retrieve_scenes, [scene, text, model, top_k], outputs,
                     api_name="retrieve_scenes", concurrency_id="cpu"
                     ).failure(cleared, None, outputs, api_name=False, queue=False)
        rank = gr.Number(visible=False, precision=0, label="Result rank (1 = best)")
        results.select(_clicked, None, rank, api_visibility="private", queue=False).then(
            select_scene_result, [shown, rank], [scene], api_name="retrieve_scenes_select"
        ).success(scene_reference, [scene, model], reference_outputs, api_visibility="private")
