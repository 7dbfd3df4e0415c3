"""COCO AP/AR for masks and boxes through pycocotools' COCOeval (no re-implementation)."""

from __future__ import annotations

import contextlib
import copy
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["COCO_STAT_NAMES", "coco_ap"]

COCO_STAT_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "AP_small",
    "AP_medium",
    "AP_large",
    "AR1",
    "AR10",
    "AR100",
    "AR_small",
    "AR_medium",
    "AR_large",
)


def coco_ap(
    gt_coco_dict: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    iou_type: str = "segm",
) -> dict[str, float]:
    """The 12 standard COCO detection statistics from pycocotools' ``COCOeval``.

    Parameters
    ----------
    gt_coco_dict
        COCO ground truth (``images``, ``annotations`` with ``area``, ``iscrowd``, ``bbox`` and
        for ``"segm"`` ``segmentation``; ``categories``). Not modified.
    results
        COCO results list: ``image_id``, ``category_id``, ``score`` and ``segmentation``
        (compressed RLE) or ``bbox`` (xywh). Not modified. May be empty (every AP is then 0
        when the ground truth has instances).
    iou_type
        ``"segm"`` or ``"bbox"``.

    Returns
    -------
    dict of str to float
        ``AP`` (IoU 0.50:0.95), ``AP50``, ``AP75``, ``AP_small/medium/large``, ``AR1``,
        ``AR10``, ``AR100``, ``AR_small/medium/large``, exactly ``COCOeval.stats``; pycocotools
        reports -1 where a value is undefined (e.g. no ground truth of that size).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if iou_type not in ("segm", "bbox"):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', got {iou_type!r}.")
    for key in ("images", "annotations", "categories"):
        if key not in gt_coco_dict:
            raise ValueError(f"gt_coco_dict has no {key!r}; it must be a COCO ground-truth dict.")
    img_ids = {img["id"] for img in gt_coco_dict["images"]}
    for k, r in enumerate(results):
        if r.get("image_id") not in img_ids:
            raise ValueError(
                f"result {k} has image_id {r.get('image_id')!r}, not in the ground truth."
            )
        s = r.get("score")
        if not isinstance(s, int | float | np.floating | np.integer) or not math.isfinite(s):
            raise ValueError(f"result {k} has score {s!r}; scores must be finite numbers.")
        if iou_type == "segm" and "segmentation" not in r:
            raise ValueError(f"result {k} has no 'segmentation' (needed for iou_type='segm').")
        if iou_type == "bbox" and "bbox" not in r:
            raise ValueError(f"result {k} has no 'bbox' (needed for iou_type='bbox').")
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        gt = COCO()
        gt.dataset = copy.deepcopy(dict(gt_coco_dict))
        for ann in gt.dataset["annotations"]:
            ann.setdefault("iscrowd", 0)
        gt.createIndex()
        if results:
            dt = gt.loadRes(copy.deepcopy(list(results)))
        else:
            dt = COCO()
            dt.dataset = {
                "images": gt.dataset["images"],
                "annotations": [],
                "categories": gt.dataset["categories"],
            }
            dt.createIndex()
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: float(v) for name, v in zip(COCO_STAT_NAMES, ev.stats, strict=True)}
