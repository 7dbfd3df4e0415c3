"""Concept (noun-phrase) prompt sets for the orchard, built from `samgap_lib.data.Concept`.

* positive: ``"apple"`` (every instance);
* attribute: ``"ripe apple"``, ``"unripe apple"``, ``"turning apple"`` (``ripeness``),
  ``"damaged apple"``, ``"healthy apple"`` (``health``);
* negative: ``"pear"``, ``"leaf"``, ``"orange"``, ``"lemon"``, whose categories never occur among
  the annotated instances, so they denote nothing (leaves are drawn in the images but are not
  instances: a detector that answers "leaf" with apples or leaves is wrong either way for the
  evaluation, which has no leaf ground truth).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from samgap_lib.data.types import Concept, Sample, as_concepts

__all__ = [
    "APPLE",
    "DAMAGED_APPLE",
    "HEALTHY_APPLE",
    "ORCHARD_ALL",
    "ORCHARD_ATTRIBUTE",
    "ORCHARD_NEGATIVE",
    "ORCHARD_POSITIVE",
    "PHRASE_SETS",
    "RIPE_APPLE",
    "TURNING_APPLE",
    "UNRIPE_APPLE",
    "concept_masks",
    "concept_of",
    "denoted_instances",
    "denotation_table",
    "phrase_set",
]

APPLE = Concept("apple", "apple")
RIPE_APPLE = Concept("ripe apple", "apple", {"ripeness": "ripe"})
UNRIPE_APPLE = Concept("unripe apple", "apple", {"ripeness": "unripe"})
TURNING_APPLE = Concept("turning apple", "apple", {"ripeness": "turning"})
DAMAGED_APPLE = Concept("damaged apple", "apple", {"health": "damaged"})
HEALTHY_APPLE = Concept("healthy apple", "apple", {"health": "healthy"})

ORCHARD_POSITIVE: tuple[Concept, ...] = (APPLE,)
ORCHARD_ATTRIBUTE: tuple[Concept, ...] = (
    RIPE_APPLE,
    UNRIPE_APPLE,
    TURNING_APPLE,
    DAMAGED_APPLE,
    HEALTHY_APPLE,
)
ORCHARD_NEGATIVE: tuple[Concept, ...] = (
    Concept("pear", "pear"),
    Concept("leaf", "leaf"),
    Concept("orange", "orange"),
    Concept("lemon", "lemon"),
)
ORCHARD_ALL: tuple[Concept, ...] = ORCHARD_POSITIVE + ORCHARD_ATTRIBUTE + ORCHARD_NEGATIVE

PHRASE_SETS: dict[str, tuple[Concept, ...]] = {
    "positive": ORCHARD_POSITIVE,
    "attribute": ORCHARD_ATTRIBUTE,
    "negative": ORCHARD_NEGATIVE,
    "all": ORCHARD_ALL,
}


def concept_of(text: str) -> Concept:
    """The orchard `Concept` of a phrase (``"ripe apple"``: apples with ripeness ripe), or a bare
    category for any other phrase (``"pear"`` -> category pear)."""
    for c in ORCHARD_ALL:
        if c.text == text:
            return c
    return Concept(text, category=text)


def phrase_set(name: str) -> tuple[Concept, ...]:
    """A named phrase set: ``"positive"``, ``"attribute"``, ``"negative"`` or ``"all"``."""
    try:
        return PHRASE_SETS[name]
    except KeyError:
        raise ValueError(
            f"unknown phrase set {name!r}; choose one of {sorted(PHRASE_SETS)}."
        ) from None


def denoted_instances(sample: Sample, concept: Concept | str) -> np.ndarray:
    """Indices (into ``sample.instances``) of the instances a phrase denotes.

    Parameters
    ----------
    sample
        The image and its instances.
    concept
        A `Concept`, or a bare category name (``"apple"``).

    Returns
    -------
    numpy.ndarray
        Sorted int64 indices; empty for a negative phrase.
    """
    (c,) = as_concepts([concept])
    return np.array(
        [i for i, inst in enumerate(sample.instances) if c.matches(inst)], dtype=np.int64
    )


def concept_masks(sample: Sample, concept: Concept | str) -> np.ndarray:
    """``(K, H, W)`` bool masks of the instances a phrase denotes (``K`` may be 0)."""
    idx = denoted_instances(sample, concept)
    if idx.size == 0:
        return np.zeros((0, sample.height, sample.width), dtype=bool)
    return np.stack([sample.instances[i].mask for i in idx])


def denotation_table(
    samples: Sequence[Sample], concepts: Sequence[Concept | str]
) -> dict[str, list[np.ndarray]]:
    """For each phrase text, the denoted instance indices in each sample (same order)."""
    cs = as_concepts(concepts)
    texts = [c.text for c in cs]
    if len(set(texts)) != len(texts):
        raise ValueError(f"phrases must be unique, got {texts}.")
    return {c.text: [denoted_instances(s, c) for s in samples] for c in cs}
