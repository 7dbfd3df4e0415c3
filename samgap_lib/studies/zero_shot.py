"""Phrasings the miniature never saw in training, scored like the ones it did.

The orchard-tiny SAM3 trained on eight phrases ("ripe apple", "unripe apple", "apple", "turning
apple" and four negatives). `UNSEEN` pairs phrasings outside that set (plurals, synonyms, colour
words) with the trained phrase that denotes the same apples; `zero_shot_table` runs both on the
same images and counts, per phrasing, the apples it finds and the detections it keeps
(`samgap_lib.metrics.concept_counts`: score >= 0.5, matched at mask IoU >= 0.5).

A text encoder trained from scratch on a handful of phrases has no vocabulary beyond them: its
tokens for "red apple" have never been seen together, so whatever it answers comes from shared
bytes ("apple"), not from meaning. The released SAM 3's text encoder was pre-trained on
billions of image-text pairs and fine-tuned on 4M noun phrases; this study cannot say how it
generalises, only what the miniature does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..data import Concept, Sample
from ..evaluation import predict_concepts
from ..metrics import concept_counts
from ..prompts import concept_of

__all__ = ["UNSEEN", "zero_shot_table"]

# (unseen phrasing, the concept it names, the trained phrase that names the same apples)
UNSEEN: tuple[tuple[Concept, str], ...] = (
    (Concept("apples", "apple"), "apple"),
    (Concept("fruit", "apple"), "apple"),
    (Concept("red apple", "apple", {"ripeness": "ripe"}), "ripe apple"),
    (Concept("green apple", "apple", {"ripeness": "unripe"}), "unripe apple"),
    (Concept("ripe apples", "apple", {"ripeness": "ripe"}), "ripe apple"),
    (Concept("unripe fruit", "apple", {"ripeness": "unripe"}), "unripe apple"),
)


def _rate(num: int, den: int) -> float:
    return num / den if den else float("nan")


def zero_shot_table(
    segmenter: Any,
    samples: Sequence[Sample],
    unseen: Sequence[tuple[Concept, str]] = UNSEEN,
    threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """One row per unseen phrasing: ``unseen``, ``trained`` (the phrase it is scored against),
    ``recall`` and ``precision`` of each (``recall (trained)``, ``precision (trained)``), the
    apples both name (``apples``) and the detections each keeps. Recall of a phrasing that
    names no apple in ``samples`` is NaN."""
    trained = sorted({t for _, t in unseen})
    phrases = trained + [c.text for c, _ in unseen]
    preds = predict_concepts(segmenter, samples, phrases)
    concepts = [concept_of(t) for t in trained] + [c for c, _ in unseen]
    counts = concept_counts(samples, preds, concepts, threshold)
    rows = []
    for concept, seen in unseen:
        new, old = counts[concept.text], counts[seen]
        rows.append(
            {
                "unseen": concept.text,
                "trained": seen,
                "apples": int(new["named"].sum()),
                "recall": _rate(int(new["found"].sum()), int(new["named"].sum())),
                "recall (trained)": _rate(int(old["found"].sum()), int(old["named"].sum())),
                "precision": _rate(int(new["found"].sum()), int(new["kept"].sum())),
                "precision (trained)": _rate(int(old["found"].sum()), int(old["kept"].sum())),
                "kept": int(new["kept"].sum()),
                "kept (trained)": int(old["kept"].sum()),
            }
        )
    return rows
