"""Figures for the book: mask overlays, side-by-side panels, prompt markers and curves.

Drawing functions return arrays (`overlay_masks`) or take a matplotlib Axes, so chapters compose
them freely; nothing here computes a metric.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .data.types import Sample

__all__ = [
    "PALETTE",
    "png_bytes",
    "overlay_masks",
    "draw_points",
    "show_samples",
    "show_panels",
]

# Colour-blind-friendly palette (Okabe-Ito), cycled over instances.
PALETTE = np.array(
    [
        (0, 114, 178),
        (230, 159, 0),
        (0, 158, 115),
        (204, 121, 167),
        (86, 180, 233),
        (213, 94, 0),
        (240, 228, 66),
        (255, 255, 255),
    ],
    dtype=np.float64,
)


def overlay_masks(
    image: np.ndarray,
    masks: np.ndarray,
    alpha: float = 0.45,
    colors: np.ndarray | None = None,
    outline: bool = True,
) -> np.ndarray:
    """Blend an ``(N, H, W)`` bool mask stack over an RGB image; returns a new uint8 image.

    Instance ``k`` gets ``colors[k]`` (default: `PALETTE` cycled); ``outline`` draws each
    mask's 1-pixel inner boundary at full opacity so touching instances stay distinguishable.
    """
    out = np.asarray(image, dtype=np.float64).copy()
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.shape[1:] != out.shape[:2]:
        raise ValueError(
            f"masks of shape {masks.shape[1:]} do not match the image {out.shape[:2]}."
        )
    cols = PALETTE if colors is None else np.asarray(colors, dtype=np.float64)
    for k, m in enumerate(masks):
        c = cols[k % len(cols)]
        out[m] = (1 - alpha) * out[m] + alpha * c
        if outline:
            edge = m & ~ndimage.binary_erosion(m)
            out[edge] = c
    return np.clip(out, 0, 255).astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an RGB uint8 image as PNG bytes (for ipywidgets.Image and HTML)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def figure_png(fig, dpi: int = 100) -> bytes:
    """Render a matplotlib Figure to PNG bytes (for ipywidgets.Image)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def draw_points(ax, points: np.ndarray, labels: np.ndarray | None = None, size: float = 60) -> None:
    """Draw ``(N, 2)`` xy clicks: positives as green stars, negatives as red crosses."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    lab = np.ones(len(pts), int) if labels is None else np.asarray(labels).reshape(-1)
    pos, neg = pts[lab == 1], pts[lab == 0]
    # pixel (x, y) has its centre at x + 0.5 in our convention; imshow puts it at x
    if len(pos):
        ax.scatter(
            pos[:, 0] - 0.5,
            pos[:, 1] - 0.5,
            marker="*",
            s=size,
            c="lime",
            edgecolors="black",
            linewidths=0.6,
        )
    if len(neg):
        ax.scatter(
            neg[:, 0] - 0.5,
            neg[:, 1] - 0.5,
            marker="X",
            s=size * 0.8,
            c="red",
            edgecolors="black",
            linewidths=0.6,
        )


def show_panels(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    size: float = 3.0,
):
    """Grid of images with titles; returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, img in enumerate(images):
        ax = axes.flat[k]
        ax.imshow(img)
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
    fig.tight_layout()
    return fig


def show_samples(samples: Sequence[Sample], ncols: int = 4, size: float = 3.0, title=None):
    """Each sample's image with its instance masks overlaid; ``title(sample) -> str`` optional."""
    overlays = [overlay_masks(s.image, s.masks) for s in samples]
    titles = [title(s) if title else f"{s.image_id}: {len(s.instances)} apples" for s in samples]
    return show_panels(overlays, titles, ncols=ncols, size=size)
