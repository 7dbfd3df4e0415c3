"""Every metric on one prediction set (`evaluate`), a tidy table of all metrics while one
perturbation's strength is swept (`metric_response`), and Boundary F of eroded masks at several
tolerances (`erosion_boundary_response`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ...data.coco import to_saco
from ...data.types import Concept, Sample, as_concepts
from ...evaluation import coco_results
from ...metrics import (
    as_mask_stack,
    attribute_accuracy,
    boundary_f1,
    cgf1,
    coco_ap,
    concept_recall,
    dice,
    iou,
    mask_iou_matrix,
)
from ...prompts.concepts import denoted_instances
from .detections import PredictionSet, _check_predictions, ground_truth_predictions
from .perturbations import PERTURBATIONS, erode

# The keys `evaluate` returns, in table order: geometric metrics, then concept metrics.
METRICS = (
    "IoU",
    "Dice",
    "BF_davis",
    "BF_tight",
    "cgF1",
    "pmF1",
    "IL_MCC",
    "AP",
    "concept_recall",
    "attr_precision",
    "attr_rejection",
)


def _geometric(
    samples: Sequence[Sample],
    predictions: PredictionSet,
    concept: Concept,
    tight_tolerance: float,
    davis_bound_th: float,
) -> dict[str, float]:
    ious, dices, bf_d, bf_t = [], [], [], []
    for i, s in enumerate(samples):
        idx = denoted_instances(s, concept)
        if idx.size == 0:
            continue
        gt = s.masks[idx]
        pred = predictions[concept.text][i].masks
        best = np.zeros_like(gt)
        if len(pred):
            m = mask_iou_matrix(pred, gt)
            j = m.argmax(axis=0)
            hit = m[j, np.arange(len(idx))] > 0
            best[hit] = pred[j[hit]]
        ious.append(np.atleast_1d(iou(best, gt)))
        dices.append(np.atleast_1d(dice(best, gt)))
        bf_d.append(np.atleast_1d(boundary_f1(best, gt, davis_bound_th)))
        bf_t.append(np.atleast_1d(boundary_f1(best, gt, tight_tolerance)))
    if not ious:
        nan = float("nan")
        return {"IoU": nan, "Dice": nan, "BF_davis": nan, "BF_tight": nan}
    return {
        "IoU": float(np.concatenate(ious).mean()),
        "Dice": float(np.concatenate(dices).mean()),
        "BF_davis": float(np.concatenate(bf_d).mean()),
        "BF_tight": float(np.concatenate(bf_t).mean()),
    }


def evaluate(
    samples: Sequence[Sample],
    concepts: Sequence[Concept | str],
    predictions: PredictionSet,
    phrase: str = "apple",
    tight_tolerance: float = 2,
    davis_bound_th: float = 0.008,
    saco: Mapping[str, Any] | None = None,
    score_threshold: float = 0.5,
) -> dict[str, float]:
    """Every geometric and concept metric of one prediction set (keys: `METRICS`).

    Geometric metrics read the predictions the way a prompted (SAM2-style) evaluation does: for
    each ground-truth instance that ``phrase`` denotes, the predicted mask of ``phrase`` that
    overlaps it most (whatever its score: a prompt always returns a mask) is compared with it;
    an instance no mask overlaps gets an empty mask. ``IoU``, ``Dice``, ``BF_davis`` (Boundary F
    at the DAVIS tolerance ``davis_bound_th``) and ``BF_tight`` (at ``tight_tolerance``; a
    whole number of pixels, or a diagonal fraction below 1) are means over those instances.

    Concept metrics read every phrase and the scores: ``cgF1``, ``pmF1`` (positive micro F1) and
    ``IL_MCC`` from `samgap_lib.metrics.cgf1` (SAM3's evaluator), ``AP`` from
    `samgap_lib.metrics.coco_ap` (COCO mask AP over the (image, phrase) pairs),
    ``concept_recall`` (micro, `samgap_lib.metrics.concept_recall`) and ``attr_precision`` /
    ``attr_rejection`` (`samgap_lib.metrics.attribute_accuracy` over the phrases with
    attributes; NaN when there are none). Thresholded metrics keep ``score >= score_threshold``
    and match at IoU 0.5 (cgF1: averaged over IoU 0.50:0.95).

    Parameters
    ----------
    saco
        ``to_saco(samples, concepts)``, when already computed (it is the same for every
        prediction set of a sweep).
    """
    cs = as_concepts(concepts)
    _check_predictions(predictions, samples)
    missing = [c.text for c in cs if c.text not in predictions]
    if missing:
        raise ValueError(f"predictions lack phrase(s) {missing}.")
    by_text = {c.text: c for c in cs}
    if phrase not in by_text:
        raise ValueError(f"phrase {phrase!r} is not among the concepts {sorted(by_text)}.")
    gt = saco if saco is not None else to_saco(samples, cs)
    results = coco_results(predictions, cs)
    out = _geometric(samples, predictions, by_text[phrase], tight_tolerance, davis_bound_th)
    cg = cgf1(gt, results, score_threshold=score_threshold)
    out["cgF1"] = cg["cgF1"]
    out["pmF1"] = cg["positive_micro_F1"]
    out["IL_MCC"] = cg["IL_MCC"]
    out["AP"] = coco_ap(gt, results)["AP"]
    out["concept_recall"] = concept_recall(samples, predictions, cs, score_threshold)["recall"]
    attr = [c for c in cs if c.attributes]
    if attr:
        acc = attribute_accuracy(samples, predictions, attr, score_threshold)
        out["attr_precision"] = acc["attribute_precision"]
        out["attr_rejection"] = acc["attribute_rejection"]
    else:
        out["attr_precision"] = out["attr_rejection"] = float("nan")
    return {k: float(out[k]) for k in METRICS}


def metric_response(
    samples: Sequence[Sample],
    concepts: Sequence[Concept | str],
    perturbation: str | Callable[..., PredictionSet],
    strengths: Sequence[float],
    seed: int = 0,
    base: PredictionSet | None = None,
    phrase: str = "apple",
    tight_tolerance: float = 2,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Sweep one perturbation's strength and score every metric at each: a tidy table.

    Parameters
    ----------
    samples, concepts
        Ground truth and phrases.
    perturbation
        A name in `PERTURBATIONS`, or a callable
        ``f(predictions, samples, concepts, strength, seed) -> predictions``.
    strengths
        The strengths to apply, each to ``base`` (not cumulatively).
    seed
        Seed of the perturbation (and of ``base`` when it is made here).
    base
        The prediction to perturb; by default ``ground_truth_predictions(samples, concepts,
        seed)``.
    phrase, tight_tolerance
        Passed to `evaluate`.
    **kwargs
        Passed to the perturbation (e.g. ``kind="blob"`` for false positives).

    Returns
    -------
    list of dict
        One row per strength: ``perturbation`` (name), ``strength`` and the `METRICS`.
    """
    if isinstance(perturbation, str):
        if perturbation not in PERTURBATIONS:
            raise ValueError(
                f"unknown perturbation {perturbation!r}; choose one of {sorted(PERTURBATIONS)} "
                "or pass a callable."
            )
        fn, name = PERTURBATIONS[perturbation], perturbation
    elif callable(perturbation):
        fn, name = perturbation, getattr(perturbation, "__name__", "custom")
    else:
        raise TypeError("perturbation must be a name or a callable.")
    strengths = list(strengths)
    if not strengths:
        raise ValueError("metric_response: no strengths to sweep.")
    cs = as_concepts(concepts)
    if base is None:
        base = ground_truth_predictions(samples, cs, seed)
    saco = to_saco(samples, cs)
    rows = []
    for x in strengths:
        pred = fn(base, samples, cs, x, seed, **kwargs)
        row: dict[str, Any] = {"perturbation": name, "strength": x}
        row.update(evaluate(samples, cs, pred, phrase, tight_tolerance, saco=saco))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# Boundary tolerance and video
# --------------------------------------------------------------------------------------------


def erosion_boundary_response(
    masks: Sequence[np.ndarray],
    radii: Sequence[int],
    tolerances: Mapping[str, float],
    relative: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Boundary F (and IoU) of masks eroded by each radius, at several tolerances.

    Parameters
    ----------
    masks
        Ground-truth ``(H, W)`` masks (non-empty), e.g. every apple of a dataset.
    radii
        Erosion radii in pixels.
    tolerances
        Label -> ``bound_th`` of `samgap_lib.metrics.boundary_f1` (a fraction of the image
        diagonal below 1, e.g. DAVIS's 0.008, or whole pixels from 1).
    relative
        Label -> fraction ``f`` of each mask's equivalent diameter ``d = 2 sqrt(area / pi)``:
        the tolerance is ``max(1, ceil(f d))`` pixels for that mask (a size-relative tolerance).

    Returns
    -------
    list of dict
        One row per (radius, tolerance): ``radius``, ``tolerance`` (label), ``boundary_f``
        (mean over masks), ``iou`` (mean IoU of the eroded masks, the same for every tolerance)
        and ``n_masks``.
    """
    ms = [as_mask_stack(m, "mask") for m in masks]
    if not ms:
        raise ValueError("erosion_boundary_response: no masks.")
    for k, m in enumerate(ms):
        if m.ndim != 2 or not m.any():
            raise ValueError(f"mask {k} must be a non-empty (H, W) mask, got shape {m.shape}.")
    relative = dict(relative or {})
    if not tolerances and not relative:
        raise ValueError("give at least one tolerance.")
    for label, f in relative.items():
        if not (math.isfinite(f) and f > 0):
            raise ValueError(f"relative tolerance {label!r} must be a fraction > 0, got {f!r}.")
    rel_px = {
        label: [max(1, math.ceil(f * 2 * math.sqrt(m.sum() / math.pi))) for m in ms]
        for label, f in relative.items()
    }
    rows = []
    for r in radii:
        er = [erode(m, r) for m in ms]
        j = float(np.mean([iou(e, m) for e, m in zip(er, ms, strict=True)]))
        for label, th in tolerances.items():
            bf = [boundary_f1(e, m, th) for e, m in zip(er, ms, strict=True)]
            rows.append(
                {"radius": int(r), "tolerance": label, "boundary_f": float(np.mean(bf)), "iou": j}
            )
        for label, px in rel_px.items():
            bf = [boundary_f1(e, m, t) for e, m, t in zip(er, ms, px, strict=True)]
            rows.append(
                {"radius": int(r), "tolerance": label, "boundary_f": float(np.mean(bf)), "iou": j}
            )
    for row in rows:
        row["n_masks"] = len(ms)
    return rows
