"""Where recall and precision go: an error breakdown of concept predictions at the operating point.

Each instance a phrase denotes is ``found``, found with a ``low score``, found with a ``poor
mask`` or ``missed`` (`INSTANCE_OUTCOMES`); each kept detection is ``correct``, a
``duplicate``, on an ``other concept``, a ``poor mask`` or on the ``background``
(`DETECTION_OUTCOMES`). `detection_error_labels` labels one image, `concept_errors` a phrase
over samples and `pool_concept_errors` sums phrases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from samgap_lib.data.types import Concept, Sample, as_concepts
from samgap_lib.prompts.concepts import denoted_instances

from ..masks import as_mask_stack, mask_iou_matrix
from .matching import _assign, _check_scores, _prediction

__all__ = [
    "DETECTION_OUTCOMES",
    "INSTANCE_OUTCOMES",
    "concept_errors",
    "detection_error_labels",
    "pool_concept_errors",
]


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
