"""Simulated interactive segmentation of every instance of an image, batched over instances.

All instances of an image are clicked in lock-step: in round ``k`` each instance gets its
``k``-th RITM click (from its own `Clicker` and its own previous prediction) and one
``predict`` call decodes all of them from the cached image embedding. Round 1 asks for three
candidate masks and keeps the one with the highest predicted IoU (SAM's protocol for an
ambiguous single click); later rounds ask for one mask and feed the previous low-resolution
logits back as the mask prompt, as SAM2's interactive demo and RITM evaluation do.
"""

from __future__ import annotations

import numpy as np

from ..metrics import iou
from ..prompts.clicker import Clicker

__all__ = ["click_all_instances", "first_click_candidates", "prompt_boxes", "segment_both"]


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
