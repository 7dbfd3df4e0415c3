"""The prompted (SAM2-style) protocol, for every instance of a set of images.

Each instance is prompted with its exact box (pixel-edge xyxy, one mask asked for), and clicked
by `click_all_instances`' RITM rounds. `instance_ious` returns the IoUs per instance, the rows
behind every mean: `prompted_summary` (box mIoU, the inscribed-ellipse baseline, click mIoU@k,
NoC) and, grouped by how much of its box an instance fills, `ious_by_box_fill`. Training
validates SAM2 with them and the orchard-tiny cards score it with them (`evaluate_prompted`).

`click_record` is the same protocol for one image as an experiment records it (JSON-ready:
clicks up to ``max_clicks``, the box, the box refined with its own mask, boundary F), and
`click_summary` the experiment's summary of such records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data import Sample
from ..data.stats import instance_records
from ..metrics import boundary_f1, iou, noc
from ..prompts import box_ellipse_masks, boxes_from_masks
from .clicks import click_all_instances, prompt_boxes

__all__ = [
    "click_record",
    "click_summary",
    "evaluate_prompted",
    "instance_ious",
    "ious_by_box_fill",
    "prompted_summary",
]


def evaluate_prompted(segmenter: Any, samples: list[Sample], clicks: int = 3) -> dict[str, float]:
    """Box mIoU (exact boxes) and RITM click mIoU@k / NoC of a `PromptSegmenter`.

    The clicks are `click_all_instances`' RITM rounds: the
    first click asks for three candidates and keeps the highest-scoring one; later clicks ask
    for one mask with the previous logits as the mask prompt. ``box_ellipse_mIoU`` is the
    model-free baseline for the same boxes: the ellipse inscribed in each (`box_ellipse_masks`).
    Every mean is over all instances of ``samples`` (`instance_ious` keeps them apart).
    """
    return prompted_summary(instance_ious(segmenter, samples, clicks), clicks)


def prompted_summary(per: dict[str, np.ndarray], clicks: int) -> dict[str, float]:
    """`evaluate_prompted`'s means over all instances of `instance_ious`' rows ``per``."""
    out = {
        "box_mIoU": float(np.mean(per["model"])),
        "box_ellipse_mIoU": float(np.mean(per["ellipse"])),
        "n_instances": float(len(per["model"])),
    }
    for k in range(clicks):
        out[f"click_mIoU@{k + 1}"] = float(per["click"][:, k].mean())
    stats = noc(per["click"], thresholds=(0.8, 0.85), max_clicks=clicks, miou_clicks=())
    out.update({k: float(v) for k, v in stats.items() if k.startswith("NoC")})
    return out


def _box_rows(segmenter: Any, gt: np.ndarray) -> dict[str, np.ndarray]:
    """The box rows of `instance_ious` for one image already set on ``segmenter``."""
    boxes = boxes_from_masks(gt)
    masks, _ = prompt_boxes(segmenter, boxes, gt.shape[1:])
    area = gt.reshape(len(gt), -1).sum(1)
    box_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return {
        "model": np.atleast_1d(iou(masks, gt)).astype(float),
        "ellipse": np.atleast_1d(iou(box_ellipse_masks(boxes, gt.shape[1:]), gt)).astype(float),
        "area": area.astype(float),
        "fill": area / np.maximum(box_area, 1),
    }


def instance_ious(segmenter: Any, samples: list[Sample], clicks: int = 3) -> dict[str, np.ndarray]:
    """Per instance, how a box prompt and ``clicks`` RITM clicks are answered: the arrays
    behind `evaluate_prompted` (whose numbers are their means).

    Each instance is prompted with its exact box (`boxes_from_masks`, pixel-edge xyxy), one
    mask asked for, then clicked as `evaluate_prompted` says. Returns arrays over the instances of
    all ``samples`` in order: ``image`` (the index of its sample, for intervals over images:
    `samgap_lib.metrics.unit_sums`), ``model`` (mask IoU of the box-prompted answer),
    ``ellipse`` (mask IoU of the ellipse inscribed in the box, the model-free answer), ``area``
    (visible pixels), ``fill`` (the share of its box the visible mask covers: near pi/4 = 0.785
    for a whole round apple, lower when leaves or apples in front hide part of it) and, with
    ``clicks > 0``, ``click`` ``(n, clicks)``: the IoU after each click.
    """
    rows = []
    for si, s in enumerate(samples):
        if not s.instances:
            continue
        segmenter.set_image(s.image)
        row = _box_rows(segmenter, s.masks)
        row["image"] = np.full(len(s.masks), si, dtype=np.int64)
        if clicks:
            row["click"] = click_all_instances(segmenter, s.masks, clicks)[0]
        rows.append(row)
    if not rows:
        raise ValueError("no instances in the evaluation images: nothing to prompt.")
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def ious_by_box_fill(
    ious: dict[str, np.ndarray], edges: tuple[float, ...] = (0.0, 0.5, 0.65, 0.75, 1.0)
) -> list[dict[str, float]]:
    """`instance_ious` grouped by how much of its box each instance fills.

    One row per bin ``[edges[i], edges[i+1])`` (the last bin includes 1.0): ``fill from``,
    ``fill to``, ``instances``, and the mean ``model`` and ``ellipse`` IoU of its instances
    (NaN for an empty bin). Bins show where a model beats the round blob (occluded objects)
    and where the blob is hard to beat (whole ones).
    """
    e = np.asarray(edges, float)
    if e.ndim != 1 or len(e) < 2 or np.any(np.diff(e) <= 0):
        raise ValueError(f"edges must be at least two increasing numbers, got {edges}.")
    fill = np.asarray(ious["fill"], float)
    rows = []
    for i, (lo, hi) in enumerate(zip(e[:-1], e[1:], strict=True)):
        sel = (fill >= lo) & ((fill <= hi) if i == len(e) - 2 else (fill < hi))
        row = {"fill from": float(lo), "fill to": float(hi), "instances": int(sel.sum())}
        for k in ("model", "ellipse"):
            row[k] = float(np.mean(ious[k][sel])) if sel.any() else float("nan")
        rows.append(row)
    return rows


def click_record(segmenter: Any, sample: Sample, max_clicks: int = 20, refine: bool = True) -> dict:
    """One image of the ``sam2-baseline`` / ``sam3-tracker`` experiments, JSON-ready.

    ``image_id``, ``height``, ``width`` and ``instances``, each with ``instance_id``, ``area``,
    ``touching``, ``fragments``, ``ious`` (after each of ``max_clicks`` clicks), ``iou_box``,
    ``iou_box_refined`` (the box again with the first answer's logits as a mask prompt, SAM's
    refinement; the box's IoU when ``refine`` is off), ``bf_box`` (Boundary F of the box's mask
    at the DAVIS tolerance) and ``bf_box_2px`` (at 2 pixels).
    """
    s = sample
    gt = s.masks
    rec: dict[str, Any] = {
        "image_id": s.image_id,
        "height": s.height,
        "width": s.width,
        "instances": [],
    }
    if not len(gt):
        return rec
    segmenter.set_image(s.image)
    ious, _ = click_all_instances(segmenter, gt, max_clicks)
    box_masks, _ = prompt_boxes(segmenter, s.boxes, s.image.shape[:2])
    iou_box = np.atleast_1d(iou(box_masks, gt))
    iou_ref = iou_box
    if refine:
        ref_masks, _ = prompt_boxes(segmenter, s.boxes, s.image.shape[:2], refine=True)
        iou_ref = np.atleast_1d(iou(ref_masks, gt))
    bf = np.atleast_1d(boundary_f1(box_masks, gt))
    bf2 = np.atleast_1d(boundary_f1(box_masks, gt, bound_th=2))
    for k, r in enumerate(instance_records([s])):
        rec["instances"].append(
            {
                "instance_id": r["instance_id"],
                "area": r["area"],
                "touching": r["touching"],
                "fragments": r["fragments"],
                "ious": [round(float(v), 6) for v in ious[k]],
                "iou_box": float(iou_box[k]),
                "iou_box_refined": float(iou_ref[k]),
                "bf_box": float(bf[k]),
                "bf_box_2px": float(bf2[k]),
            }
        )
    return rec


def click_summary(records: Sequence[dict], max_clicks: int = 20) -> dict:
    """NoC/NoF/mIoU@k over all instances, box and refined-box mIoU, Boundary F."""
    inst = [i for r in records for i in r["instances"]]
    out = {"images": len(records), "instances": len(inst)}
    if not inst:
        return out
    out.update(noc([i["ious"] for i in inst], max_clicks=max_clicks))
    for key in ("iou_box", "iou_box_refined", "bf_box", "bf_box_2px"):
        out[f"mean_{key}"] = float(np.mean([i[key] for i in inst]))
    touching = [i for i in inst if i["touching"]]
    alone = [i for i in inst if not i["touching"]]
    for name, group in (("touching", touching), ("isolated", alone)):
        out[f"mIoU@1_{name}"] = (
            float(np.mean([i["ious"][0] for i in group])) if group else float("nan")
        )
    return out
