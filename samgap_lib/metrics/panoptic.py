"""Panoptic quality (PQ) of an instance set: one number that charges misses and false positives.

Kirillov, He, Girshick, Rother, Dollár, "Panoptic Segmentation", CVPR 2019, eq. (1):

    PQ = sum_{(p, g) in TP} IoU(p, g) / (|TP| + |FP| / 2 + |FN| / 2)

with a prediction and a ground-truth segment matched when their IoU exceeds 0.5 (such a match
is unique for non-overlapping predictions; for overlapping ones we take the Hungarian matching
of `match_detections`, which contains every IoU > 0.5 pair when the predictions do not
overlap). PQ = SQ x RQ: mean matched IoU times an F1 of detection. Both empty: PQ = 1.

samgap uses it to put SAM2 (one mask per clicked instance: a mask with IoU <= 0.5 is both a
miss and a false positive) and SAM3 (a set of detections per phrase) on one scale per image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .concept import match_detections
from .masks import as_mask_stack

__all__ = ["panoptic_quality"]


def panoptic_quality(
    pred_masks: Any, gt_masks: Any, scores: Any | None = None, score_threshold: float = 0.5
) -> dict[str, float]:
    """PQ, SQ and RQ of ``(M, H, W)`` predictions against ``(N, H, W)`` ground truth.

    Predictions with ``score >= score_threshold`` count (all when ``scores`` is None).
    Returns ``{"PQ", "SQ", "RQ", "TP", "FP", "FN"}``; SQ is NaN without a match.
    """
    p = as_mask_stack(pred_masks, "pred_masks")
    g = as_mask_stack(gt_masks, "gt_masks")
    if p.ndim != 3 or g.ndim != 3:
        raise ValueError(
            f"pred_masks {p.shape} and gt_masks {g.shape} must be (M, H, W) and (N, H, W)."
        )
    n_pred = len(p) if scores is None else int((np.asarray(scores, float) >= score_threshold).sum())
    pi, gi, ious = match_detections(p, g, scores, score_threshold, iou_threshold=0.5)
    ious = ious[ious > 0.5]
    tp = len(ious)
    fp, fn = n_pred - tp, len(g) - tp
    if tp + fp + fn == 0:
        return {"PQ": 1.0, "SQ": 1.0, "RQ": 1.0, "TP": 0.0, "FP": 0.0, "FN": 0.0}
    sq = float(ious.mean()) if tp else float("nan")
    rq = tp / (tp + fp / 2 + fn / 2)
    return {
        "PQ": float(ious.sum() / (tp + fp / 2 + fn / 2)),
        "SQ": sq,
        "RQ": float(rq),
        "TP": float(tp),
        "FP": float(fp),
        "FN": float(fn),
    }
