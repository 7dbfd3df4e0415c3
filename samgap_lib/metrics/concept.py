"""Concept-prompt metrics: cgF1 (SAM3), concept recall, open-vocabulary F1, attribute accuracy,
localization error, and where the misses and false detections go (`concept_errors`).

`cgf1` reproduces ``sam3.eval.cgf1_eval.CGF1Evaluator`` (sam3 0.1.4) exactly, from in-memory
COCO dicts, vectorised over thresholds and without building a COCO object per image. The other
metrics take `samgap_lib.data.Sample` ground truth, `samgap_lib.data.Concept` phrases and
per-phrase predictions, and share one matching rule: `match_detections` (detections with
``score >= score_threshold``, one-to-one Hungarian matching that maximises total mask IoU, as
cgF1, and a match counts when its IoU ``>= iou_threshold``).

Predictions for these are ``predictions[phrase_text][i]`` for ``samples[i]``, each either a
mapping with ``"masks"`` ``(M, H, W)`` and ``"scores"`` ``(M,)``, an object with ``masks`` and
``scores`` attributes, or a ``(masks, scores)`` tuple.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from samgap_lib.data.types import Concept, Sample, as_concepts
from samgap_lib.prompts.concepts import denoted_instances

from ..data.coco import masks_to_rles, segmentation_to_rle
from .masks import as_mask_stack

__all__ = [
    "CGF1_IOU_THRESHOLDS",
    "DETECTION_OUTCOMES",
    "INSTANCE_OUTCOMES",
    "attribute_accuracy",
    "cgf1",
    "concept_counts",
    "concept_errors",
    "concept_recall",
    "detection_error_labels",
    "localization_error",
    "mask_iou_matrix",
    "match_detections",
    "open_vocab_f1",
    "pool_concept_errors",
]

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


# --------------------------------------------------------------------------------------------
# cgF1
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Matching and the Sample-based concept metrics
# --------------------------------------------------------------------------------------------


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


def _check_scores(scores: Any, m: int) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.shape != (m,):
        raise ValueError(f"scores has shape {np.shape(scores)} but there are {m} predicted masks.")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; replace them (e.g. with 0) or drop those masks.")
    return s


def match_detections(
    pred_masks: Any,
    gt_masks: Any,
    scores: Any | None = None,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of detections to ground truth, as cgF1.

    Detections with ``score >= score_threshold`` (all of them when ``scores`` is ``None``) are
    matched to the ground truth by the Hungarian algorithm maximising the total IoU; matched pairs
    with IoU ``>= iou_threshold`` are returned.

    Returns
    -------
    pred_idx, gt_idx, ious
        int64 indices into ``pred_masks`` and ``gt_masks`` and the float64 IoU of each pair.
    """
    p = as_mask_stack(pred_masks, "pred_masks")
    if p.ndim != 3:
        raise ValueError(f"pred_masks must be an (M, H, W) stack, got shape {p.shape}.")
    keep = np.arange(len(p))
    if scores is not None:
        keep = np.flatnonzero(_check_scores(scores, len(p)) >= score_threshold)
    return _assign(mask_iou_matrix(p[keep], gt_masks), keep, iou_threshold)


def _assign(
    ious: np.ndarray, keep: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`match_detections` on the ``(len(keep), N)`` IoU matrix of the kept detections."""
    empty = np.zeros(0, dtype=np.int64)
    if ious.size == 0:
        return empty, empty, np.zeros(0, dtype=np.float64)
    rows, cols = linear_sum_assignment(-ious)
    vals = ious[rows, cols]
    ok = vals >= iou_threshold
    return keep[rows[ok]].astype(np.int64), cols[ok].astype(np.int64), vals[ok]


def _prediction(predictions: Mapping[str, Sequence[Any]], phrase: str, i: int, sample: Sample):
    if phrase not in predictions:
        raise ValueError(f"no predictions for phrase {phrase!r}; have {sorted(predictions)}.")
    per = predictions[phrase]
    if len(per) <= i:
        raise ValueError(f"predictions[{phrase!r}] has {len(per)} entries; need one per sample.")
    item = per[i]
    if isinstance(item, Mapping):
        masks, scores = item["masks"], item["scores"]
    elif hasattr(item, "masks") and hasattr(item, "scores"):
        masks, scores = item.masks, item.scores
    else:
        masks, scores = item
    m = as_mask_stack(masks, f"predictions[{phrase!r}][{i}].masks")
    if m.ndim == 2 and m.size == 0:
        m = m.reshape(0, sample.height, sample.width)
    if m.ndim != 3 or m.shape[1:] != (sample.height, sample.width):
        raise ValueError(
            f"predictions[{phrase!r}][{i}].masks has shape {m.shape}; expected (M, "
            f"{sample.height}, {sample.width}) at the image's size."
        )
    return m, _check_scores(scores, len(m))


def concept_counts(
    samples: Sequence[Sample],
    predictions: Mapping[str, Sequence[Any]],
    concepts: Sequence[Concept | str],
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> dict[str, dict[str, np.ndarray]]:
    """Per phrase and per image, the counts behind recall and precision.

    For phrase c and image i: ``found[i]`` instances c denotes that a detection with score
    ``>= score_threshold`` matches one-to-one at IoU ``>= iou_threshold`` (`match_detections`),
    ``named[i]`` instances c denotes, ``kept[i]`` detections over the threshold. Recall is
    ``found.sum() / named.sum()`` and precision ``found.sum() / kept.sum()`` (`concept_recall`);
    kept per image, the counts give intervals over images
    (`samgap_lib.metrics.bootstrap_ratio(found, named)`).

    Returns
    -------
    dict
        ``{phrase: {"found", "named", "kept"}}``, each an ``(len(samples),)`` int64 array.
    """
    counts = {}
    for c in as_concepts(concepts):
        per = {k: np.zeros(len(samples), np.int64) for k in ("found", "named", "kept")}
        for i, s in enumerate(samples):
            m, sc = _prediction(predictions, c.text, i, s)
            idx = denoted_instances(s, c)
            gt = s.masks[idx] if idx.size else np.zeros((0, s.height, s.width), bool)
            pi, _, _ = match_detections(m, gt, sc, score_threshold, iou_threshold)
            per["found"][i] = len(pi)
            per["named"][i] = len(idx)
            per["kept"][i] = int((sc >= score_threshold).sum())
        counts[c.text] = per
    return counts


def _per_phrase_counts(samples, predictions, concepts, score_threshold, iou_threshold):
    """``{phrase: (TP, FP, FN)}`` pooled over the samples."""
    out = {}
    for text, c in concept_counts(
        samples, predictions, concepts, score_threshold, iou_threshold
    ).items():
        tp, kept, named = (int(c[k].sum()) for k in ("found", "kept", "named"))
        out[text] = (tp, kept - tp, named - tp)
    return out


def concept_recall(
    samples: Sequence[Sample],
    predictions: Mapping[str, Sequence[Any]],
    concepts: Sequence[Concept | str],
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> dict[str, float]:
    """Fraction of the instances a phrase denotes that its detections find.

    For phrase c, ``recall[c] = TP / (number of instances c denotes over all samples)``, TPs by
    `match_detections` against the denoted instances only.

    Returns
    -------
    dict
        ``"recall"`` (micro: pooled over phrases), ``"macro_recall"`` (mean over phrases that
        denote at least one instance) and ``"recall[<phrase>]"`` per phrase (NaN for a phrase that
        denotes nothing, e.g. a negative phrase). NaN overall when no phrase denotes anything.
    """
    counts = _per_phrase_counts(samples, predictions, concepts, score_threshold, iou_threshold)
    out: dict[str, float] = {}
    per = []
    tp_all = n_all = 0
    for text, (tp, _fp, fn) in counts.items():
        n = tp + fn
        r = tp / n if n else float("nan")
        out[f"recall[{text}]"] = r
        if n:
            per.append(r)
        tp_all += tp
        n_all += n
    out["recall"] = tp_all / n_all if n_all else float("nan")
    out["macro_recall"] = float(np.mean(per)) if per else float("nan")
    return out


def open_vocab_f1(
    samples: Sequence[Sample],
    predictions: Mapping[str, Sequence[Any]],
    concepts: Sequence[Concept | str],
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> dict[str, float]:
    """Instance-level F1 of each phrase over all samples, and its micro/macro averages.

    For phrase c, over all samples: TP = matched detections (`match_detections` against the
    instances c denotes), FP = kept detections - TP (a detection for a negative phrase is always
    an FP), FN = denoted instances - TP; ``F1[c] = 2 TP / (2 TP + FP + FN)``.

    Returns
    -------
    dict
        ``"F1[<phrase>]"`` (NaN when the phrase has neither instances nor detections: nothing to
        score), ``"F1_macro"`` (mean of the non-NaN per-phrase F1s), ``"F1_micro"``,
        ``"precision_micro"`` and ``"recall_micro"`` (pooled counts; NaN when undefined).
    """
    counts = _per_phrase_counts(samples, predictions, concepts, score_threshold, iou_threshold)
    out: dict[str, float] = {}
    per = []
    tp_a = fp_a = fn_a = 0
    for text, (tp, fp, fn) in counts.items():
        den = 2 * tp + fp + fn
        f = 2 * tp / den if den else float("nan")
        out[f"F1[{text}]"] = f
        if den:
            per.append(f)
        tp_a, fp_a, fn_a = tp_a + tp, fp_a + fp, fn_a + fn
    den = 2 * tp_a + fp_a + fn_a
    out["F1_micro"] = 2 * tp_a / den if den else float("nan")
    out["precision_micro"] = tp_a / (tp_a + fp_a) if tp_a + fp_a else float("nan")
    out["recall_micro"] = tp_a / (tp_a + fn_a) if tp_a + fn_a else float("nan")
    out["F1_macro"] = float(np.mean(per)) if per else float("nan")
    return out


def attribute_accuracy(
    samples: Sequence[Sample],
    predictions: Mapping[str, Sequence[Any]],
    concepts: Sequence[Concept],
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> dict[str, float]:
    """Does an attribute phrase ("ripe apple") select the instances with that attribute?

    For phrase c with category k: its kept detections are matched (`match_detections`) against
    *all* instances of category k, whatever their attributes. Then

    * ``attribute_precision[c]`` = matched detections whose instance has c's attributes /
      matched detections (how often a "ripe apple" detection that lands on an apple lands on a
      ripe one);
    * ``attribute_rejection[c]`` = instances of category k *without* c's attributes that no
      detection matched / such instances (the complement: how well it leaves other apples out).

    Returns
    -------
    dict
        The two per-phrase values, the pooled ``"attribute_precision"`` and
        ``"attribute_rejection"`` (counts summed over phrases), and ``"n_matched"``,
        ``"n_other"``. A ratio with a zero denominator is NaN.
    """
    out: dict[str, float] = {}
    tot = np.zeros(4, dtype=np.int64)  # matched, matched-correct, other, other-unmatched
    for c in as_concepts(concepts):
        base = Concept(c.text, c.category)
        cnt = np.zeros(4, dtype=np.int64)
        for i, s in enumerate(samples):
            m, sc = _prediction(predictions, c.text, i, s)
            cat_idx = denoted_instances(s, base)
            gt = s.masks[cat_idx] if cat_idx.size else np.zeros((0, s.height, s.width), bool)
            _, gi, _ = match_detections(m, gt, sc, score_threshold, iou_threshold)
            has_attr = np.array([c.matches(s.instances[j]) for j in cat_idx], dtype=bool)
            matched = np.zeros(len(cat_idx), dtype=bool)
            matched[gi] = True
            cnt += (
                len(gi),
                int(has_attr[gi].sum()),
                int((~has_attr).sum()),
                int((~has_attr & ~matched).sum()),
            )
        out[f"attribute_precision[{c.text}]"] = cnt[1] / cnt[0] if cnt[0] else float("nan")
        out[f"attribute_rejection[{c.text}]"] = cnt[3] / cnt[2] if cnt[2] else float("nan")
        tot += cnt
    out["attribute_precision"] = tot[1] / tot[0] if tot[0] else float("nan")
    out["attribute_rejection"] = tot[3] / tot[2] if tot[2] else float("nan")
    out["n_matched"] = float(tot[0])
    out["n_other"] = float(tot[2])
    return {k: float(v) for k, v in out.items()}


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def localization_error(
    samples: Sequence[Sample],
    predictions: Mapping[str, Sequence[Any]],
    concepts: Sequence[Concept | str],
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> dict[str, float]:
    """How far matched detections sit from their instance, relative to the instance's size.

    For every pair matched by `match_detections` (against the instances each phrase denotes):
    ``err = ||centroid(pred) - centroid(gt)||_2 / sqrt(area(gt))``, centroids being the mean
    pixel coordinates. 0 is perfectly centred; for a disc of radius r a shift by r gives
    ``1 / sqrt(pi) ~ 0.56``.

    Returns
    -------
    dict
        ``"mean"``, ``"median"``, ``"max"`` of err over all matches and ``"n_matched"``; the
        statistics are NaN when nothing matched.
    """
    errs: list[float] = []
    for c in as_concepts(concepts):
        for i, s in enumerate(samples):
            m, sc = _prediction(predictions, c.text, i, s)
            idx = denoted_instances(s, c)
            if idx.size == 0:
                continue
            gt = s.masks[idx]
            pi, gi, _ = match_detections(m, gt, sc, score_threshold, iou_threshold)
            for a, b in zip(pi, gi, strict=True):
                d = np.linalg.norm(_centroid(m[a]) - _centroid(gt[b]))
                errs.append(float(d / math.sqrt(gt[b].sum())))
    e = np.asarray(errs, dtype=np.float64)
    nan = float("nan")
    return {
        "mean": float(e.mean()) if e.size else nan,
        "median": float(np.median(e)) if e.size else nan,
        "max": float(e.max()) if e.size else nan,
        "n_matched": float(e.size),
    }


# --------------------------------------------------------------------------------------------
# Where recall and precision go: an error breakdown at the operating point
# --------------------------------------------------------------------------------------------

INSTANCE_OUTCOMES = ("found", "low score", "poor mask", "missed")
DETECTION_OUTCOMES = (
    "correct",
    "duplicate",
    "other concept",
    "poor mask",
    "other concept, poor mask",
    "background",
)


def detection_error_labels(
    pred_masks: Any,
    scores: Any,
    gt_masks: Any,
    denoted: Any,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
    background_iou: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Why each instance a phrase denotes is found or not, and what each kept detection hit.

    A TIDE-style breakdown (Bolya et al., ECCV 2020: foreground IoU ``t_f = iou_threshold``,
    background IoU ``t_b = background_iou``) taken at one operating point, the one recall and
    precision are read at. Kept detections (``score >= score_threshold``) are matched to the
    denoted instances by `match_detections`; its true positives are ``"found"`` / ``"correct"``.

    Each other denoted instance gets the first label that applies:

    * ``"low score"``: a detection *under* the score threshold covers it (IoU ``>= t_f``); the
      model drew it but did not commit to it (a threshold or calibration problem);
    * ``"poor mask"``: a kept detection that is not a true positive overlaps it (IoU ``>= t_b``);
      it was found roughly but drawn too badly to count;
    * ``"missed"``: nothing above.

    Each other kept detection gets the first label that applies (``d`` being its IoU with the
    denoted instances, ``o`` with the image's other instances):

    * ``"duplicate"``: ``d >= t_f`` on a found instance (a second answer for it);
    * ``"other concept"``: ``o >= t_f``: it lands on an instance the phrase does not denote (the
      wrong attribute or category: a ripe apple for "unripe apple", any apple for "pear");
    * ``"poor mask"``: ``d >= t_b``;
    * ``"other concept, poor mask"``: ``o >= t_b``;
    * ``"background"``: neither.

    Parameters
    ----------
    pred_masks, scores
        ``(M, H, W)`` detections and their ``(M,)`` scores.
    gt_masks
        ``(N, H, W)`` every instance of the image.
    denoted
        Indices into ``gt_masks`` of the instances the phrase denotes (`denoted_instances`).

    Returns
    -------
    instance_labels, detection_labels
        ``(len(denoted),)`` labels from `INSTANCE_OUTCOMES`, in the order of ``denoted``, and
        ``(M,)`` labels from `DETECTION_OUTCOMES`, with ``""`` for detections under the score
        threshold (not counted as detections).
    """
    if not 0 <= background_iou <= iou_threshold:
        raise ValueError(
            f"background_iou must lie in [0, iou_threshold={iou_threshold}], got {background_iou}."
        )
    p = as_mask_stack(pred_masks, "pred_masks")
    g = as_mask_stack(gt_masks, "gt_masks")
    sc = _check_scores(scores, len(p))
    den = np.asarray(denoted, dtype=np.int64).ravel()
    if den.size and (den.min() < 0 or den.max() >= len(g) or len(np.unique(den)) != den.size):
        raise ValueError(
            f"denoted must be distinct indices into the {len(g)} ground-truth masks, got {den}."
        )
    ious = mask_iou_matrix(p, g)  # (M, N), computed once for the matching and the labels
    kept = sc >= score_threshold
    pi, gi, _ = _assign(ious[np.ix_(kept, den)], np.flatnonzero(kept), iou_threshold)
    found = np.zeros(den.size, dtype=bool)
    found[gi] = True
    tp = np.zeros(len(p), dtype=bool)
    tp[pi] = True
    d = ious[:, den]  # (M, K) with the denoted instances
    o = ious[:, np.setdiff1d(np.arange(len(g)), den)]

    inst = np.full(den.size, "missed", dtype=object)
    inst[found] = "found"
    for k in np.flatnonzero(~found):
        if (d[~kept, k] >= iou_threshold).any():
            inst[k] = "low score"
        elif (d[kept & ~tp, k] >= background_iou).any():
            inst[k] = "poor mask"

    def best(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return a[rows].max(1) if a.shape[1] else np.zeros(len(rows))

    det = np.full(len(p), "", dtype=object)
    det[tp] = "correct"
    fp = np.flatnonzero(kept & ~tp)
    d_best, o_best = best(d, fp), best(o, fp)
    dup = (d[fp][:, found] >= iou_threshold).any(1) if found.any() else np.zeros(fp.size, bool)
    for j, is_dup, db, ob in zip(fp, dup, d_best, o_best, strict=True):
        if is_dup:
            det[j] = "duplicate"
        elif ob >= iou_threshold:
            det[j] = "other concept"
        elif db >= background_iou:
            det[j] = "poor mask"
        elif ob >= background_iou:
            det[j] = "other concept, poor mask"
        else:
            det[j] = "background"
    return inst.astype(str), det.astype(str)


def concept_errors(
    samples: Sequence[Sample],
    predictions: Mapping[str, Sequence[Any]],
    concepts: Sequence[Concept | str],
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
    background_iou: float = 0.1,
    area_edges: Sequence[float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per phrase, the instances it denotes and the detections it keeps, counted by outcome
    (`detection_error_labels`, pooled over the samples).

    ``instances["found"] / sum(instances)`` is the phrase's recall (`concept_recall`) and
    ``detections["correct"] / sum(detections)`` its precision; the other outcomes say where the
    rest goes. A negative phrase ("pear") has no instances, and all its detections are errors.
    "low score" needs the detections under ``score_threshold``: a segmenter that drops them
    itself (SAM3's post-processing keeps scores over 0.5) never shows one.

    Parameters
    ----------
    area_edges
        Increasing visible areas in pixels, e.g. ``(0, 200, 400, inf)``: the instances are also
        counted per area bin ``[edges[i], edges[i+1])``. Instances outside every bin are left
        out of the bins only.

    Returns
    -------
    dict
        ``{phrase: {"instances": {outcome: count}, "detections": {outcome: count}}}`` with every
        outcome of `INSTANCE_OUTCOMES` and `DETECTION_OUTCOMES`, zeros included; with
        ``area_edges``, also ``"by_area"``: one dict per bin with ``"area from"``,
        ``"area to"`` and the instance outcome counts.
    """
    edges = None
    if area_edges is not None:
        edges = np.asarray(area_edges, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or (np.diff(edges) <= 0).any() or edges[0] < 0:
            raise ValueError(
                f"area_edges must be at least two increasing areas >= 0, got {area_edges}."
            )
    out: dict[str, dict[str, Any]] = {}
    for c in as_concepts(concepts):
        inst = dict.fromkeys(INSTANCE_OUTCOMES, 0)
        det = dict.fromkeys(DETECTION_OUTCOMES, 0)
        binned = [
            dict.fromkeys(INSTANCE_OUTCOMES, 0)
            for _ in range(0 if edges is None else len(edges) - 1)
        ]
        for i, s in enumerate(samples):
            m, sc = _prediction(predictions, c.text, i, s)
            gt = s.masks if s.instances else np.zeros((0, s.height, s.width), bool)
            den = denoted_instances(s, c)
            li, ld = detection_error_labels(
                m, sc, gt, den, score_threshold, iou_threshold, background_iou
            )
            for k, lab in zip(den, li, strict=True):
                inst[lab] += 1
                if edges is not None:
                    b = int(np.searchsorted(edges, s.instances[k].area, side="right")) - 1
                    if 0 <= b < len(binned):
                        binned[b][lab] += 1
            for lab in ld[ld != ""]:
                det[lab] += 1
        out[c.text] = {"instances": inst, "detections": det}
        if edges is not None:
            out[c.text]["by_area"] = [
                {"area from": float(lo), "area to": float(hi), **cnt}
                for lo, hi, cnt in zip(edges[:-1], edges[1:], binned, strict=True)
            ]
    return out


def pool_concept_errors(errors: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """`concept_errors` summed over its phrases: ``{"instances": {outcome: count},
    "detections": {outcome: count}}`` (every outcome, zeros included)."""
    return {
        "instances": {
            k: sum(e["instances"][k] for e in errors.values()) for k in INSTANCE_OUTCOMES
        },
        "detections": {
            k: sum(e["detections"][k] for e in errors.values()) for k in DETECTION_OUTCOMES
        },
    }
