"""cgF1, SAM3's concept-segmentation metric, reproducing ``sam3.eval.cgf1_eval.CGF1Evaluator``
(sam3 0.1.4) exactly from in-memory COCO dicts: vectorised over IoU thresholds, without building
a COCO object per image.

The ground truth is SA-Co form (`samgap_lib.data.to_saco`): one COCO "image" per (image, noun
phrase) pair; the predictions a COCO results list whose ``image_id`` is that pair's id
(`samgap_lib.data.pair_id`). cgF1 = positive micro F1 x image-level MCC, averaged over IoU
thresholds 0.50:0.05:0.95; detections with ``score >= score_threshold`` count.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from samgap_lib.data.coco import segmentation_to_rle

__all__ = ["CGF1_IOU_THRESHOLDS", "cgf1"]

# pycocotools Params.setDetParams: 0.50:0.05:0.95 (the same floats, so ">=" ties agree)
CGF1_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)

_BOX_LEVEL = (
    "cgF1",
    "precision",
    "recall",
    "F1",
    "positive_macro_F1",
    "positive_micro_F1",
    "positive_micro_precision",
)
_IMAGE_LEVEL = ("IL_precision", "IL_recall", "IL_F1", "IL_FPR", "IL_MCC")


def _require(obj: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in obj:
        raise ValueError(
            f"{what} has no {key!r} field (SA-Co/COCO format needs it): {dict(obj)!r:.200}"
        )
    return obj[key]


def _box_polygon(bb: Sequence[float]) -> list[list[float]]:
    x1, x2, y1, y2 = bb[0], bb[0] + bb[2], bb[1], bb[1] + bb[3]
    return [[x1, y1, x1, y2, x2, y2, x2, y1]]


def _summary(vec: np.ndarray) -> float:
    """CGF1Eval.summarize for one metric: mean over values > -1 (NaN excluded), else -1."""
    keep = vec[vec > -1]
    return float(np.mean(keep)) if keep.size else -1.0


def cgf1(
    gt: Mapping[str, Any],
    predictions: Sequence[Mapping[str, Any]],
    iou_type: str = "segm",
    score_threshold: float = 0.5,
) -> dict[str, float]:
    """Concept-grounded F1 (cgF1) and its family, as ``sam3.eval.cgf1_eval.CGF1Evaluator``.

    Every (image, noun phrase) pair is a COCO "image". Only pairs with
    ``is_instance_exhaustive`` true are scored. Detections with ``score >= score_threshold``
    count (a score of exactly 0.5 counts). Per pair, detections and non-crowd ground truth are
    matched one-to-one by the Hungarian algorithm maximising total IoU; at each IoU threshold
    t in 0.50:0.05:0.95 a match with IoU >= t is a TP, other detections FPs, other ground truth
    FNs. Crowd annotations (``iscrowd`` 1) are dropped: they neither need a match nor excuse a
    detection.

    * ``precision``, ``recall``, ``F1``: micro over all pairs (``x / (x + y + 1e-4)`` as SAM3).
    * ``positive_micro_precision`` / ``positive_micro_F1``: FPs counted only on pairs that have
      ground truth (pmF1); ``positive_macro_F1``: mean of per-pair F1 over pairs with both
      ground truth and detections (-1 when there are none).
    * ``IL_*``: image-level presence, a pair is positive when it has ground truth and predicted
      positive when it has a kept detection: precision, recall, F1, FPR and Matthews
      correlation ``IL_MCC`` (``1e-6`` guards as SAM3).
    * ``cgF1 = positive_micro_F1 x IL_MCC``.

    Box-level values are averaged over the 10 thresholds; ``name@0.5`` and ``name@0.75`` are
    single thresholds. Names are SAM3's without the ``cgF1_eval_{iou_type}_`` prefix.

    Parameters
    ----------
    gt
        SA-Co-style COCO dict: ``images`` (``id``, ``is_instance_exhaustive``, ``height``,
        ``width``; ``text_input`` is not used), ``annotations`` (``image_id``, ``category_id``,
        ``segmentation`` RLE or polygon for ``"segm"``, ``bbox`` xywh for ``"bbox"``,
        ``iscrowd``; missing ``iscrowd`` reads as 0) and ``categories``.
    predictions
        COCO results: ``image_id``, ``score``, ``segmentation`` (RLE) and/or ``bbox`` (xywh),
        optional ``category_id``. As SAM3's ``loadRes``: for ``"segm"`` a result without a
        segmentation uses its box as a polygon; for ``"bbox"`` one without a box uses the box of
        its mask.
    iou_type
        ``"segm"`` or ``"bbox"``.
    score_threshold
        Detections with ``score >= score_threshold`` are kept (SAM3 uses 0.5).

    Returns
    -------
    dict of str to float
        The 26 metrics of SAM3's evaluator.

    Raises
    ------
    ValueError
        No exhaustive pair; a result whose ``image_id`` is not in ``gt`` (SAM3 silently skips
        those) or whose score is missing/NaN; an annotation or result with a ``category_id``
        that ``gt["categories"]`` lacks (SAM3 silently drops those); mask sizes that do not
        match their image; an unknown ``iou_type``.

    Notes
    -----
    Not supported: SAM3's "oracle" mode with several ground-truth files.
    """
    if iou_type not in ("segm", "bbox"):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', got {iou_type!r}.")
    if not (isinstance(score_threshold, int | float) and math.isfinite(score_threshold)):
        raise ValueError(f"score_threshold must be a finite number, got {score_threshold!r}.")
    images = _require(gt, "images", "gt")
    anns = gt.get("annotations", [])
    cat_ids = sorted(c["id"] for c in gt.get("categories", []))
    cat_rank = {c: i for i, c in enumerate(cat_ids)}
    img_by_id: dict[Any, Mapping[str, Any]] = {}
    for img in images:
        img_by_id[_require(img, "id", "gt image")] = img
    eval_ids = [
        img["id"]
        for img in images
        if _require(img, "is_instance_exhaustive", f"gt image {img['id']}")
    ]
    if not eval_ids:
        raise ValueError(
            "cgf1: no (image, phrase) pair has is_instance_exhaustive=True, so nothing can be "
            "scored (SAM3's evaluator crashes here)."
        )

    default_cat = cat_ids[0] if cat_ids else None
    gts_by_img = _group_annotations(anns, img_by_id, cat_rank)
    preds_by_img = _group_predictions(
        predictions, img_by_id, cat_rank, default_cat, score_threshold
    )

    n = len(eval_ids)
    n_gt = np.zeros(n, dtype=np.int64)
    n_dt = np.zeros(n, dtype=np.int64)
    match_img: list[int] = []
    match_iou: list[float] = []
    for k, iid in enumerate(eval_ids):
        g = gts_by_img.get(iid)
        d = preds_by_img.get(iid)
        n_gt[k] = len(g) if g else 0
        n_dt[k] = len(d) if d else 0
        if not g or not d:
            continue
        # SAM3 orders ground truth and detections by category id (stable within a category);
        # the order matters for linear_sum_assignment's choice among equally good matchings
        if len(cat_ids) > 1:
            g = sorted(g, key=lambda a: cat_rank[a["category_id"]])
            d = sorted(d, key=lambda p: cat_rank[p.get("category_id", default_cat)])
        ious = _iou_matrix(d, g, img_by_id[iid], iou_type)
        if ious.shape[0] == 1 or ious.shape[1] == 1:
            match = [float(ious.max())]  # any optimal 1-to-n matching has this one value
        else:
            rows, cols = linear_sum_assignment(-ious)
            match = ious[rows, cols].tolist()
        match_img.extend([k] * len(match))
        match_iou.extend(match)
    mi = np.asarray(match_img, dtype=np.int64)
    mv = np.asarray(match_iou, dtype=np.float64)
    tps = np.stack(
        [np.bincount(mi[mv >= t], minlength=n) for t in CGF1_IOU_THRESHOLDS], axis=1
    ).astype(np.int64)
    return _cgf1_from_counts(tps, n_gt, n_dt)


def _group_annotations(
    anns: Sequence[Mapping[str, Any]],
    img_by_id: Mapping[Any, Any],
    cat_rank: Mapping[Any, int],
) -> dict[Any, list[Mapping[str, Any]]]:
    """Non-crowd annotations per image id, in file order (crowd ones are SAM3's "ignore")."""
    try:
        iids = [a["image_id"] for a in anns]
        cids = {a["category_id"] for a in anns}
    except KeyError as e:
        raise ValueError(
            f"a gt annotation has no {e.args[0]!r} field (COCO format needs it)."
        ) from None
    unknown = set(iids) - img_by_id.keys()
    if unknown:
        raise ValueError(
            f"gt annotations refer to unknown image_id(s) {sorted(unknown, key=str)[:3]}."
        )
    if cids - cat_rank.keys():
        raise ValueError(
            f"gt annotations use category_id(s) {sorted(cids - cat_rank.keys(), key=str)[:3]} that "
            "gt['categories'] lacks (SAM3's evaluator would silently drop them); add them."
        )
    out: dict[Any, list[Mapping[str, Any]]] = defaultdict(list)
    for a, iid in zip(anns, iids, strict=True):
        if not a.get("iscrowd", 0):
            out[iid].append(a)
    return out


def _group_predictions(
    predictions: Sequence[Mapping[str, Any]],
    img_by_id: Mapping[Any, Any],
    cat_rank: Mapping[Any, int],
    default_cat: Any,
    score_threshold: float,
) -> dict[Any, list[Mapping[str, Any]]]:
    """Kept (score >= threshold) predictions per image id, in file order, after validation."""
    try:
        iids = [p["image_id"] for p in predictions]
        raw = [p["score"] for p in predictions]
    except KeyError as e:
        raise ValueError(
            f"a prediction has no {e.args[0]!r} field (COCO results need it)."
        ) from None
    try:
        scores = np.asarray(raw, dtype=np.float64).reshape(len(raw))
    except (TypeError, ValueError):
        raise ValueError("prediction scores must be numbers.") from None
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise ValueError(
            f"prediction {int(bad[0])} has score {raw[int(bad[0])]!r}; scores must be finite "
            "numbers (replace NaN, e.g. by 0, or drop the detection)."
        )
    unknown = set(iids) - img_by_id.keys()
    if unknown:
        raise ValueError(
            f"predictions refer to image_id(s) {sorted(unknown, key=str)[:3]} that are not images "
            "of gt; results must use gt's (image, phrase) pair ids."
        )
    cids = {p.get("category_id", default_cat) for p in predictions}
    if cids - cat_rank.keys():
        raise ValueError(
            f"predictions use category_id(s) {sorted(cids - cat_rank.keys(), key=str)[:3]} that "
            "gt['categories'] lacks (SAM3's evaluator would silently drop them)."
        )
    out: dict[Any, list[Mapping[str, Any]]] = defaultdict(list)
    for k in np.flatnonzero(scores >= score_threshold).tolist():
        out[iids[k]].append(predictions[k])
    return out


def _rle_of(segm: Any, h: int, w: int) -> Any:
    if type(segm) is dict and type(segm.get("counts")) in (str, bytes):
        return segm  # compressed RLE: used as is (annToRLE)
    return segmentation_to_rle(segm, h, w)


def _pred_rle(pred: Mapping[str, Any], h: int, w: int) -> Any:
    if "segmentation" in pred:
        return _rle_of(pred["segmentation"], h, w)
    if "bbox" in pred:
        return segmentation_to_rle(_box_polygon(pred["bbox"]), h, w)
    raise ValueError(
        f"prediction for image {pred.get('image_id')!r} has neither segmentation nor bbox."
    )


def _pred_box(pred: Mapping[str, Any]) -> Any:
    if "bbox" in pred:
        return pred["bbox"]
    if "segmentation" in pred:
        return mask_utils.toBbox(pred["segmentation"]).tolist()
    raise ValueError(
        f"prediction for image {pred.get('image_id')!r} has neither bbox nor segmentation."
    )


def _iou_matrix(
    dts: list[Mapping[str, Any]],
    gts: list[Mapping[str, Any]],
    img: Mapping[str, Any],
    iou_type: str,
) -> np.ndarray:
    if iou_type == "segm":
        try:
            h, w = img["height"], img["width"]
            g = [_rle_of(a["segmentation"], h, w) for a in gts]
        except KeyError as e:
            raise ValueError(
                f"gt image {img['id']!r} or one of its annotations has no {e.args[0]!r} field "
                "(needed for iou_type='segm')."
            ) from None
        d = [_pred_rle(p, h, w) for p in dts]
    else:
        try:
            g = np.asarray([a["bbox"] for a in gts], dtype=np.float64)
        except KeyError:
            raise ValueError(f"a gt annotation of image {img['id']!r} has no 'bbox'.") from None
        d = np.asarray([_pred_box(p) for p in dts], dtype=np.float64)
    ious = np.asarray(mask_utils.iou(d, g, [0] * len(gts)), dtype=np.float64)
    ious = ious.reshape(len(dts), len(gts))
    if iou_type == "segm" and (ious < 0).any():  # pycocotools' silent -1 for a size mismatch
        sizes = sorted({tuple(r["size"]) for r in g + d})
        raise ValueError(
            f"image {img['id']!r} is {img['height']}x{img['width']} but its masks have RLE sizes "
            f"{sizes}; encode masks at the image's size."
        )
    return ious


def _cgf1_from_counts(tps: np.ndarray, n_gt: np.ndarray, n_dt: np.ndarray) -> dict[str, float]:
    """SAM3's CGF1Eval.accumulate + summarize from per-pair TP counts (n_pairs, n_thr)."""
    has_gt, has_dt = n_gt > 0, n_dt > 0
    il_tp = int(np.sum(has_gt & has_dt))
    il_fp = int(np.sum(~has_gt & has_dt))
    il_tn = int(np.sum(~has_gt & ~has_dt))
    il_fn = int(np.sum(has_gt & ~has_dt))
    scored = has_gt | has_dt  # pairs SAM3 gives TP/FP/FN arrays (all but true negatives)
    fps = n_dt[:, None] - tps
    fns = n_gt[:, None] - tps
    tp_sum = tps[scored].sum(axis=0)
    fp_sum = fps[scored].sum(axis=0)
    fn_sum = fns[scored].sum(axis=0)
    pm_fp_sum = fps[has_gt].sum(axis=0)
    both = has_gt & has_dt
    tp_b, fp_b, fn_b = tps[both], fps[both], fns[both]
    p_loc = tp_b / (tp_b + fp_b + 1e-4)
    r_loc = tp_b / (tp_b + fn_b + 1e-4)
    local_f1 = (2 * p_loc * r_loc / (p_loc + r_loc + 1e-4)).sum(axis=0)
    valid_f1 = int(both.sum())

    precision = tp_sum / (tp_sum + fp_sum + 1e-4)
    pm_precision = tp_sum / (tp_sum + pm_fp_sum + 1e-4)
    recall = tp_sum / (tp_sum + fn_sum + 1e-4)
    f1 = 2 * precision * recall / (precision + recall + 1e-4)
    pm_f1 = 2 * pm_precision * recall / (pm_precision + recall + 1e-4)
    with np.errstate(invalid="ignore", divide="ignore"):
        macro_f1 = local_f1 / valid_f1 if valid_f1 else np.full(len(tp_sum), np.nan)

    il_rec = il_tp / (il_tp + il_fn + 1e-6)
    il_prec = il_tp / (il_tp + il_fp + 1e-6)
    il_f1 = 2 * il_prec * il_rec / (il_prec + il_rec + 1e-6)
    il_fpr = il_fp / (il_fp + il_tn + 1e-6)
    il_mcc = float(il_tp * il_tn - il_fp * il_fn) / (
        (float(il_tp + il_fp) * float(il_tp + il_fn) * float(il_tn + il_fp) * float(il_tn + il_fn))
        ** 0.5
        + 1e-6
    )
    box = {
        "cgF1": pm_f1 * il_mcc,
        "precision": precision,
        "recall": recall,
        "F1": f1,
        "positive_macro_F1": macro_f1,
        "positive_micro_F1": pm_f1,
        "positive_micro_precision": pm_precision,
    }
    image = {
        "IL_precision": il_prec,
        "IL_recall": il_rec,
        "IL_F1": il_f1,
        "IL_FPR": il_fpr,
        "IL_MCC": il_mcc,
    }
    out: dict[str, float] = {}
    for name in _BOX_LEVEL:
        out[name] = _summary(box[name])
    for name in _IMAGE_LEVEL:
        out[name] = float(image[name])
    for thr in (0.5, 0.75):
        t = np.where(thr == CGF1_IOU_THRESHOLDS)[0]
        for name in _BOX_LEVEL:
            out[f"{name}@{thr}"] = _summary(box[name][t])
    return out
