"""Test-local builders of SA-Co-style ground truth and COCO results (random, seeded), and a
runner for SAM3's reference evaluator. Independent of samgap_lib.data.coco on purpose."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def rle(mask: np.ndarray) -> dict[str, Any]:
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    r["counts"] = r["counts"].decode("ascii")
    return r


def xywh(mask: np.ndarray) -> list[float]:
    return [float(v) for v in mask_utils.toBbox(rle(mask))]


def random_blob(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random ellipse or rectangle, at least one pixel."""
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(1, h / 3), rng.uniform(1, w / 3)
    if rng.random() < 0.5:
        m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    else:
        m = (abs(yy - cy) <= ry) & (abs(xx - cx) <= rx)
    if not m.any():
        m[min(int(cy), h - 1), min(int(cx), w - 1)] = True
    return m


def perturb(rng: np.random.Generator, m: np.ndarray) -> np.ndarray:
    """A prediction near ``m``: shifted by a few pixels, sometimes grown or cut."""
    dy, dx = rng.integers(-3, 4, 2)
    out = np.roll(np.roll(m, dy, 0), dx, 1)
    if rng.random() < 0.3:
        out = out | np.roll(out, 1, 0) | np.roll(out, 1, 1)
    if rng.random() < 0.2:
        out = out.copy()
        out[: out.shape[0] // 2] = False
    if not out.any():
        out = m.copy()
    return out


SPECIAL_SCORES = (0.5, float(np.nextafter(0.5, 0)), 0.0, 1.0, 0.75)


def random_saco(
    rng: np.random.Generator,
    n_pairs: int = 12,
    size: tuple[int, int] = (24, 32),
    n_categories: int = 1,
    p_negative: float = 0.3,
    p_crowd: float = 0.1,
    p_not_exhaustive: float = 0.1,
    max_gt: int = 6,
    p_no_preds: float = 0.15,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Random (image, phrase) pairs with masks, boxes, crowd, negatives, and results."""
    h, w = size
    images, anns, preds = [], [], []
    cats = [{"id": c + 1, "name": f"phrase{c}"} for c in range(n_categories)]
    ann_id = 1
    for pid in range(1, n_pairs + 1):
        hh = int(rng.integers(max(4, h // 2), h + 1))
        ww = int(rng.integers(max(4, w // 2), w + 1))
        exhaustive = bool(rng.random() >= p_not_exhaustive)
        images.append(
            {
                "id": pid,
                "file_name": f"img{pid}.png",
                "height": hh,
                "width": ww,
                "text_input": f"phrase {pid % 5}",
                "is_instance_exhaustive": exhaustive,
            }
        )
        n_gt = 0 if rng.random() < p_negative else int(rng.integers(1, max_gt + 1))
        gts = []
        for _ in range(n_gt):
            m = random_blob(rng, hh, ww)
            crowd = int(rng.random() < p_crowd)
            cid = int(rng.integers(1, n_categories + 1))
            anns.append(
                {
                    "id": ann_id,
                    "image_id": pid,
                    "category_id": cid,
                    "segmentation": rle(m),
                    "bbox": xywh(m),
                    "area": float(m.sum()),
                    "iscrowd": crowd,
                }
            )
            ann_id += 1
            gts.append(m)
        if rng.random() < p_no_preds:
            continue
        masks = []
        for m in gts:  # detections of real objects, sometimes duplicated
            if rng.random() < 0.8:
                masks.append(perturb(rng, m))
            if rng.random() < 0.2:
                masks.append(m.copy())  # exact duplicate: ties in the IoU matrix
        for _ in range(int(rng.integers(0, 3))):  # false positives
            masks.append(random_blob(rng, hh, ww))
        for m in masks:
            score = float(rng.choice(SPECIAL_SCORES)) if rng.random() < 0.4 else float(rng.random())
            preds.append(
                {
                    "image_id": pid,
                    "category_id": int(rng.integers(1, n_categories + 1)),
                    "segmentation": rle(m),
                    "bbox": xywh(m),
                    "score": score,
                }
            )
    gt = {
        "info": {},
        "images": images,
        "annotations": anns,
        "categories": cats,
    }
    return gt, preds


def run_sam3_cgf1(
    tmp_path: Path, gt: dict[str, Any], preds: list[dict[str, Any]], iou_type: str
) -> dict[str, float]:
    """SAM3's CGF1Evaluator on files written to ``tmp_path``; prefix stripped, prints hidden."""
    from samgap_lib.metrics.reference import load_sam3_cgf1_module

    mod = load_sam3_cgf1_module()
    gt_path = tmp_path / "gt.json"
    pred_path = tmp_path / "preds.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(preds))
    with contextlib.redirect_stdout(io.StringIO()):
        ev = mod.CGF1Evaluator(str(gt_path), iou_type=iou_type)
        out = ev.evaluate(str(pred_path))
    prefix = f"cgF1_eval_{iou_type}_"
    return {k[len(prefix) :]: v for k, v in out.items()}
