"""Prompt effort: how many SAM2 clicks buy the image-level quality of one SAM3 phrase.

Image-level quality is panoptic quality (`samgap_lib.metrics.panoptic.panoptic_quality`) over
the image's instances, so misses and false positives count for both models:

* SAM2 with ``k`` clicks per instance predicts one mask per instance (the clicks name it), so
  ``PQ_2(k) = sum_{IoU_i(k) > 0.5} IoU_i(k) / n`` and the effort is ``k x n`` clicks;
* SAM3 with one phrase predicts a set of detections: ``PQ_3`` is PQ of its kept detections
  against the instances the phrase denotes, for an effort of one phrase.

The **effort-equivalence point** of an image is the smallest ``k`` with ``PQ_2(k) >= PQ_3``
(None when SAM2 never reaches it within the click budget), and ``k x n`` the clicks SAM2 needs
to match one phrase.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data import Concept, Sample, rle_to_mask
from ..metrics.panoptic import panoptic_quality

__all__ = ["sam2_quality_curves", "sam3_quality", "effort_equivalence"]


def sam2_quality_curves(click_records: Sequence[dict]) -> dict[str, np.ndarray]:
    """Per image id: ``PQ_2(k)`` for ``k = 1..max_clicks`` (images without instances omitted)."""
    out = {}
    for r in click_records:
        if not r["instances"]:
            continue
        ious = np.array([i["ious"] for i in r["instances"]], float)
        out[str(r["image_id"])] = np.where(ious > 0.5, ious, 0.0).sum(axis=0) / len(ious)
    return out


def sam3_quality(
    samples: Sequence[Sample],
    concept_records: Sequence[dict],
    concept: Concept,
    mode: str = "text",
    score_threshold: float = 0.5,
) -> dict[str, float]:
    """Per image id: ``PQ_3`` of the phrase's detections against the instances it denotes."""
    by_id = {str(r["image_id"]): r for r in concept_records}
    out = {}
    for s in samples:
        p = by_id[str(s.image_id)][mode][concept.text]
        masks = (
            np.stack([rle_to_mask(x) for x in p["rles"]])
            if p["rles"]
            else np.zeros((0, s.height, s.width), bool)
        )
        sel = s.select(concept)
        gt = np.stack([i.mask for i in sel]) if sel else np.zeros((0, s.height, s.width), bool)
        out[str(s.image_id)] = panoptic_quality(masks, gt, p["scores"], score_threshold)["PQ"]
    return out


def effort_equivalence(
    samples: Sequence[Sample],
    click_records: Sequence[dict],
    concept_records: Sequence[dict],
    concept: Concept,
    mode: str = "text",
) -> list[dict]:
    """One row per image with instances: ``image_id``, ``n_instances``, ``sam3_pq``,
    ``sam2_pq`` (list over k), ``k_star`` (None if never reached) and ``clicks_to_match``."""
    curves = sam2_quality_curves(click_records)
    q3 = sam3_quality(samples, concept_records, concept, mode)
    rows = []
    for s in samples:
        key = str(s.image_id)
        if key not in curves:
            continue
        curve = curves[key]
        reached = np.flatnonzero(curve >= q3[key] - 1e-12)
        k_star = int(reached[0]) + 1 if reached.size else None
        n = len(s.instances)
        rows.append(
            {
                "image_id": s.image_id,
                "n_instances": n,
                "sam3_pq": float(q3[key]),
                "sam2_pq": [float(v) for v in curve],
                "k_star": k_star,
                "clicks_to_match": None if k_star is None else k_star * n,
            }
        )
    return rows
