"""The paper's experiments: data -> prompts -> models -> metrics, one record per image.

Each runner takes samples and a loaded model, writes one record per image to a `ResultStore`
(skipping images already recorded, so an interrupted run resumes), and returns a summary
computed from all records by the metrics library.

* `run_clicks` (``sam2-baseline``, ``sam3-tracker``): simulated RITM clicks per instance up to
  ``max_clicks``, a box per instance, and box + mask refinement.
* `run_concepts` (``sam3-concept``): every phrase of a phrase set on every image, text only and
  text + ``n_exemplars`` positive exemplar boxes.
* `run_hybrid` (``hybrid``): SAM3's detections for a phrase, re-segmented by SAM2 from their boxes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from ..data import Concept, Sample, as_concepts, mask_to_rle, rle_to_mask, to_saco
from ..data.stats import instance_records
from ..metrics import attribute_accuracy, boundary_f1, cgf1, concept_recall, iou, noc
from ..models.base import Exemplars
from .clicking import click_all_instances, prompt_boxes
from .store import ResultStore

__all__ = [
    "run_clicks",
    "run_concepts",
    "run_hybrid",
    "concept_predictions",
    "click_summary",
    "concept_summary",
]


def _progress(items, desc: str):
    # TQDM_DISABLE is honoured explicitly: tqdm.auto's notebook bar ignores it, and a finished,
    # hidden bar would otherwise stay in the executed page as an empty widget
    quiet = os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")
    return tqdm(items, desc=desc, leave=False, mininterval=1.0, disable=quiet)


# ----------------------------------------------------------------------------- clicks


def run_clicks(
    samples: Sequence[Sample],
    segmenter,
    store: ResultStore,
    max_clicks: int = 20,
    refine: bool = True,
    desc: str = "clicks",
) -> dict:
    """Clicks, boxes and box refinement for every instance of every image (see module doc).

    Records per image: ``image_id``, ``instances`` with ``instance_id``, ``area``, ``touching``,
    ``ious`` (after each click), ``iou_box``, ``iou_box_refined``, ``bf_box`` (Boundary F of
    the box mask at the DAVIS tolerance) and ``bf_box_2px`` (at 2 pixels).
    """
    todo = store.todo(str(s.image_id) for s in samples)
    for s in _progress([s for s in samples if str(s.image_id) in todo], desc):
        gt = s.masks
        rec = {"image_id": s.image_id, "height": s.height, "width": s.width, "instances": []}
        if len(gt):
            segmenter.set_image(s.image)
            ious, _ = click_all_instances(segmenter, gt, max_clicks)
            box_masks, _ = prompt_boxes(segmenter, s.boxes, s.image.shape[:2])
            iou_box = np.atleast_1d(iou(box_masks, gt))
            iou_ref = iou_box
            if refine:
                ref_masks, _ = prompt_boxes(segmenter, s.boxes, s.image.shape[:2], refine=True)
                iou_ref = np.atleast_1d(iou(ref_masks, gt))
            bf = np.atleast_1d(boundary_f1(box_masks, gt))
            bf2 = np.atleast_1d(boundary_f1(box_masks, gt, bound_th=2))
            for k, r in enumerate(instance_records([s])):
                rec["instances"].append(
                    {
                        "instance_id": r["instance_id"],
                        "area": r["area"],
                        "touching": r["touching"],
                        "fragments": r["fragments"],
                        "ious": [round(float(v), 6) for v in ious[k]],
                        "iou_box": float(iou_box[k]),
                        "iou_box_refined": float(iou_ref[k]),
                        "bf_box": float(bf[k]),
                        "bf_box_2px": float(bf2[k]),
                    }
                )
        store.add(str(s.image_id), rec)
    return click_summary(store.records(), max_clicks)


def click_summary(records: Sequence[dict], max_clicks: int = 20) -> dict:
    """NoC/NoF/mIoU@k over all instances, box and refined-box mIoU, Boundary F."""
    inst = [i for r in records for i in r["instances"]]
    out = {"images": len(records), "instances": len(inst)}
    if not inst:
        return out
    out.update(noc([i["ious"] for i in inst], max_clicks=max_clicks))
    for key in ("iou_box", "iou_box_refined", "bf_box", "bf_box_2px"):
        out[f"mean_{key}"] = float(np.mean([i[key] for i in inst]))
    touching = [i for i in inst if i["touching"]]
    alone = [i for i in inst if not i["touching"]]
    for name, group in (("touching", touching), ("isolated", alone)):
        out[f"mIoU@1_{name}"] = (
            float(np.mean([i["ious"][0] for i in group])) if group else float("nan")
        )
    return out


# ----------------------------------------------------------------------------- concepts


def concept_predictions(
    segmenter, image: np.ndarray, phrases: Sequence[str], exemplars=None
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


def _exemplars_for(sample: Sample, concept: Concept, k: int) -> Exemplars | None:
    """The first ``k`` instances the concept denotes, as positive exemplar boxes."""
    sel = sample.select(concept)[:k]
    if not sel:
        return None
    return Exemplars(boxes=np.stack([i.box for i in sel]))


def run_concepts(
    samples: Sequence[Sample],
    segmenter,
    concepts: Sequence[Concept | str],
    store: ResultStore,
    n_exemplars: int = 0,
    desc: str = "concepts",
) -> dict:
    """Every phrase on every image (text), and text + exemplars when ``n_exemplars > 0``.

    Exemplars are the boxes of the first ``n_exemplars`` instances the phrase denotes (none for a
    phrase with no instance: then the text-only prediction stands, as an annotator could show no
    example of an absent concept).
    """
    concepts = as_concepts(concepts)
    phrases = [c.text for c in concepts]
    todo = store.todo(str(s.image_id) for s in samples)
    for s in _progress([s for s in samples if str(s.image_id) in todo], desc):
        rec = {"image_id": s.image_id, "text": concept_predictions(segmenter, s.image, phrases)}
        if n_exemplars > 0:
            ex = {
                c.text: e for c in concepts if (e := _exemplars_for(s, c, n_exemplars)) is not None
            }
            rec["exemplar"] = dict(rec["text"])
            if ex:
                rec["exemplar"].update(
                    concept_predictions(segmenter, s.image, list(ex), exemplars=ex)
                )
        store.add(str(s.image_id), rec)
    return concept_summary(samples, store.records(), concepts)


def _results_list(samples, records, concepts, mode: str) -> list[dict]:
    """COCO results whose image ids are the pair ids of `to_saco(samples, concepts)`."""
    by_id = {str(r["image_id"]): r for r in records}
    out = []
    for si, s in enumerate(samples):
        rec = by_id[str(s.image_id)]
        for ci, c in enumerate(concepts):
            p = rec[mode][c.text]
            pair = si * len(concepts) + ci + 1
            for rle, box, score in zip(p["rles"], p["boxes"], p["scores"], strict=True):
                x0, y0, x1, y1 = box
                out.append(
                    {
                        "image_id": pair,
                        "category_id": 1,
                        "segmentation": rle,
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "score": score,
                    }
                )
    return out


def _per_phrase_arrays(samples, records, concepts, mode: str) -> dict[str, list]:
    by_id = {str(r["image_id"]): r for r in records}
    preds: dict[str, list] = {}
    for c in concepts:
        preds[c.text] = []
        for s in samples:
            p = by_id[str(s.image_id)][mode][c.text]
            masks = (
                np.stack([rle_to_mask(r) for r in p["rles"]])
                if p["rles"]
                else np.zeros((0, s.height, s.width), bool)
            )
            preds[c.text].append((masks, np.asarray(p["scores"], float)))
    return preds


def concept_summary(
    samples: Sequence[Sample],
    records: Sequence[dict],
    concepts: Sequence[Concept | str],
    score_threshold: float = 0.5,
    modes: Sequence[str] = ("text", "exemplar"),
) -> dict:
    """cgF1 family (masks and boxes), recall per phrase, attribute selectivity and detections
    per image on negative phrases, for each prediction set in the records (``modes``: the
    record keys holding per-phrase predictions, e.g. ``text`` and ``exemplar``)."""
    concepts = as_concepts(concepts)
    gt = to_saco(samples, concepts)
    out: dict = {"images": len(samples), "pairs": len(gt["images"])}
    modes = [m for m in modes if records and m in records[0]]
    for mode in modes:
        results = _results_list(samples, records, concepts, mode)
        seg = cgf1(gt, results, iou_type="segm", score_threshold=score_threshold)
        box = cgf1(gt, results, iou_type="bbox", score_threshold=score_threshold)
        out[mode] = {
            "segm": {
                k: seg[k]
                for k in ("cgF1", "cgF1@0.5", "positive_micro_F1", "IL_MCC", "precision", "recall")
            },
            "bbox": {k: box[k] for k in ("cgF1", "cgF1@0.5", "IL_MCC")},
        }
        preds = _per_phrase_arrays(samples, records, concepts, mode)
        out[mode]["recall"] = concept_recall(samples, preds, concepts, score_threshold)
        attr = [c for c in concepts if c.attributes]
        if attr:
            out[mode]["attributes"] = attribute_accuracy(samples, preds, attr, score_threshold)
        negatives = [c for c in concepts if not any(s.select(c) for s in samples)]
        dets = {
            c.text: float(np.mean([int((sc >= score_threshold).sum()) for _, sc in preds[c.text]]))
            for c in negatives
        }
        out[mode]["negative_detections_per_image"] = dets
    return out


# ----------------------------------------------------------------------------- hybrid


def run_hybrid(
    samples: Sequence[Sample],
    concept_segmenter,
    prompt_segmenter,
    concepts: Sequence[Concept | str],
    store: ResultStore,
    desc: str = "hybrid",
) -> dict:
    """SAM3 finds the instances of each phrase; SAM2 segments each from its box.

    The SAM3 score is kept for every detection, so cgF1 compares the two mask sources on the
    same detections: any difference is mask quality, not detection. The summary holds ``text``
    (SAM3's own masks) and ``hybrid`` (SAM2's masks from SAM3's boxes).
    """
    concepts = as_concepts(concepts)
    phrases = [c.text for c in concepts]
    todo = store.todo(str(s.image_id) for s in samples)
    for s in _progress([s for s in samples if str(s.image_id) in todo], desc):
        text = concept_predictions(concept_segmenter, s.image, phrases)
        hybrid = {}
        prompt_segmenter.set_image(s.image)
        for phrase, p in text.items():
            masks, _ = prompt_boxes(
                prompt_segmenter, np.asarray(p["boxes"], np.float32), s.image.shape[:2]
            )
            hybrid[phrase] = {**p, "rles": [mask_to_rle(m) for m in masks]}
        store.add(str(s.image_id), {"image_id": s.image_id, "text": text, "hybrid": hybrid})
    return concept_summary(samples, store.records(), concepts, modes=("text", "hybrid"))
