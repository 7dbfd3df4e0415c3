"""Model-free segmenters with the `PromptSegmenter` interface, for evaluation tests."""

from __future__ import annotations

import numpy as np

from samgap_lib.models.base import PromptResult


class DiscSegmenter:
    """Predicts a disc of radius r around each object's positive clicks (no model)."""

    backend = "fake"

    def __init__(self, shape, r=4):
        self.shape, self.r = shape, r
        self.calls = 0

    def set_image(self, image):
        pass

    def predict(self, points=None, point_labels=None, boxes=None, mask_input=None, multimask=True):
        self.calls += 1
        yy, xx = np.mgrid[: self.shape[0], : self.shape[1]]
        masks = []
        for pts, lab in zip(points, point_labels, strict=True):
            m = np.zeros(self.shape, bool)
            for (x, y), label in zip(pts, lab, strict=True):
                d = (xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= self.r**2
                m = m | d if label == 1 else m & ~d
            masks.append(m)
        masks = np.stack(masks)
        n = len(masks)
        logits = np.zeros((n, 8, 8), np.float32)
        if multimask:
            return PromptResult(
                np.repeat(masks[:, None], 3, 1),
                np.tile([0.1, 0.9, 0.2], (n, 1)),
                np.repeat(logits[:, None], 3, 1),
                np.zeros(n),
            )
        return PromptResult(masks, np.ones(n), logits, np.zeros(n))


class RectSegmenter(DiscSegmenter):
    """A `DiscSegmenter` that answers boxes with the filled box (the image's size from
    ``set_image``)."""

    def __init__(self, r=4):
        super().__init__((0, 0), r)

    def set_image(self, image):
        self.shape = image.shape[:2]

    def predict(self, points=None, point_labels=None, boxes=None, mask_input=None, multimask=True):
        if boxes is None:
            return super().predict(points, point_labels, boxes, mask_input, multimask)
        self.calls += 1
        masks = np.zeros((len(boxes), *self.shape), bool)
        for m, (x0, y0, x1, y1) in zip(masks, np.asarray(boxes).astype(int), strict=True):
            m[y0:y1, x0:x1] = True
        n = len(masks)
        return PromptResult(masks, np.ones(n), np.zeros((n, 8, 8), np.float32), np.zeros(n))
