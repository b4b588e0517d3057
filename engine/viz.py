"""Pictures for the lecture: heatmap overlays and the few-shot embedding plot (matplotlib)."""
from __future__ import annotations

import numpy as np
from PIL import Image


def overlay_heatmap(image: Image.Image, heat: np.ndarray, alpha: float = 0.5,
                    cmap: str = "jet", vrange: tuple[float, float] | None = None) -> Image.Image:
    """Blend a heatmap over an image.

    Args:
        image: RGB image (W x H).
        heat: (h, w) float array, any range (min-max scaled here; constant maps show as 0);
            resized bilinearly to the image.
        alpha: heatmap opacity in [0, 1].
        cmap: matplotlib colormap name.
        vrange: (low, high) fixed value range instead of min-max scaling (so a weak map
            stays dark).

    Returns:
        RGB image of the same size as ``image``.
    """
    from matplotlib import colormaps
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32))
    lo, hi = vrange if vrange is not None else (float(heat.min()), float(heat.max()))
    heat = np.clip((heat - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(heat)
    heat_img = Image.fromarray((heat * 255).astype(np.uint8)).resize(image.size,
                                                                      Image.Resampling.BILINEAR)
    colored = colormaps[cmap](np.asarray(heat_img, dtype=np.float32) / 255.0)[..., :3]
    base = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    out = (1 - alpha) * base + alpha * colored
    return Image.fromarray((out * 255).round().clip(0, 255).astype(np.uint8))


def embedding_figure(support_xy: np.ndarray, support_labels: list[int], prototype_xy: np.ndarray,
                     query_xy: np.ndarray, query_pred: list[int], class_names: list[str],
                     title: str = "", query_names: list[str] | None = None):
    """Scatter plot of a few-shot episode in 2-D: support points, prototypes, queries.

    Every text is drawn verbatim: class names are the user's and may hold ``$``, ``_``, ``^``
    or ``\\`` (matplotlib's math text is turned off for them, so "Ba$$in" is not a formula).
    The legend sits below the axes and the axes keep a margin, so no label is cut off.

    Args:
        support_xy: (S, 2) float coordinates; support_labels: S class indices.
        prototype_xy: (N, 2) class prototypes (or class means) in the same space.
        query_xy: (Q, 2); query_pred: Q predicted class indices (-1: no class preferred, a
            tie: drawn gray).
        class_names: N names.
        title: the axes title.
        query_names: Q labels for the queries (default "query 1", "query 2", ...).

    Returns:
        A matplotlib ``Figure`` (caller closes it).
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 5), dpi=100, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    colors = [f"C{i % 10}" for i in range(len(class_names))]
    for c, name in enumerate(class_names):
        pts = support_xy[[i for i, lab in enumerate(support_labels) if lab == c]]
        ax.scatter(pts[:, 0], pts[:, 1], s=40, color=colors[c], alpha=0.7,
                   label=f"support: {name}")
        ax.scatter(prototype_xy[c, 0], prototype_xy[c, 1], s=260, marker="*", color=colors[c],
                   edgecolors="black", linewidths=1.0)
    names = query_names or [f"query {q + 1}" for q in range(len(query_xy))]
    for q, (x, y) in enumerate(query_xy):
        colour = colors[query_pred[q]] if query_pred[q] >= 0 else "lightgray"
        ax.scatter([x], [y], s=140, marker="X", color=colour, edgecolors="black",
                   linewidths=1.2)
        ax.annotate(names[q], (x, y), textcoords="offset points", xytext=(6, 6), fontsize=9,
                    parse_math=False, annotation_clip=False)
    ax.scatter([], [], s=200, marker="*", color="gray", edgecolors="black", label="prototype")
    ax.scatter([], [], s=120, marker="X", color="gray", edgecolors="black",
               label="query (colour = prediction)")
    ax.margins(x=0.2, y=0.15)  # room for the query labels inside the axes
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    import textwrap
    ax.set_title(textwrap.fill(title or "Embedding space (PCA of support, prototypes and "
                               "queries)", 60), parse_math=False, fontsize=11)
    legend = ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12),
                       ncol=2 if len(class_names) + 2 <= 8 else 3, frameon=False)
    for text in legend.get_texts():
        text.set_parse_math(False)
    return fig


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Project (M, D) points onto their first two principal components -> (M, 2) float32.

    Fewer than two informative directions give zeros in the missing coordinates.
    """
    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    centered = x - x.mean(0, keepdims=True)
    if centered.shape[0] < 2 or not np.any(centered):
        return np.zeros((x.shape[0], 2), dtype=np.float32)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    proj = centered @ vt[:2].T
    if proj.shape[1] < 2:
        proj = np.pad(proj, ((0, 0), (0, 2 - proj.shape[1])))
    return proj.astype(np.float32)
