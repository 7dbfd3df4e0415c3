"""Exemplar prompts against the phrase: the same concept asked with a phrase, with exemplar boxes,
or both, scored like the phrase path.

A **mode** is a phrase or not and ``k`` exemplar boxes (`EXEMPLAR_MODES`): "phrase only",
"phrase + 1 exemplar", "phrase + 3 exemplars", "1 exemplar only", "3 exemplars only". An
exemplar is the tight box of a ground-truth instance the concept denotes, chosen reproducibly
(`exemplar_order`: one permutation per image and concept from ``seed``; ``k`` exemplars are its
first ``k``, so the 1-exemplar prompt's box is among the 3-exemplar prompt's). Prompts spent: 1
for the phrase, 1 per exemplar box.

Which images: an exemplar is drawn around an instance, so a concept can be asked by exemplars
only where it is present. Every mode, "phrase only" included, is scored on the same images: those
where the concept has at least one instance (as SAM3 scores its visual prompts, by AP on the
positive pairs only: ``positive_split`` in ``sam3/train/configs/odinw13/odinw_visual_only.yaml``).
Presence (IL_MCC, hence cgF1) is then unmeasured: with no negative image the cgF1 evaluator's
IL_MCC is 0 whatever the model does, so the summary leaves IL_MCC and cgF1 NaN and reports
recall, precision and positive micro-F1 (cgF1's localisation factor).

How the exemplars' own instances are scored: as SAM3 does, they stay in the ground truth
(``TextQueryToVisual`` keeps every target of the query, the exemplar's included), so a
prediction on an exemplar's instance is a true positive: a reward for finding what the user
already pointed at. Beside that, `evaluate_exemplar_modes` reports the same scores on the
*other* instances (``PQ_others``, ``recall_others``, ``precision_others``): the exemplars'
instances removed from the ground truth and the detections matched to them (IoU > 0.5) removed
from the predictions, i.e. what the prompt found beyond what it was shown.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data import Concept, Sample
from ..metrics import match_detections
from ..metrics.panoptic import panoptic_quality
from ..models.base import Exemplars
from ..prompts import boxes_from_masks
from ..prompts.concepts import concept_of
from .concepts import score_concepts

__all__ = [
    "EXEMPLAR_MODES",
    "evaluate_exemplar_modes",
    "exemplar_modes_table",
    "exemplar_order",
    "exemplar_prompt",
]

# mode -> (with the phrase, number of exemplar boxes)
EXEMPLAR_MODES: dict[str, tuple[bool, int]] = {
    "phrase only": (True, 0),
    "phrase + 1 exemplar": (True, 1),
    "phrase + 3 exemplars": (True, 3),
    "1 exemplar only": (False, 1),
    "3 exemplars only": (False, 3),
}


def exemplar_order(sample: Sample, concept: Concept, seed: int = 0) -> np.ndarray:
    """Indices into ``sample.instances`` of the instances ``concept`` denotes, in the order
    exemplars are taken from them: a permutation drawn from ``(seed, image id, phrase)``."""
    idx = np.array([i for i, inst in enumerate(sample.instances) if concept.matches(inst)], int)
    key = [zlib.crc32(str(sample.image_id).encode()), zlib.crc32(concept.text.encode())]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), *key]))
    return idx[rng.permutation(len(idx))]


def exemplar_prompt(
    sample: Sample, concept: Concept, k: int, seed: int = 0
) -> tuple[Exemplars | None, np.ndarray]:
    """``k`` positive exemplar boxes of ``concept`` on ``sample`` (fewer when it has fewer
    instances; None for ``k = 0`` or none) and the indices of their instances."""
    chosen = exemplar_order(sample, concept, seed)[: max(0, int(k))]
    if not len(chosen):
        return None, chosen
    boxes = boxes_from_masks(np.stack([sample.instances[i].mask for i in chosen]))
    return Exemplars(np.asarray(boxes, np.float32).reshape(-1, 4)), chosen


def _others(pred: Any, gt: np.ndarray, shown: np.ndarray, threshold: float) -> tuple:
    """Kept masks and ground truth without the exemplars' instances and the detections matched
    to them (IoU > 0.5), as ``(pred_masks, gt_masks)``."""
    keep = np.flatnonzero(np.asarray(pred.scores, float) >= threshold)
    masks = np.asarray(pred.masks, bool)[keep]
    if len(shown):
        pi, gi, _ = match_detections(masks, gt, None, iou_threshold=0.5 + 1e-9)
        drop = {int(p) for p, g in zip(pi, gi, strict=True) if int(g) in set(shown.tolist())}
        masks = masks[[j for j in range(len(masks)) if j not in drop]]
        gt = gt[[j for j in range(len(gt)) if j not in set(shown.tolist())]]
    return masks, gt


def evaluate_exemplar_modes(
    segmenter: Any,
    samples: Sequence[Sample],
    concepts: Sequence[Concept | str],
    modes: Mapping[str, tuple[bool, int]] | None = None,
    seed: int = 0,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Each concept asked in each mode on the images where it is present, scored.

    Parameters
    ----------
    segmenter
        A `ConceptSegmenter` (``set_image``; ``segment(phrases=, exemplars=)``).
    samples
        Images with ground truth.
    concepts
        Phrases or `Concept` s (`samgap_lib.prompts.concept_of` reads a phrase).
    modes
        ``{name: (with_phrase, k)}``; default `EXEMPLAR_MODES`.
    seed
        Chooses the exemplars (`exemplar_order`).
    threshold
        Detections with ``score >= threshold`` count.

    Returns
    -------
    dict
        ``rows``: one per (concept, mode, image): ``concept``, ``mode``, ``image_id``,
        ``prompts`` (1 per phrase, 1 per box), ``exemplars`` (their instance indices),
        ``n_instances`` (the concept's), ``PQ``, ``PQ_others`` (NaN where every instance was
        shown). ``summary``: one per (concept, mode): ``images``, mean ``prompts``, mean ``PQ``,
        ``images_others`` and the mean of ``PQ_others`` over them, ``recall``, ``precision`` and
        ``pmF1`` (`score_concepts`: exemplars' instances kept in the ground truth, as SAM3
        scores them), ``recall_others`` and ``precision_others`` (pooled over images,
        exemplars' instances and their matches removed); ``IL_MCC`` and ``cgF1`` are NaN: on
        images that all hold the concept, presence is not measured (`score_concepts` would give
        IL_MCC 0 and cgF1 0 whatever the model does).
    """
    modes = dict(EXEMPLAR_MODES if modes is None else modes)
    for name, (phrase, k) in modes.items():
        if not phrase and k < 1:
            raise ValueError(f"mode {name!r} has neither a phrase nor an exemplar.")
    cs = [c if isinstance(c, Concept) else concept_of(c) for c in concepts]
    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    preds: dict[tuple[str, str], list[Any]] = {}
    present: dict[str, list[int]] = {c.text: [] for c in cs}
    for si, s in enumerate(samples):
        if not any(s.select(c) for c in cs):
            continue
        segmenter.set_image(s.image)
        for c in cs:
            if not s.select(c):
                continue
            present[c.text].append(si)
            gt = np.stack([inst.mask for inst in s.select(c)])
            order = [i for i, inst in enumerate(s.instances) if c.matches(inst)]
            for name, (with_phrase, k) in modes.items():
                ex, shown = exemplar_prompt(s, c, k, seed)
                if with_phrase:
                    pred = segmenter.segment(phrases=[c.text], exemplars=ex)[c.text]
                else:
                    pred = next(iter(segmenter.segment(exemplars=ex).values()))
                preds.setdefault((c.text, name), []).append(pred)
                shown_gt = np.array([order.index(int(i)) for i in shown], int)
                pq = panoptic_quality(pred.masks, gt, pred.scores, threshold)["PQ"]
                om, og = _others(pred, gt, shown_gt, threshold)
                others = panoptic_quality(om, og)
                rows.append(
                    {
                        "concept": c.text,
                        "mode": name,
                        "image_id": s.image_id,
                        "prompts": int(with_phrase) + len(shown),
                        "exemplars": [int(i) for i in shown],
                        "n_instances": len(gt),
                        "PQ": float(pq),
                        # an image whose every instance was shown has nothing left to find
                        "PQ_others": float(others["PQ"]) if len(og) else float("nan"),
                        "_others": (len(og), len(om), others["TP"]),
                    }
                )
    for c in cs:
        subset = [samples[i] for i in present[c.text]]
        for name in modes:
            mine = [r for r in rows if r["concept"] == c.text and r["mode"] == name]
            if not mine:
                continue
            scored = score_concepts({c.text: preds[(c.text, name)]}, subset, [c.text], threshold)
            sm = scored["summary"]
            named, kept, found = (sum(r["_others"][j] for r in mine) for j in range(3))
            summary.append(
                {
                    "concept": c.text,
                    "mode": name,
                    "images": len(mine),
                    "prompts": float(np.mean([r["prompts"] for r in mine])),
                    "PQ": float(np.mean([r["PQ"] for r in mine])),
                    "images_others": int(sum(r["n_instances"] > len(r["exemplars"]) for r in mine)),
                    "PQ_others": _nanmean([r["PQ_others"] for r in mine]),
                    "recall": sm[f"recall[{c.text}]"],
                    "precision": sm[f"precision[{c.text}]"],
                    "pmF1": sm["pmF1"],
                    # no image without the concept: presence is unmeasured (see the module doc)
                    "IL_MCC": float("nan"),
                    "cgF1": float("nan"),
                    "recall_others": found / named if named else float("nan"),
                    "precision_others": found / kept if kept else float("nan"),
                }
            )
    for r in rows:
        del r["_others"]
    return {"rows": rows, "summary": summary}


def _nanmean(values: Sequence[float]) -> float:
    v = np.asarray(values, float)
    return float(v[~np.isnan(v)].mean()) if (~np.isnan(v)).any() else float("nan")


def exemplar_modes_table(result: Mapping[str, Any], digits: int = 3) -> list[dict[str, Any]]:
    """`evaluate_exemplar_modes`'s summary rounded for a page: concept, mode, images, prompts per
    image, mean PQ (exemplars' instances counted, as SAM3 does, and without them), recall,
    precision."""
    keys = ("prompts", "PQ", "PQ_others", "recall", "precision", "recall_others", "pmF1")
    # PQ_others: mean over the images with an instance left unshown
    return [
        {
            "concept": s["concept"],
            "mode": s["mode"],
            "images": s["images"],
            **{k: round(float(s[k]), digits) for k in keys},
        }
        for s in result["summary"]
    ]
