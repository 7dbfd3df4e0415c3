"""What SAM3 does between its detector's raw outputs and the instances a user sees, for both
backends: scores ``sigmoid(logit) x sigmoid(presence)`` above a threshold, masks ``sigmoid >
0.5`` at the image's size (`select_instances`), and the post-processing an orchard-tiny
checkpoint asks for beyond SAM3's own (its config's ``samgap_postprocess``: each mask cut to its
own predicted box, `clip_masks_to_boxes`; duplicates removed by mask non-maximum suppression,
`mask_nms`; both in `postprocess_prediction`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..metrics.masks import mask_iou_matrix
from .base import ConceptPrediction
from .upsample import upsample_masks

__all__ = [
    "POSTPROCESS_KEY",
    "clip_masks_to_boxes",
    "empty_prediction",
    "mask_nms",
    "postprocess_prediction",
    "postprocess_spec",
    "select_instances",
    "xyxy_to_cxcywh_norm",
]

POSTPROCESS_KEY = "samgap_postprocess"  # model-config entry written by samgap's SAM3 training


def postprocess_spec(model_or_config: Any) -> dict[str, Any]:
    """``{"mask_in_box": bool, "nms_iou": float | None}`` a checkpoint asks for (both off for
    a released SAM3)."""
    cfg = getattr(model_or_config, "config", model_or_config)
    spec = dict(getattr(cfg, POSTPROCESS_KEY, None) or {})
    nms = spec.get("nms_iou")
    return {
        "mask_in_box": bool(spec.get("mask_in_box", False)),
        "nms_iou": None if nms is None else float(nms),
    }


def mask_nms(masks: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices (ascending) kept by greedy non-maximum suppression on mask IoU: in order of
    decreasing score, a mask is dropped when its IoU with a kept one is ``>= iou_threshold``.

    DETR-style set prediction should need none, but a tiny detector trained for minutes still
    answers some apples with two queries. Visible apple masks never overlap, so two masks
    sharing half their pixels are one apple twice.
    """
    m = np.asarray(masks, bool)
    sc = np.asarray(scores, np.float64)
    if m.ndim != 3 or sc.shape != (len(m),):
        raise ValueError(
            f"mask_nms: masks must be (N, H, W) and scores (N,), got {m.shape} and {sc.shape}."
        )
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"mask_nms: iou_threshold must be in (0, 1], got {iou_threshold}.")
    iou = mask_iou_matrix(m, m)  # pycocotools RLE IoU; an empty mask overlaps nothing
    keep: list[int] = []
    for i in np.argsort(-sc, kind="stable"):
        if all(iou[i, j] < iou_threshold for j in keep):
            keep.append(int(i))
    return np.array(sorted(keep), dtype=np.int64)


def clip_masks_to_boxes(masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``masks`` ``(N, H, W)`` with every pixel outside its box ``(N, 4)`` (xyxy pixels) off.

    A pixel ``[x, x + 1) x [y, y + 1)`` stays when it overlaps the box at all, so a box drawn
    exactly round a mask keeps the whole mask. Mask R-CNN's masks live in their box by
    construction; SAM3's do not, and a tiny SAM3 trained from scratch leaks a few mask pixels
    onto other apples of the same colour (the book's appendix on the miniature).
    """
    m = np.asarray(masks, bool)
    b = np.asarray(boxes, np.float64)
    if m.ndim != 3 or b.shape != (len(m), 4):
        raise ValueError(
            f"clip_masks_to_boxes: masks must be (N, H, W) and boxes (N, 4), got {m.shape} and "
            f"{b.shape}."
        )
    h, w = m.shape[1:]
    xs, ys = np.arange(w), np.arange(h)
    cols = (xs[None] + 1 > b[:, 0, None]) & (xs[None] < b[:, 2, None])
    rows = (ys[None] + 1 > b[:, 1, None]) & (ys[None] < b[:, 3, None])
    return m & rows[:, :, None] & cols[:, None, :]


def empty_prediction(phrase: str, image_hw: tuple[int, int], presence: float) -> ConceptPrediction:
    """A prediction with no instance."""
    h, w = image_hw
    return ConceptPrediction(
        phrase=phrase,
        masks=np.zeros((0, h, w), bool),
        boxes=np.zeros((0, 4), np.float32),
        scores=np.zeros((0,), np.float32),
        presence=float(presence),
    )


def select_instances(
    phrase: str,
    logits: torch.Tensor,
    presence_logit: torch.Tensor | None,
    boxes_xyxy_norm: torch.Tensor,
    mask_logits: torch.Tensor,
    image_hw: tuple[int, int],
    threshold: float,
    mask_threshold: float = 0.5,
    mask_in_box: bool = False,
    nms_iou: float | None = None,
) -> ConceptPrediction:
    """Turn one prompt's raw detector outputs into thresholded instances at image size.

    Parameters
    ----------
    logits
        ``(Q,)`` query logits.
    presence_logit
        Scalar presence logit (None: presence 1).
    boxes_xyxy_norm
        ``(Q, 4)`` boxes, xyxy normalised to [0, 1].
    mask_logits
        ``(Q, h, w)`` mask logits.
    mask_in_box
        Cut each mask to its own box (`clip_masks_to_boxes`).
    nms_iou
        Drop duplicates by `mask_nms` at this mask IoU (None: keep all, as SAM3).
    """
    presence = (
        torch.sigmoid(presence_logit.float()).reshape(()) if presence_logit is not None else None
    )
    scores = torch.sigmoid(logits.float())
    if presence is not None:
        scores = scores * presence
    pres = float(presence) if presence is not None else 1.0
    keep = torch.nonzero(scores > threshold).flatten()
    if keep.numel() == 0:
        return empty_prediction(phrase, image_hw, pres)
    keep = keep[torch.argsort(scores[keep], descending=True)]
    h, w = image_hw
    scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=boxes_xyxy_norm.device)
    boxes = boxes_xyxy_norm[keep].float() * scale
    cut = float(np.log(mask_threshold / (1.0 - mask_threshold)))  # sigmoid(x) > t <=> x > logit(t)
    masks = upsample_masks(mask_logits[keep], (h, w), cut)
    pred = ConceptPrediction(
        phrase=phrase,
        masks=masks,
        boxes=boxes.cpu().numpy(),
        scores=scores[keep].cpu().numpy().astype(np.float32),
        presence=pres,
    )
    return postprocess_prediction(pred, mask_in_box, nms_iou)


def postprocess_prediction(
    pred: ConceptPrediction, mask_in_box: bool = False, nms_iou: float | None = None
) -> ConceptPrediction:
    """samgap's post-processing beyond SAM3's, on one prompt's thresholded instances.

    ``mask_in_box`` cuts each mask to its own box (`clip_masks_to_boxes`); ``nms_iou`` then
    drops duplicates by `mask_nms` at that mask IoU (None: keep all, as SAM3). With both off
    ``pred`` comes back unchanged. `select_instances` ends with it, so a prediction made with
    both off and post-processed here equals one made with them on.
    """
    if not mask_in_box and nms_iou is None:
        return pred
    masks, boxes, scores = pred.masks, pred.boxes, pred.scores
    if mask_in_box:
        masks = clip_masks_to_boxes(masks, boxes)
    if nms_iou is not None:
        k = mask_nms(masks, scores, nms_iou)
        masks, boxes, scores = masks[k], boxes[k], scores[k]
    return ConceptPrediction(
        phrase=pred.phrase, masks=masks, boxes=boxes, scores=scores, presence=pred.presence
    )


def xyxy_to_cxcywh_norm(boxes: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """xyxy pixels -> cxcywh normalised by the image size (what SAM3's geometry encoder takes)."""
    h, w = image_hw
    b = np.asarray(boxes, np.float32) / np.array([w, h, w, h], np.float32)
    return np.stack(
        [(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1
    )
