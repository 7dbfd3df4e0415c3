"""The explorer's images with their ground truth, and the answers the browser must reproduce.

`explorer_samples` are held-out images (the synthetic orchard's ``test`` split, as
`samgap_lib.evaluation.held_out_samples` draws them for SAM3) at `EXPLORER_SIZE`;
`write_images` saves them as PNG with each apple's mask as compressed COCO RLE, its box and
ripeness. `expected_outputs` runs the PyTorch models through `samgap_lib.models` (the library's
segmenters, not the exported graphs) on image 0: SAM2's first click (the RITM clicker's most
interior point of the largest apple), the correction click after it and a box; SAM3's phrases.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from ..data.coco import mask_to_rle
from ..evaluation import held_out_samples
from ..io import atomic_write
from ..metrics import iou
from ..prompts import Clicker, boxes_from_masks
from .graphs import EXPLORER_SIZE

__all__ = [
    "EXPECTED_PHRASES",
    "N_IMAGES",
    "expected_outputs",
    "explorer_samples",
    "first_clicks",
    "write_images",
]

N_IMAGES = 6
EXPECTED_PHRASES = ("ripe apple", "unripe apple", "apple", "pear")


def explorer_samples(n: int = N_IMAGES) -> list[Any]:
    """The explorer's images: the first ``n`` held-out SAM3 images (test split, 224 px)."""
    samples = held_out_samples("sam3", n)
    for s in samples:
        if s.image.shape[:2] != (EXPLORER_SIZE, EXPLORER_SIZE):
            raise ValueError(
                f"held-out image {s.image_id} is {s.image.shape[:2]}, the explorer's graphs "
                f"take {EXPLORER_SIZE} px."
            )
    return samples


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_images(samples: list[Any], folder: Path) -> list[dict[str, Any]]:
    """Write ``images/<i>.png`` under ``folder``; return each image's manifest entry (file,
    id, the RGB bytes' sha256 to check the browser decoded it exactly, apples with RLE mask,
    box and ripeness)."""
    out = []
    for i, s in enumerate(samples):
        rel = f"images/{i}.png"
        data = _png(s.image)
        atomic_write(folder / rel, lambda f, d=data: f.write(d))
        boxes = boxes_from_masks(s.masks) if len(s.instances) else np.zeros((0, 4))
        apples = [
            {
                "rle": mask_to_rle(inst.mask),
                "area": int(inst.mask.sum()),
                "box": [int(v) for v in boxes[k]],
                "ripeness": inst.attributes.get("ripeness"),
            }
            for k, inst in enumerate(s.instances)
        ]
        out.append(
            {
                "file": rel,
                "image_id": int(s.image_id),
                "size": [int(s.image.shape[0]), int(s.image.shape[1])],
                "rgb_sha256": hashlib.sha256(np.ascontiguousarray(s.image).tobytes()).hexdigest(),
                "apples": apples,
            }
        )
    return out


def first_clicks(gt: np.ndarray, pred: np.ndarray | None = None, clicker: Clicker | None = None):
    """The RITM clicker's clicks on ``gt`` so far, after one more given ``pred`` (None: the
    first click, the mask's most interior point): ``(points (1, K, 2) float32, labels (1, K)
    float32, clicker)``."""
    c = clicker or Clicker(gt)
    c.next_click(pred)
    pts, lab = c.points_and_labels()
    return pts[None].astype(np.float32), lab[None].astype(np.float32), c


def _sam2_answer(res: Any, gt: np.ndarray, slot_of_result: int | None) -> dict[str, Any]:
    """The kept mask of a one-object `PromptResult` (multimask: best candidate)."""
    if res.masks.ndim == 4:
        k = int(res.scores[0].argmax())
        mask, score = res.masks[0, k], float(res.scores[0, k])
        extra = {"candidate_iou": [float(v) for v in res.scores[0]], "slot": 1 + k}
    else:
        mask, score = res.masks[0], float(res.scores[0])
        extra = {"slot": slot_of_result}
    return {
        **extra,
        "iou_pred": score,
        "iou_vs_gt": float(iou(mask, gt)),
        "area": int(mask.sum()),
        "mask": mask_to_rle(mask),
    }


def expected_outputs(sam2: Any, sam3: Any, sample: Any, phrases=EXPECTED_PHRASES) -> dict:
    """The library's PyTorch answers on ``sample`` that the browser must reproduce.

    ``sam2`` / ``sam3``: `load_sam2` / `load_sam3` segmenters (CPU). SAM2 clicks the largest
    apple as `samgap_lib.evaluation.click_all_instances` does (first click: three candidates,
    the best kept; second: one mask, the previous low-res logits fed back) and prompts its exact
    box (`boxes_from_masks`, one mask).
    """
    gt_all = sample.masks
    apple = int(np.argmax(gt_all.reshape(len(gt_all), -1).sum(1)))
    gt = gt_all[apple]
    sam2.set_image(sample.image)
    pts, lab, clicker = first_clicks(gt)
    first = sam2.predict(points=pts, point_labels=lab.astype(np.int64), multimask=True)
    k = int(first.scores[0].argmax())
    pts2, lab2, _ = first_clicks(gt, first.masks[0, k], clicker)
    second = sam2.predict(
        points=pts2,
        point_labels=lab2.astype(np.int64),
        mask_input=first.low_res_logits[:, k],
        multimask=False,
    )
    box = boxes_from_masks(gt[None]).astype(np.float32)
    boxed = sam2.predict(boxes=box, multimask=False)
    sam2_out = {
        "apple": apple,
        "first_click": {
            "points": pts[0].tolist(),
            "labels": lab[0].tolist(),
            "has_prev": 0.0,
            **_sam2_answer(first, gt, None),
        },
        "second_click": {
            "points": pts2[0].tolist(),
            "labels": lab2[0].tolist(),
            "has_prev": 1.0,
            "prev": "first_click's low_res at its slot",
            **_sam2_answer(second, gt, 0),
        },
        "box": {"box": box[0].tolist(), "has_prev": 0.0, **_sam2_answer(boxed, gt, 0)},
    }
    sam3.set_image(sample.image)
    sam3_out = {}
    for phrase in phrases:  # one phrase a forward, as the browser runs them
        p = sam3.segment(phrases=[phrase])[phrase]
        sam3_out[phrase] = {
            "count": len(p),
            "presence": float(p.presence),
            "scores": [float(v) for v in p.scores],
            "boxes": [[float(v) for v in b] for b in p.boxes],
            "masks": [mask_to_rle(m) for m in p.masks],
            "areas": [int(m.sum()) for m in p.masks],
        }
    return {
        "image": 0,
        "image_id": int(sample.image_id),
        "computed_with": "PyTorch, through samgap_lib.models.load_sam2 / load_sam3 (CPU), not ONNX",
        "sam2": sam2_out,
        "sam3": sam3_out,
    }
