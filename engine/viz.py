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
                     title: str = ""):
    """Scatter plot of a few-shot episode in 2-D: support points, prototypes, queries.

    Args:
        support_xy: (S, 2) float coordinates; support_labels: S class indices.
        prototype_xy: (N, 2) class prototypes (or class means) in the same space.
        query_xy: (Q, 2); query_pred: Q predicted class indices.
        class_names: N names.

    Returns:
        A matplotlib ``Figure`` (caller closes it).
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 4.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    colors = [f"C{i % 10}" for i in range(len(class_names))]
    for c, name in enumerate(class_names):
        pts = support_xy[[i for i, lab in enumerate(support_labels) if lab == c]]
        ax.scatter(pts[:, 0], pts[:, 1], s=40, color=colors[c], alpha=0.7,
                   label=f"support: {name}")
        ax.scatter(prototype_xy[c, 0], prototype_xy[c, 1], s=260, marker="*", color=colors[c],
                   edgecolors="black", linewidths=1.0)
    for q, (x, y) in enumerate(query_xy):
        ax.scatter([x], [y], s=140, marker="X", color=colors[query_pred[q]], edgecolors="black",
                   linewidths=1.2)
        ax.annotate(f"query {q + 1}", (x, y), textcoords="offset points", xytext=(6, 6),
                    fontsize=9)
    ax.scatter([], [], s=200, marker="*", color="gray", edgecolors="black", label="prototype")
    ax.scatter([], [], s=120, marker="X", color="gray", edgecolors="black",
               label="query (colour = prediction)")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title or "Embedding space (PCA of support, prototypes and queries)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
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
