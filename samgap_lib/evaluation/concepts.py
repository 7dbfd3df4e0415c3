"""The concept (SAM3-style) protocol: every phrase on every image, as COCO results, scored.

* `predict_concepts` runs every phrase on every sample's image (one batched call per image);
  `prediction_record` is one image's predictions, JSON-ready, as experiments record them, and
  `record_predictions` reads such records back.
* `coco_results` turns predictions of any of these forms into one COCO results list over the
  SA-Co (image, phrase) pairs of `samgap_lib.data.to_saco` (pair ids: `samgap_lib.data.pair_id`):
  the one place where predictions become what the COCO-style metrics read.
* `score_concepts` scores predictions on the metrics training validates and the orchard-tiny
  cards report (recall, precision, selectivity, detections per image, cgF1, AP);
  `concept_summary` scores an experiment's records (cgF1 on masks and boxes, recall, attribute
  accuracy, detections on negative phrases).

Predictions are ``predictions[phrase][i]`` for ``samples[i]``: a `ConceptPrediction` (masks,
boxes, scores), a JSON record ``{"rles", "boxes", "scores"}`` (`prediction_record`), or any
object with ``mask_list`` or ``masks`` and ``scores`` (boxes then come from the masks).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from ..data import Concept, Sample, as_concepts, mask_to_rle, pair_id, rle_to_mask, to_saco
from ..metrics import (
    attribute_accuracy,
    cgf1,
    coco_ap,
    concept_counts,
    concept_recall,
    match_detections,
)
from ..models.base import ConceptPrediction
from ..prompts.concepts import concept_of

__all__ = [
    "coco_results",
    "concept_summary",
    "evaluate_concepts",
    "predict_concepts",
    "prediction_record",
    "record_predictions",
    "score_concepts",
]


def predict_concepts(
    segmenter: Any, samples: Sequence[Sample], phrases: Sequence[str]
) -> dict[str, list[Any]]:
    """``{phrase: [ConceptPrediction per sample]}``: every phrase on every sample's image."""
    phrases = list(phrases)
    preds: dict[str, list[Any]] = {p: [] for p in phrases}
    for s in samples:
        out = segmenter.segment(s.image, phrases=phrases)
        for p in phrases:
            preds[p].append(out[p])
    return preds


def prediction_record(
    segmenter: Any, image: np.ndarray, phrases: Sequence[str], exemplars: Any = None
) -> dict[str, dict]:
    """Run all ``phrases`` on one image in one batched call; JSON-ready predictions per phrase:
    ``{"rles", "boxes" (xyxy), "scores", "presence"}``."""
    preds = segmenter.segment(image, phrases=list(phrases), exemplars=exemplars)
    out = {}
    for phrase, p in preds.items():
        out[phrase] = {
            "rles": [mask_to_rle(m) for m in p.masks],
            "boxes": np.asarray(p.boxes, dtype=float).round(2).tolist(),
            "scores": np.asarray(p.scores, dtype=float).round(6).tolist(),
            "presence": float(p.presence),
        }
    return out


def record_predictions(
    samples: Sequence[Sample],
    records: Sequence[Mapping[str, Any]],
    concepts: Sequence[Concept | str],
    mode: str = "text",
) -> dict[str, list[ConceptPrediction]]:
    """The predictions of an experiment's records (`prediction_record` under ``record[mode]``)
    as ``{phrase: [ConceptPrediction per sample]}``, masks decoded."""
    by_id = {str(r["image_id"]): r for r in records}
    preds: dict[str, list[ConceptPrediction]] = {}
    for c in as_concepts(concepts):
        preds[c.text] = []
        for s in samples:
            p = by_id[str(s.image_id)][mode][c.text]
            masks = (
                np.stack([rle_to_mask(r) for r in p["rles"]])
                if p["rles"]
                else np.zeros((0, s.height, s.width), bool)
            )
            preds[c.text].append(
                ConceptPrediction(
                    phrase=c.text,
                    masks=masks,
                    boxes=np.asarray(p["boxes"], np.float32).reshape(-1, 4),
                    scores=np.asarray(p["scores"], float),
                    presence=float(p.get("presence", 1.0)),
                )
            )
    return preds


def _entries(pred: Any, cache: dict[int, tuple[dict, list[float]]]) -> Iterator[tuple]:
    """``(rle, xywh box, score)`` of each detection of one prediction (see the module doc)."""
    if isinstance(pred, Mapping):  # a JSON record: RLEs and xyxy boxes as recorded
        for rle, box, score in zip(pred["rles"], pred["boxes"], pred["scores"], strict=True):
            x0, y0, x1, y1 = box
            yield rle, [x0, y0, x1 - x0, y1 - y0], score
        return
    boxes = getattr(pred, "boxes", None)
    if boxes is not None:  # a ConceptPrediction: the detector's own boxes
        for m, sc, b in zip(pred.masks, pred.scores, boxes, strict=True):
            bbox = [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
            yield mask_to_rle(m), bbox, float(sc)
        return
    masks = getattr(pred, "mask_list", None)
    masks = pred.masks if masks is None else masks
    for m, score in zip(masks, pred.scores, strict=True):  # masks only: boxes from the masks
        if id(m) not in cache:  # masks shared between predictions are encoded once
            rle = mask_utils.encode(np.asfortranarray(np.asarray(m).view(np.uint8)))
            box = [float(v) for v in mask_utils.toBbox(rle)]
            rle["counts"] = rle["counts"].decode("ascii")
            cache[id(m)] = (rle, box)
        rle, box = cache[id(m)]
        yield dict(rle), list(box), float(score)


def coco_results(
    predictions: Mapping[str, Sequence[Any]], concepts: Sequence[Concept | str]
) -> list[dict[str, Any]]:
    """The predictions as a COCO results list over SA-Co (image, phrase) pairs.

    Pair ids are those of `samgap_lib.data.to_saco` with the same ``concepts`` in the same
    order (`samgap_lib.data.pair_id`); ``category_id`` is 1 (SA-Co's single "object" category);
    ``segmentation`` is compressed RLE and ``bbox`` COCO ``xywh``: the prediction's own box, or
    the box of its mask when it has none.
    """
    cs = as_concepts(concepts)
    missing = [c.text for c in cs if c.text not in predictions]
    if missing:
        raise ValueError(f"predictions lack phrase(s) {missing}; pass the same concepts.")
    n = len(predictions[cs[0].text]) if cs else 0
    cache: dict[int, tuple[dict, list[float]]] = {}
    out: list[dict[str, Any]] = []
    for i in range(n):
        for ci, c in enumerate(cs):
            for rle, bbox, score in _entries(predictions[c.text][i], cache):
                out.append(
                    {
                        "image_id": pair_id(i, ci, len(cs)),
                        "category_id": 1,
                        "segmentation": rle,
                        "bbox": bbox,
                        "score": score,
                    }
                )
    return out


def evaluate_concepts(
    segmenter: Any,
    samples: Sequence[Sample],
    phrases: Sequence[str],
    threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """Per-phrase recall / precision, attribute selectivity, negative detections, cgF1 and AP of
    ``segmenter`` on ``samples``: `predict_concepts`, then `score_concepts` (see there)."""
    preds = predict_concepts(segmenter, samples, phrases)
    return score_concepts(preds, samples, phrases, threshold, iou_threshold)


def score_concepts(
    preds: Mapping[str, Sequence[Any]],
    samples: Sequence[Sample],
    phrases: Sequence[str],
    threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """Per-phrase recall / precision, attribute selectivity, negative detections, cgF1 and AP of
    predictions ``{phrase: [ConceptPrediction per sample]}`` (`predict_concepts`).

    Detections with ``score >= threshold`` (the convention of cgF1 and of the metrics library)
    are matched one-to-one (Hungarian on mask IoU, `samgap_lib.metrics.match_detections`) to the
    instances the phrase denotes (`samgap_lib.prompts.concept_of`); a match needs IoU >=
    ``iou_threshold``; the counts come from `samgap_lib.metrics.concept_counts`. Selectivity of
    an attribute phrase ("ripe apple"): of its detections that match (IoU >= 0.5) any apple with
    the phrase's attribute value or with the opposite value ("unripe"), the fraction on the
    right ones.

    Returns
    -------
    dict
        ``summary`` (flat floats: ``recall[p]``, ``precision[p]``, ``det_per_image[p]``,
        ``selectivity[p]``, ``cgF1``, ``pmF1``, ``IL_MCC``, ``AP``, ``AP50``; a ratio with
        nothing to count, such as the recall of a phrase that names no instance, is NaN),
        ``per_image`` (``{p: {"found", "named", "kept"}}``: ``(len(samples),)`` int arrays, the
        instances found, the instances ``p`` names and the detections kept on each image, whose
        sums give recall and precision: for intervals over images,
        `samgap_lib.metrics.bootstrap_ratio`) and ``predictions`` (``preds``).
    """
    phrases = list(phrases)
    concepts = [concept_of(p) for p in phrases]
    missing = [p for p in phrases if len(preds.get(p, ())) != len(samples)]
    if missing:
        raise ValueError(
            f"score_concepts: need one prediction per sample ({len(samples)}) for every phrase; "
            f"{missing} have not. Make them with predict_concepts(segmenter, samples, phrases)."
        )
    summary: dict[str, float] = {}
    per_image = concept_counts(samples, preds, concepts, threshold, iou_threshold)
    for c in concepts:
        counts = per_image[c.text]
        right = wrong = 0
        opposite = {"ripe": "unripe", "unripe": "ripe"}.get(str(c.attributes.get("ripeness")))
        if opposite is not None:
            for si, s in enumerate(samples):
                if not s.instances:
                    continue
                pr = preds[c.text][si]
                _, gj, _ = match_detections(pr.masks, s.masks, pr.scores, threshold, iou_threshold)
                for g in gj:
                    r = s.instances[int(g)].attributes.get("ripeness")
                    right += r == c.attributes["ripeness"]
                    wrong += r == opposite
        tp, n_det, n_gt = (int(counts[k].sum()) for k in ("found", "kept", "named"))
        summary[f"recall[{c.text}]"] = tp / n_gt if n_gt else float("nan")
        summary[f"precision[{c.text}]"] = tp / n_det if n_det else float("nan")
        summary[f"det_per_image[{c.text}]"] = n_det / max(1, len(samples))
        if opposite is not None:
            summary[f"selectivity[{c.text}]"] = (
                right / (right + wrong) if right + wrong else float("nan")
            )
    saco = to_saco(samples, concepts)
    results = coco_results(preds, concepts)
    cg = cgf1(saco, results, iou_type="segm", score_threshold=threshold)
    summary["cgF1"] = float(cg["cgF1"])
    summary["pmF1"] = float(cg["positive_micro_F1"])
    summary["IL_MCC"] = float(cg["IL_MCC"])
    ap = coco_ap(saco, results, iou_type="segm")
    summary["AP"], summary["AP50"] = float(ap["AP"]), float(ap["AP50"])
    return {"summary": summary, "per_image": per_image, "predictions": preds}


def concept_summary(
    samples: Sequence[Sample],
    records: Sequence[dict],
    concepts: Sequence[Concept | str],
    score_threshold: float = 0.5,
    modes: Sequence[str] = ("text", "exemplar"),
) -> dict:
    """cgF1 family (masks and boxes), recall per phrase, attribute selectivity and detections
    per image on negative phrases, for each prediction set in an experiment's records
    (``modes``: the record keys holding per-phrase predictions, e.g. ``text`` and ``exemplar``)."""
    concepts = as_concepts(concepts)
    gt = to_saco(samples, concepts)
    out: dict = {"images": len(samples), "pairs": len(gt["images"])}
    modes = [m for m in modes if records and m in records[0]]
    by_id = {str(r["image_id"]): r for r in records}
    for mode in modes:
        recorded = {
            c.text: [by_id[str(s.image_id)][mode][c.text] for s in samples] for c in concepts
        }
        results = coco_results(recorded, concepts)
        seg = cgf1(gt, results, iou_type="segm", score_threshold=score_threshold)
        box = cgf1(gt, results, iou_type="bbox", score_threshold=score_threshold)
        out[mode] = {
            "segm": {
                k: seg[k]
                for k in ("cgF1", "cgF1@0.5", "positive_micro_F1", "IL_MCC", "precision", "recall")
            },
            "bbox": {k: box[k] for k in ("cgF1", "cgF1@0.5", "IL_MCC")},
        }
        preds = record_predictions(samples, records, concepts, mode)
        out[mode]["recall"] = concept_recall(samples, preds, concepts, score_threshold)
        attr = [c for c in concepts if c.attributes]
        if attr:
            out[mode]["attributes"] = attribute_accuracy(samples, preds, attr, score_threshold)
        negatives = [c for c in concepts if not any(s.select(c) for s in samples)]
        dets = {
            c.text: float(
                np.mean([int((p.scores >= score_threshold).sum()) for p in preds[c.text]])
            )
            for c in negatives
        }
        out[mode]["negative_detections_per_image"] = dets
    return out
