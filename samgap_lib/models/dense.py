"""Clicks and boxes drawn into SAM2's dense mask prompt (the from-scratch trick "e").

A SAM2 trained from scratch on a few thousand images does not learn to localise an object from
its prompt *tokens* alone (REFERENCE.md; the book's appendix on the miniature repeats the experiment). Drawing each click as
a disc (+logit for positive, -logit for negative) and each box as a filled rectangle into the
low-resolution mask input gives the decoder a local signal it learns within minutes. A model
trained this way must be prompted the same way: `DensePromptSegmenter` wraps any
`PromptSegmenter` and does it, and `dense_spec(model)` reads the drawing parameters saved in the
checkpoint's config (``samgap_dense_prompt``). `load_sam2` applies the wrapper by itself to a
checkpoint whose config carries that key, so such a model is never prompted the wrong way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import PromptResult, check_prompts

__all__ = ["CONFIG_KEY", "draw_dense_prompts", "dense_spec", "DensePromptSegmenter"]

CONFIG_KEY = "samgap_dense_prompt"


def draw_dense_prompts(
    points: np.ndarray | None,
    labels: np.ndarray | None,
    boxes: np.ndarray | None,
    prev_logits: np.ndarray | None,
    image_hw: tuple[int, int],
    mask_hw: tuple[int, int],
    radius: float = 1.5,
    logit: float = 10.0,
    first_radius: float | None = None,
) -> np.ndarray:
    """Dense mask prompts ``(N, 1, h, w)`` float32 for ``N`` objects.

    Parameters
    ----------
    points, labels
        ``(N, P, 2)`` xy pixels of the image and ``(N, P)`` labels (1, 0, -1 = padding), or None.
    boxes
        ``(N, 4)`` xyxy pixels, or None.
    prev_logits
        ``(N, 1, h, w)`` logits of the previous prediction, or None. When given, it is the base
        the clicks are painted on (the box is already in it); otherwise the base is the filled
        box (+logit inside, -logit outside) or zeros.
    image_hw, mask_hw
        Size of the image the coordinates live in, and of the mask prompt.
    radius
        Click disc radius in mask-prompt pixels.
    logit
        Magnitude drawn.
    first_radius
        Disc radius of each object's first click (``points[:, 0]``); None: ``radius``. A first
        click says "this object" and may be drawn wide; corrections mark small errors.
    """
    h, w = mask_hw
    sy, sx = h / image_hw[0], w / image_hw[1]
    n = next(len(a) for a in (points, boxes, prev_logits) if a is not None)
    yy = (np.arange(h) + 0.5)[:, None]
    xx = (np.arange(w) + 0.5)[None, :]
    if prev_logits is not None:
        out = np.clip(np.asarray(prev_logits, np.float32).reshape(n, h, w), -logit, logit).copy()
    elif boxes is not None:
        b = np.asarray(boxes, np.float32)
        inside = (
            (xx[None] >= b[:, 0, None, None] * sx)
            & (xx[None] <= b[:, 2, None, None] * sx)
            & (yy[None] >= b[:, 1, None, None] * sy)
            & (yy[None] <= b[:, 3, None, None] * sy)
        )
        out = np.where(inside, logit, -logit).astype(np.float32)
    else:
        out = np.zeros((n, h, w), np.float32)
    if points is not None:
        pts = np.asarray(points, np.float32)
        lab = np.asarray(labels)
        for k in range(pts.shape[1]):
            r = first_radius if (k == 0 and first_radius is not None) else radius
            cx = (pts[:, k, 0] + 0.5) * sx
            cy = (pts[:, k, 1] + 0.5) * sy
            disc = (xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2 <= r**2
            for value, sel in ((logit, lab[:, k] == 1), (-logit, lab[:, k] == 0)):
                m = disc & sel[:, None, None]
                out[m] = value
    return out[:, None]


def dense_spec(model_or_config: Any) -> dict[str, float] | None:
    """The drawing parameters a checkpoint was trained with, or None (a normal SAM2)."""
    cfg = getattr(model_or_config, "config", model_or_config)
    spec = getattr(cfg, CONFIG_KEY, None)
    return dict(spec) if spec else None


class DensePromptSegmenter:
    """A `PromptSegmenter` that also draws each prompt into the dense mask input.

    Parameters
    ----------
    inner
        A transformers `PromptSegmenter` (``samgap_lib.models.load_sam2(folder)``).
    radius, logit, first_radius
        Drawing parameters (`draw_dense_prompts`); default: those saved in the model's config.
    """

    def __init__(
        self,
        inner: Any,
        radius: float | None = None,
        logit: float | None = None,
        first_radius: float | None = None,
    ) -> None:
        spec = dense_spec(inner.model) or {}
        self.inner = inner
        self.radius = float(radius if radius is not None else spec.get("radius", 1.5))
        self.logit = float(logit if logit is not None else spec.get("logit", 10.0))
        first = first_radius if first_radius is not None else spec.get("first_radius")
        self.first_radius = None if first is None else float(first)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def set_image(self, image: np.ndarray) -> None:
        self.inner.set_image(image)

    def predict(
        self,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
    ) -> PromptResult:
        """As ``inner.predict``, with the clicks and boxes drawn into ``mask_input``."""
        p = check_prompts(points, point_labels, boxes, mask_input)
        _, image_hw = self.inner.image_embeddings
        drawn = draw_dense_prompts(
            p.points,
            p.labels,
            p.boxes,
            p.mask_input,
            image_hw,
            tuple(self.inner.mask_input_size),
            self.radius,
            self.logit,
            self.first_radius,
        )
        return self.inner.predict(p.points, p.labels, p.boxes, drawn[:, 0], multimask)
