"""The paper's experiments: the evaluation protocols over a profile's images, one record per image.

Each runner takes samples and a loaded model, writes one record per image to a `ResultStore`
(skipping images already recorded, so an interrupted run resumes), and returns a summary
computed from all records (`samgap_lib.evaluation`).

* `record_clicks` (``sam2-baseline``, ``sam3-tracker``): simulated RITM clicks per instance up to
  ``max_clicks``, a box per instance, and box + mask refinement (`evaluation.click_record`).
* `record_concepts` (``sam3-concept``): every phrase of a phrase set on every image, text only
  and text + ``n_exemplars`` positive exemplar boxes (`evaluation.prediction_record`).
* `record_hybrid` (``hybrid``): SAM3's detections for a phrase, re-segmented by SAM2 from their
  boxes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from ..data import Concept, Sample, as_concepts, mask_to_rle
from ..evaluation import (
    click_record,
    click_summary,
    concept_summary,
    prediction_record,
    prompt_boxes,
)
from ..models import Exemplars
from .store import ResultStore

__all__ = ["record_clicks", "record_concepts", "record_hybrid"]


def _progress(items, desc: str):
    # TQDM_DISABLE is honoured explicitly: tqdm.auto's notebook bar ignores it, and a finished,
    # hidden bar would otherwise stay in the executed page as an empty widget
    quiet = os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")
    return tqdm(items, desc=desc, leave=False, mininterval=1.0, disable=quiet)


def _todo(samples: Sequence[Sample], store: ResultStore) -> list[Sample]:
    todo = store.todo(str(s.image_id) for s in samples)
    return [s for s in samples if str(s.image_id) in todo]


def record_clicks(
    samples: Sequence[Sample],
    segmenter,
    store: ResultStore,
    max_clicks: int = 20,
    refine: bool = True,
    desc: str = "clicks",
) -> dict:
    """Clicks, boxes and box refinement for every instance of every image; one
    `samgap_lib.evaluation.click_record` per image. Returns `click_summary` of all records."""
    for s in _progress(_todo(samples, store), desc):
        store.add(str(s.image_id), click_record(segmenter, s, max_clicks, refine))
    return click_summary(store.records(), max_clicks)


def _exemplars_for(sample: Sample, concept: Concept, k: int) -> Exemplars | None:
    """The first ``k`` instances the concept denotes, as positive exemplar boxes."""
    sel = sample.select(concept)[:k]
    if not sel:
        return None
    return Exemplars(boxes=np.stack([i.box for i in sel]))


def record_concepts(
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
    for s in _progress(_todo(samples, store), desc):
        rec = {"image_id": s.image_id, "text": prediction_record(segmenter, s.image, phrases)}
        if n_exemplars > 0:
            ex = {
                c.text: e for c in concepts if (e := _exemplars_for(s, c, n_exemplars)) is not None
            }
            rec["exemplar"] = dict(rec["text"])
            if ex:
                rec["exemplar"].update(
                    prediction_record(segmenter, s.image, list(ex), exemplars=ex)
                )
        store.add(str(s.image_id), rec)
    return concept_summary(samples, store.records(), concepts)


def record_hybrid(
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
    for s in _progress(_todo(samples, store), desc):
        text = prediction_record(concept_segmenter, s.image, phrases)
        hybrid = {}
        prompt_segmenter.set_image(s.image)
        for phrase, p in text.items():
            masks, _ = prompt_boxes(
                prompt_segmenter, np.asarray(p["boxes"], np.float32), s.image.shape[:2]
            )
            hybrid[phrase] = {**p, "rles": [mask_to_rle(m) for m in masks]}
        store.add(str(s.image_id), {"image_id": s.image_id, "text": text, "hybrid": hybrid})
    return concept_summary(samples, store.records(), concepts, modes=("text", "hybrid"))
