"""Concept metrics over `samgap_lib.data.Sample` ground truth, sharing one matching rule.

`match_detections`: detections with ``score >= score_threshold``, matched one-to-one to the
instances a phrase denotes by Hungarian matching that maximises total mask IoU (as cgF1); a
match counts when its IoU ``>= iou_threshold``. On it rest `concept_counts` (found / named /
kept per image), `concept_recall`, `open_vocab_f1`, `attribute_accuracy` and
`localization_error`.

Predictions are ``predictions[phrase_text][i]`` for ``samples[i]``, each either a mapping with
``"masks"`` ``(M, H, W)`` and ``"scores"`` ``(M,)``, an object with ``masks`` and ``scores``
attributes, or a ``(masks, scores)`` tuple.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from samgap_lib.data.types import Concept, Sample, as_concepts
from samgap_lib.prompts.concepts import denoted_instances

from ..masks import as_mask_stack, mask_iou_matrix

__all__ = [
    "attribute_accuracy",
    "concept_counts",
    "concept_recall",
    "localization_error",
    "match_detections",
    "open_vocab_f1",
]


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
