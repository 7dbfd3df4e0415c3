"""A simulated interactive segmenter, to show what NoC and mIoU@k measure without a model.

`disc_predictor` answers clicks the way an idealised promptable model would: a positive click
claims the object's pixels within a reach of it, a negative click removes the false positives
within that reach, and the mask's boundary may carry a fixed error of a few pixels (models that
decode masks at low resolution and upsample them have one). `simulate_clicks` drives it through
the RITM click loop (`samgap_lib.evaluation.click_loop` with `samgap_lib.prompts.Clicker`) for every
instance of a dataset; `samgap_lib.metrics.noc` turns the result into NoC@t, NoF@t and mIoU@k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.types import Sample, check_mask
from ..evaluation import click_loop
from .perturb import dilate

__all__ = ["disc_predictor", "simulate_clicks"]


def disc_predictor(gt_mask: Any, reach: float = 0.5, boundary_error: int = 0):
    """A fake promptable segmenter for one object, for `samgap_lib.evaluation.click_loop`.

    The predicted mask after clicks ``P`` (positive) and ``N`` (negative) is

    ``(T & D(P)) & ~(~gt & D(N))``,

    where ``T`` is the ground truth dilated by ``boundary_error`` pixels (a systematic boundary
    error outwards), ``D(X)`` the pixels within ``reach_px`` of any click of ``X`` and
    ``reach_px = max(1, reach * sqrt(area / pi))`` (``reach`` is relative to the object's
    equivalent radius: 1 covers a round object from its centre). Negative clicks only remove
    false positives, so each click helps (an "oracle-ish" model).

    Parameters
    ----------
    gt_mask
        ``(H, W)`` ground truth (non-empty).
    reach
        Reach of a click as a fraction of the equivalent radius (> 0).
    boundary_error
        Outward boundary error in whole pixels (>= 0).

    Returns
    -------
    callable
        ``predict(points, labels, prev_logits) -> (mask, None)`` with ``points`` ``(n, 2)`` xy.
    """
    gt = check_mask(gt_mask, what="gt_mask")
    if not gt.any():
        raise ValueError("disc_predictor: the ground-truth mask is empty.")
    if not (math.isfinite(reach) and reach > 0):
        raise ValueError(f"reach must be a number > 0, got {reach!r}.")
    if (
        isinstance(boundary_error, bool)
        or int(boundary_error) != boundary_error
        or boundary_error < 0
    ):
        raise ValueError(f"boundary_error must be a whole number >= 0, got {boundary_error!r}.")
    target = dilate(gt, int(boundary_error)) if boundary_error else gt
    reach_px = max(1.0, reach * math.sqrt(gt.sum() / math.pi))
    ys, xs = np.nonzero(target)
    pad = int(math.ceil(reach_px)) + 1
    h, w = gt.shape
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, h)
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, w)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    t_crop = target[y0:y1, x0:x1]
    fp_crop = t_crop & ~gt[y0:y1, x0:x1]

    def predict(points: np.ndarray, labels: np.ndarray, _prev: Any) -> tuple[np.ndarray, None]:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        lab = np.asarray(labels).reshape(-1)
        if len(pts) != len(lab):
            raise ValueError(f"{len(pts)} points but {len(lab)} labels.")
        pos = np.zeros_like(t_crop)
        neg = np.zeros_like(t_crop)
        for (x, y), label in zip(pts, lab, strict=True):
            near = (xx - x) ** 2 + (yy - y) ** 2 <= reach_px**2
            if label:
                pos |= near
            else:
                neg |= near
        out = np.zeros((h, w), dtype=bool)
        out[y0:y1, x0:x1] = t_crop & pos & ~(fp_crop & neg)
        return out, None

    return predict


def simulate_clicks(
    samples: Sequence[Sample],
    reach: float = 0.5,
    boundary_error: int = 0,
    max_clicks: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the RITM click loop with `disc_predictor` on every instance of ``samples``.

    Returns
    -------
    ious, diameters
        ``(N, max_clicks)`` float64 IoU after each click for the ``N`` instances (all clicks are
        run, so mIoU@k is defined for every k) and their ``(N,)`` equivalent diameters
        ``2 sqrt(area / pi)``. Pass ``ious`` to `samgap_lib.metrics.noc`.
    """
    rows, diam = [], []
    for s in samples:
        for inst in s.instances:
            fn = disc_predictor(inst.mask, reach, boundary_error)
            rows.append(click_loop(fn, inst.mask, max_clicks=max_clicks))
            diam.append(2.0 * math.sqrt(inst.area / math.pi))
    if not rows:
        raise ValueError("simulate_clicks: the samples have no instances.")
    return np.stack(rows), np.asarray(diam, dtype=np.float64)
