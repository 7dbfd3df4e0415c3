"""The interactive protocol: simulated RITM clicks (`samgap_lib.prompts.Clicker`) and box prompts.

`click_loop` is RITM's loop for one object and any predictor (``predict_fn``), as RITM's
``isegm/inference/evaluation.py`` runs it; `click_all_instances` runs it for every instance of
an image on a `PromptSegmenter`, batched over instances:

all instances of an image are clicked in lock-step: in round ``k`` each instance gets its
``k``-th RITM click (from its own `Clicker` and its own previous prediction) and one
``predict`` call decodes all of them from the cached image embedding. Round 1 asks for three
candidate masks and keeps the one with the highest predicted IoU (SAM's protocol for an
ambiguous single click); later rounds ask for one mask and feed the previous low-resolution
logits back as the mask prompt, as SAM2's interactive demo and RITM evaluation do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..data.types import check_mask
from ..metrics import iou
from ..prompts.clicker import Click, Clicker

__all__ = [
    "PredictFn",
    "click_all_instances",
    "click_loop",
    "first_click_candidates",
    "prompt_boxes",
    "segment_both",
]

PredictFn = Callable[[np.ndarray, np.ndarray, Any], tuple[np.ndarray, Any]]


def _best(result) -> tuple[np.ndarray, np.ndarray]:
    """Best candidate's masks ``(N, H, W)`` and low-res logits ``(N, 1, h, w)``."""
    if result.masks.ndim == 3:
        return result.masks, result.low_res_logits[:, None]
    idx = result.scores.argmax(axis=1)
    rows = np.arange(len(idx))
    return result.masks[rows, idx], result.low_res_logits[rows, idx][:, None]


def _stack_clicks(clickers: list[Clicker]) -> tuple[np.ndarray, np.ndarray]:
    """The clicks so far of every instance as one batch: points ``(N, K, 2)`` float32 xy and
    labels ``(N, K)``."""
    pts = np.stack([c.points_and_labels()[0] for c in clickers]).astype(np.float32)
    lab = np.stack([c.points_and_labels()[1] for c in clickers])
    return pts, lab


def click_all_instances(
    segmenter, gt_masks: np.ndarray, max_clicks: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``max_clicks`` RITM rounds on every instance of the image set on ``segmenter``.

    Parameters
    ----------
    segmenter
        A `PromptSegmenter` whose ``set_image`` was called with this image.
    gt_masks
        ``(N, H, W)`` bool ground-truth masks (none empty).
    max_clicks
        Clicks per instance.

    Returns
    -------
    ious : ``(N, max_clicks)`` float64
        IoU of each instance's prediction after each click.
    final_masks : ``(N, H, W)`` bool
        The predictions after the last click.
    """
    gt = np.asarray(gt_masks, dtype=bool)
    n = len(gt)
    if n == 0:
        return np.zeros((0, max_clicks)), np.zeros_like(gt)
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be >= 1, got {max_clicks}.")
    clickers = [Clicker(m) for m in gt]
    preds: list[np.ndarray | None] = [None] * n
    logits = None
    ious = np.zeros((n, max_clicks))
    masks = np.zeros_like(gt)
    for k in range(max_clicks):
        for i, c in enumerate(clickers):
            c.next_click(preds[i])
        pts, lab = _stack_clicks(clickers)
        if k == 0:
            res = segmenter.predict(points=pts, point_labels=lab, multimask=True)
        else:
            res = segmenter.predict(
                points=pts, point_labels=lab, mask_input=logits, multimask=False
            )
        masks, logits = _best(res)
        ious[:, k] = iou(masks, gt)
        preds = list(masks)
    return ious, masks


def first_click_candidates(segmenter, gt_masks: np.ndarray) -> dict[str, np.ndarray]:
    """Every candidate's answer to the first RITM click of each instance.

    The first click of `click_all_instances` (each instance's most interior point), decoded
    twice from the image already set on ``segmenter``: once asking for candidates
    (``multimask=True``, SAM's protocol for one click) and once for a single mask.
    `samgap_lib.metrics.candidate_selection` turns the first two arrays into the confident and
    oracle mIoU.

    Returns
    -------
    dict
        ``ious`` ``(N, C)`` and ``scores`` ``(N, C)``: each candidate's IoU with its instance and
        its predicted IoU (``C = 1`` for a segmenter that answers with one mask);
        ``single_ious`` ``(N,)``: the IoU of the single-mask answer.
    """
    gt = np.asarray(gt_masks, dtype=bool)
    if len(gt) == 0:
        return {"ious": np.zeros((0, 1)), "scores": np.zeros((0, 1)), "single_ious": np.zeros(0)}
    clickers = [Clicker(m) for m in gt]
    for c in clickers:
        c.next_click(None)
    pts, lab = _stack_clicks(clickers)
    res = segmenter.predict(points=pts, point_labels=lab, multimask=True)
    masks = res.masks if res.masks.ndim == 4 else res.masks[:, None]
    scores = np.asarray(res.scores, dtype=np.float64).reshape(len(gt), masks.shape[1])
    ious = np.stack([np.atleast_1d(iou(masks[:, k], gt)) for k in range(masks.shape[1])], 1)
    single = segmenter.predict(points=pts, point_labels=lab, multimask=False)
    single_masks, _ = _best(single)
    return {
        "ious": ious.astype(np.float64),
        "scores": scores,
        "single_ious": np.atleast_1d(iou(single_masks, gt)).astype(np.float64),
    }


def prompt_boxes(
    segmenter, boxes: np.ndarray, shape: tuple[int, int], refine: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Segment each box (one mask per box); with ``refine``, a second pass feeds the first
    pass's logits back as a mask prompt together with the box (SAM's mask refinement).

    ``shape`` is the image's ``(H, W)``. Returns ``(masks (N, H, W) bool, scores (N,))``.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros((0, *shape), bool), np.zeros(0, np.float32)
    res = segmenter.predict(boxes=boxes, multimask=False)
    masks, logits = _best(res)
    scores = res.scores if res.scores.ndim == 1 else res.scores.max(axis=1)
    if refine:
        res = segmenter.predict(boxes=boxes, mask_input=logits, multimask=False)
        masks, _ = _best(res)
        scores = res.scores if res.scores.ndim == 1 else res.scores.max(axis=1)
    return masks, np.asarray(scores, dtype=np.float32)


def segment_both(sample, sam2, sam3, clicks_per_instance: int, phrase: str) -> dict:
    """One image, both prompting styles: SAM2 with ``clicks_per_instance`` simulated clicks on
    every instance, and SAM3 with one phrase. Returns ``sam2_masks`` ``(N, H, W)``,
    ``sam2_ious`` ``(N,)``, ``clicks`` (the last round's points and labels per instance),
    ``sam3_masks`` ``(K, H, W)``, ``sam3_scores`` ``(K,)`` and the prompt counts."""
    gt = sample.masks
    out = {"n_instances": len(gt), "sam2_prompts": clicks_per_instance * len(gt), "sam3_prompts": 1}
    if len(gt):
        sam2.set_image(sample.image)
        ious, masks = click_all_instances(sam2, gt, clicks_per_instance)
        out.update(sam2_masks=masks, sam2_ious=ious[:, -1])
        # the first click of each instance (RITM: its most interior point), for the figure
        clicks = []
        for g in gt:
            c = Clicker(g)
            c.next_click(None)
            clicks.append(c.points_and_labels())
        out["first_clicks"] = clicks
    else:
        out.update(
            sam2_masks=np.zeros((0, *sample.image.shape[:2]), bool),
            sam2_ious=np.zeros(0),
            first_clicks=[],
        )
    pred = sam3.segment(sample.image, phrases=[phrase])[phrase]
    out.update(sam3_masks=pred.masks, sam3_scores=pred.scores, sam3_presence=pred.presence)
    return out


def _binary_prediction(mask: Any, shape: tuple[int, int], pred_thr: float | None) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.shape != shape:
        raise ValueError(
            f"predict_fn returned a mask of shape {arr.shape}; expected the image's {shape}."
        )
    if arr.dtype == bool:
        return arr
    if pred_thr is None:
        return check_mask(arr, shape=shape, what="predicted mask")
    if arr.dtype.kind == "f" and (np.isnan(arr).any() or arr.min() < 0 or arr.max() > 1):
        raise ValueError(
            "predict_fn returned float values outside [0, 1] (logits?); return a bool mask or "
            "probabilities (thresholded at pred_thr)."
        )
    return arr > pred_thr


def click_loop(
    predict_fn: PredictFn,
    gt_mask: Any,
    max_clicks: int = 20,
    clicker: Clicker | None = None,
    pred_thr: float | None = 0.49,
    stop_iou: float | None = None,
    return_clicks: bool = False,
) -> np.ndarray | tuple[np.ndarray, list[Click]]:
    """Drive a predictor through the RITM click loop and return the IoU after each click.

    Parameters
    ----------
    predict_fn
        ``predict_fn(points, labels, prev_logits) -> (mask, logits)``: ``points`` ``(n, 2)``
        float xy of all clicks so far, ``labels`` ``(n,)`` int 1/0, ``prev_logits`` whatever the
        previous call returned as ``logits`` (``None`` at the first click; SAM feeds its
        low-resolution logits back as the mask prompt). ``mask`` is ``(H, W)`` bool, or
        probabilities in ``[0, 1]`` thresholded ``> pred_thr``.
    gt_mask
        ``(H, W)`` ground truth (not empty).
    max_clicks
        Number of clicks (RITM: 20).
    clicker
        A fresh `Clicker` for ``gt_mask`` (one is made when ``None``).
    pred_thr
        Threshold for non-bool masks (RITM: 0.49); ``None`` accepts only 0/1 masks.
    stop_iou
        Stop once IoU >= this (RITM's ``max_iou_thr``); ``None`` runs all clicks (needed for
        mIoU@k).
    return_clicks
        Also return the clicks.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, list of Click)
        float64 IoU after each click (empty union counts as 1.0, but the ground truth is never
        empty here).
    """
    gt = check_mask(gt_mask, what="gt_mask")
    if clicker is None:
        clicker = Clicker(gt)
    elif clicker.shape != gt.shape or len(clicker):
        raise ValueError("click_loop: pass a fresh Clicker made for this gt_mask (or None).")
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be >= 1, got {max_clicks}.")
    y0, y1, x0, x1 = clicker._gt_box
    gt_crop = gt[y0:y1, x0:x1]
    n_gt = int(np.count_nonzero(gt_crop))
    pred: np.ndarray | None = None
    logits: Any = None
    ious: list[float] = []
    for _ in range(max_clicks):
        clicker.next_click(pred)
        points, labels = clicker.points_and_labels()
        mask, logits = predict_fn(points, labels, logits)
        pred = _binary_prediction(mask, gt.shape, pred_thr)
        inter = int(np.count_nonzero(pred[y0:y1, x0:x1] & gt_crop))
        union = int(np.count_nonzero(pred)) + n_gt - inter
        ious.append(inter / union if union else 1.0)
        if stop_iou is not None and ious[-1] >= stop_iou:
            break
    out = np.asarray(ious, dtype=np.float64)
    return (out, list(clicker.clicks)) if return_clicks else out
