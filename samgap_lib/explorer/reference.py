"""What the browser does between and after the graphs, in numpy: the reference its JavaScript
twin is checked against.

- SAM2: which of the decoder's four slots answers (`sam2_slot`): the first click asks for the
  three candidates and keeps the one with the highest predicted IoU, every later click (and a
  box) takes the single mask; the kept slot's ``low_res`` goes back in as ``prev_low_res``.
- SAM3: the detector's per-query outputs to instances (`sam3_instances`): scores above the
  threshold, sorted, duplicates dropped by mask non-maximum suppression. The masks arrive cut to
  their boxes already (in-graph), so the result equals `samgap_lib.models.load_sam3`'s
  post-processing (`select_instances` with ``mask_in_box`` and ``nms_iou``).
- COCO RLE (`decode_rle`): the ground truth and expected masks are shipped as compressed COCO
  RLE strings; this is pycocotools' decoder in plain Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "SAM2_CANDIDATE_SLOTS",
    "SAM2_SINGLE_SLOT",
    "decode_rle",
    "mask_iou_counts",
    "sam2_slot",
    "sam3_instances",
]

SAM2_SINGLE_SLOT = 0  # multimask_output=False
SAM2_CANDIDATE_SLOTS = (1, 2, 3)  # multimask_output=True


def sam2_slot(iou: np.ndarray, multimask: bool) -> int:
    """The decoder slot that answers: ``1 + argmax(iou[1:4])`` (first index on ties) when
    asking for candidates (the first click), else 0."""
    iou = np.asarray(iou, dtype=np.float32).reshape(-1)
    if iou.shape != (4,):
        raise ValueError(f"sam2_slot: expected the decoder's 4 predicted IoUs, got {iou.shape}.")
    return 1 + int(np.argmax(iou[1:])) if multimask else SAM2_SINGLE_SLOT


def mask_iou_counts(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks from integer pixel counts (0 when both are empty, as pycocotools
    scores an empty mask: it overlaps nothing)."""
    inter = int(np.count_nonzero(a & b))
    union = int(np.count_nonzero(a)) + int(np.count_nonzero(b)) - inter
    return inter / union if union else 0.0


def sam3_instances(
    scores: np.ndarray,
    boxes: np.ndarray,
    masks: np.ndarray,
    threshold: float = 0.5,
    nms_iou: float | None = 0.5,
) -> dict[str, Any]:
    """One phrase's instances from ``sam3_detector``'s outputs, as the browser computes them.

    Steps: (1) keep queries with ``score > threshold``; (2) order them by decreasing score
    (stable); (3) if ``nms_iou``: walk that order, dropping a query whose mask IoU (integer
    pixel counts, `mask_iou_counts`) with an already kept one is ``>= nms_iou``.

    Parameters
    ----------
    scores, boxes, masks
        The detector's ``scores`` ``(Q,)``, ``boxes`` ``(Q, 4)`` and ``masks``
        ``(Q, H, W)`` (uint8 or bool), batch axis dropped.

    Returns
    -------
    dict
        ``queries`` (kept query indices, by decreasing score), ``scores``, ``boxes``, ``masks``
        (bool).
    """
    sc = np.asarray(scores, dtype=np.float32).reshape(-1)
    m = np.asarray(masks).astype(bool)
    if m.shape[0] != sc.shape[0] or np.shape(boxes) != (sc.shape[0], 4):
        raise ValueError(
            f"sam3_instances: scores {sc.shape}, boxes {np.shape(boxes)} and masks {m.shape} "
            "must describe the same queries."
        )
    above = np.flatnonzero(sc > threshold)
    order = above[np.argsort(-sc[above], kind="stable")]
    kept: list[int] = []
    for q in order:
        if nms_iou is None or all(mask_iou_counts(m[q], m[j]) < nms_iou for j in kept):
            kept.append(int(q))
    idx = np.array(kept, dtype=np.int64)
    return {
        "queries": idx,
        "scores": sc[idx],
        "boxes": np.asarray(boxes, dtype=np.float32)[idx],
        "masks": m[idx],
    }


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """``(H, W)`` bool mask of a compressed COCO RLE ``{"size": [H, W], "counts": str}``.

    The string holds run lengths, alternately off and on (starting with off), over the pixels
    in column-major order. Each run is a variable-length signed number in 5-bit groups, each
    group one character ``chr(48 + bits)`` with bit 5 (``0x20``) meaning "more groups follow";
    from the third run on a number is the difference to the run two before (pycocotools'
    ``rleFrString``).
    """
    h, w = (int(v) for v in rle["size"])
    s = rle["counts"]
    s = s.decode("ascii") if isinstance(s, bytes) else s
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    flat = np.zeros(h * w, dtype=bool)
    pos, on = 0, False
    for run in counts:
        if on:
            flat[pos : pos + run] = True
        pos += run
        on = not on
    return flat.reshape(w, h).T
