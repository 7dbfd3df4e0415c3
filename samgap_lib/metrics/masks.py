"""Mask metrics: IoU (DAVIS J), Dice and the DAVIS boundary F-measure, for one pair or a stack.

Conventions
-----------
* Inputs are bool masks, or numeric masks whose values are only 0 and 1 (anything else, such as
  logits, probabilities or instance-id maps, is refused with a ``ValueError``).
* ``pred`` and ``gt`` are ``(H, W)`` (one pair, a ``float`` comes back) or ``(N, H, W)``
  (``N`` pairs, an ``(N,)`` float64 array comes back; ``N = 0`` gives an empty array).
* Two empty masks agree perfectly: IoU, Dice and boundary F are all 1.0 (DAVIS J and F do the
  same). One empty and one non-empty mask score 0.0.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ..data.coco import masks_to_rles

__all__ = [
    "as_mask_stack",
    "boundary_f1",
    "boundary_tolerance",
    "dice",
    "disk",
    "iou",
    "mask_iou_matrix",
    "seg2bmap",
]


def as_mask_stack(masks: Any, what: str = "masks") -> np.ndarray:
    """Return ``masks`` as a bool array (same shape) or raise a ``ValueError`` naming the problem."""
    arr = np.asarray(masks)
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{what}: dtype {arr.dtype} is not a mask dtype; pass bool or 0/1 arrays.")
    if arr.size:
        if arr.dtype.kind == "f" and np.isnan(arr).any():
            raise ValueError(f"{what}: contains NaN; masks must be 0/1 or bool.")
        bad = (arr > 1).any() if arr.dtype.kind == "u" else ((arr != 0) & (arr != 1)).any()
        if bad:
            raise ValueError(
                f"{what}: values other than 0 and 1 (min {arr.min()}, max {arr.max()}); these "
                "look like logits, probabilities or instance ids. Threshold them first "
                "(e.g. probs > 0.5 or logits > 0) or split ids into one mask each."
            )
    return arr.astype(bool)


def _pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    p = as_mask_stack(pred, "pred")
    g = as_mask_stack(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(
            f"pred shape {p.shape} != gt shape {g.shape}; masks must be compared at the same "
            "resolution (resize the prediction to the ground truth's size first)."
        )
    if p.ndim not in (2, 3):
        raise ValueError(
            f"expected (H, W) masks or (N, H, W) stacks, got {p.ndim}-D arrays of shape {p.shape}."
        )
    if p.shape[-1] == 0 or p.shape[-2] == 0:
        raise ValueError(f"masks have an empty spatial size {p.shape[-2:]}.")
    return p, g


def _counts(p: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axes = (-2, -1)
    inter = np.count_nonzero(p & g, axis=axes)
    return inter, np.count_nonzero(p, axis=axes), np.count_nonzero(g, axis=axes)


def _out(values: np.ndarray, single: bool) -> float | np.ndarray:
    return float(values) if single else values


def iou(pred: Any, gt: Any) -> float | np.ndarray:
    """Intersection over union (Jaccard index, DAVIS J).

    Parameters
    ----------
    pred, gt
        ``(H, W)`` masks or ``(N, H, W)`` stacks of the same shape (bool or 0/1).

    Returns
    -------
    float or numpy.ndarray
        ``|pred & gt| / |pred | gt|``; 1.0 when both masks are empty (as DAVIS ``db_eval_iou``).
        A float for one pair, an ``(N,)`` array for a stack.
    """
    p, g = _pair(pred, gt)
    inter, a, b = _counts(p, g)
    union = a + b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    return _out(np.asarray(out, dtype=np.float64), p.ndim == 2)


def dice(pred: Any, gt: Any) -> float | np.ndarray:
    """Dice coefficient (F1 of pixels), ``2 |pred & gt| / (|pred| + |gt|)``.

    Parameters
    ----------
    pred, gt
        ``(H, W)`` masks or ``(N, H, W)`` stacks of the same shape (bool or 0/1).

    Returns
    -------
    float or numpy.ndarray
        1.0 when both masks are empty. A float for one pair, an ``(N,)`` array for a stack.
    """
    p, g = _pair(pred, gt)
    inter, a, b = _counts(p, g)
    total = a + b
    out = np.where(total == 0, 1.0, 2.0 * inter / np.maximum(total, 1))
    return _out(np.asarray(out, dtype=np.float64), p.ndim == 2)


def boundary_tolerance(bound_th: float, shape: tuple[int, int]) -> int:
    """Boundary tolerance in pixels, as DAVIS: ``ceil(bound_th * diagonal)`` if ``bound_th < 1``.

    Values ``>= 1`` are pixels and must be whole numbers (DAVIS would build a half-integer disk).
    """
    if not np.isfinite(bound_th) or bound_th <= 0:
        raise ValueError(f"bound_th must be a positive number, got {bound_th}.")
    if bound_th >= 1:
        if float(bound_th) != int(bound_th):
            raise ValueError(
                f"bound_th={bound_th} >= 1 is read as pixels and must be a whole number; "
                "pass e.g. 2 or a fraction of the diagonal below 1 (0.008 is DAVIS's default)."
            )
        return int(bound_th)
    return int(np.ceil(bound_th * np.linalg.norm(shape)))


def disk(radius: int) -> np.ndarray:
    """``(2r+1, 2r+1)`` uint8 disk ``x^2 + y^2 <= r^2`` (``skimage.morphology.disk``)."""
    grid = np.arange(-radius, radius + 1)
    return (grid[:, None] ** 2 + grid[None, :] ** 2 <= radius**2).astype(np.uint8)


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel boundary map of a bool mask, DAVIS ``_seg2bmap`` (same size, no rescaling).

    A pixel is a boundary pixel when it differs from its east, south or south-east neighbour; the
    last row compares only east, the last column only south, and the corner is never a boundary.
    Works on ``(..., H, W)`` stacks.
    """
    seg = np.asarray(seg, dtype=bool)
    b = np.zeros_like(seg)
    b[..., :-1, :-1] = (
        (seg[..., :-1, :-1] ^ seg[..., :-1, 1:])
        | (seg[..., :-1, :-1] ^ seg[..., 1:, :-1])
        | (seg[..., :-1, :-1] ^ seg[..., 1:, 1:])
    )
    b[..., -1, :-1] = seg[..., -1, :-1] ^ seg[..., -1, 1:]
    b[..., :-1, -1] = seg[..., :-1, -1] ^ seg[..., 1:, -1]
    b[..., -1, -1] = False
    return b


def _f_from_counts(n_fg: int, n_gt: int, fg_match: int, gt_match: int) -> float:
    if n_fg == 0 and n_gt == 0:
        return 1.0
    if n_fg == 0 or n_gt == 0:
        return 0.0  # precision or recall is 0 and the other 1: DAVIS gives F = 0
    precision = fg_match / float(n_fg)
    recall = gt_match / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def boundary_f1(pred: Any, gt: Any, bound_th: float = 0.008) -> float | np.ndarray:
    """Boundary F-measure with DAVIS semantics (davis2017-evaluation ``metrics.f_measure``).

    Boundaries are DAVIS's one-pixel ``_seg2bmap`` maps. A predicted boundary pixel is matched
    when a ground-truth boundary pixel lies within the tolerance disk (``dx^2 + dy^2 <= r^2``)
    and vice versa; ``P`` and ``R`` are the matched fractions, ``F = 2PR / (P + R)``.

    Parameters
    ----------
    pred, gt
        ``(H, W)`` masks or ``(N, H, W)`` stacks of the same shape (bool or 0/1).
    bound_th
        Tolerance: below 1 a fraction of the image diagonal, ``r = ceil(bound_th * diag)``
        pixels (0.008 is 12 px on a 720x1280 image); ``>= 1`` a whole number of pixels.

    Returns
    -------
    float or numpy.ndarray
        F in [0, 1]; 1.0 when both masks are empty (no boundary on either side), 0.0 when only
        one side is empty. A float for one pair, an ``(N,)`` array for a stack.

    Notes
    -----
    Equal to the DAVIS code to the last bit (checked against
    `samgap_lib.metrics.reference.davis_f_measure`). It is fast because every boundary pixel
    lies inside the union bounding box of the two masks grown by one pixel, so the boundary maps
    and the dilations are computed on that crop only (dilating a crop equals cropping the
    full-frame dilation there, since no boundary pixel lies outside it).
    """
    p, g = _pair(pred, gt)
    single = p.ndim == 2
    if single:
        p, g = p[None], g[None]
    n, h, w = p.shape
    r = boundary_tolerance(bound_th, (h, w))
    kernel = disk(r)
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    rows = p.any(axis=2) | g.any(axis=2)
    cols = p.any(axis=1) | g.any(axis=1)
    for i in range(n):
        ys = np.flatnonzero(rows[i])
        if ys.size == 0:
            out[i] = 1.0
            continue
        xs = np.flatnonzero(cols[i])
        # one pixel more on each side: the boundary can sit one pixel above/left of the mask,
        # and the crop's last row/column must be mask-free (or the image's own last one)
        y0, y1 = max(ys[0] - 1, 0), min(ys[-1] + 2, h)
        x0, x1 = max(xs[0] - 1, 0), min(xs[-1] + 2, w)
        fb = seg2bmap(p[i, y0:y1, x0:x1])
        gb = seg2bmap(g[i, y0:y1, x0:x1])
        n_fg = int(np.count_nonzero(fb))
        n_gt = int(np.count_nonzero(gb))
        if n_fg == 0 or n_gt == 0:
            out[i] = _f_from_counts(n_fg, n_gt, 0, 0)
            continue
        fb8 = fb.view(np.uint8)
        gb8 = gb.view(np.uint8)
        fg_dil = cv2.dilate(fb8, kernel)
        gt_dil = cv2.dilate(gb8, kernel)
        fg_match = int(np.count_nonzero(fb & gt_dil.view(bool)))
        gt_match = int(np.count_nonzero(gb & fg_dil.view(bool)))
        out[i] = _f_from_counts(n_fg, n_gt, fg_match, gt_match)
    return float(out[0]) if single else out


def mask_iou_matrix(pred_masks: Any, gt_masks: Any) -> np.ndarray:
    """``(M, N)`` IoU of every predicted mask with every ground-truth mask (pycocotools RLE IoU;
    an empty mask has IoU 0 with everything)."""
    p = as_mask_stack(pred_masks, "pred_masks")
    g = as_mask_stack(gt_masks, "gt_masks")
    if p.ndim != 3 or g.ndim != 3 or p.shape[1:] != g.shape[1:]:
        raise ValueError(
            f"pred_masks {p.shape} and gt_masks {g.shape} must be (M, H, W) and (N, H, W) stacks "
            "at the same image size."
        )
    if len(p) == 0 or len(g) == 0:
        return np.zeros((len(p), len(g)), dtype=np.float64)
    out = mask_utils.iou(masks_to_rles(p), masks_to_rles(g), [0] * len(g))
    return np.asarray(out, dtype=np.float64).reshape(len(p), len(g))
