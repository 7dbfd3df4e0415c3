"""The data each profile runs on, behind one call the chapters share."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .minneapple import load_minneapple, split_indices
from .synthetic import synthetic_orchard
from .types import Concept, Sample, as_concepts

__all__ = ["SPLIT_START", "profile_samples", "usable_concepts", "describe_data"]

# First image index of each part of the synthetic orchard: the parts never overlap.
SPLIT_START = {"train": 0, "val": 100_000, "test": 200_000}


def profile_samples(
    profile: str,
    n_images: int,
    seed: int = 0,
    data_root: str | os.PathLike | None = None,
    size: tuple[int, int] = (256, 256),
    split: str = "test",
) -> list[Sample]:
    """Samples for a chapter: the synthetic orchard (``smoke``) or MinneApple (``paper``).

    Parameters
    ----------
    profile
        ``"smoke"`` or ``"paper"``.
    n_images
        How many images (the first ``n_images`` of the chosen split).
    seed
        Seed of the synthetic orchard, and of the MinneApple train/val/test split.
    data_root
        MinneApple root (required for ``paper``; must hold ``detection/train``).
    size
        Synthetic image size ``(H, W)`` (smoke only).
    split
        Which part of samgap's seeded 70/15/15 split of MinneApple ``train`` to use
        (``"train"``, ``"val"`` or ``"test"``); for the synthetic orchard, ``"train"`` starts
        at image 0, ``"val"`` at 100000 and ``"test"`` at 200000, so the parts never overlap.
    """
    if split not in SPLIT_START:
        raise ValueError(f"split must be one of {sorted(SPLIT_START)}, got {split!r}.")
    if profile == "smoke":
        return synthetic_orchard(n_images, seed=seed, size=size, start=SPLIT_START[split])
    if profile == "paper":
        if data_root is None:
            raise ValueError(
                "profile 'paper' needs data_root: the MinneApple folder that holds detection/ (see data/README.md)."
            )
        full = load_minneapple(data_root, "train")
        idx = split_indices(len(full), seed=seed)[list(SPLIT_START).index(split)][:n_images]
        return list(load_minneapple(data_root, "train", indices=idx))
    raise ValueError(f"profile must be 'smoke' or 'paper', got {profile!r}.")


def usable_concepts(samples: Sequence[Sample], concepts: Sequence[Concept | str]) -> list[Concept]:
    """The concepts whose attributes the data actually labels.

    MinneApple has no ripeness or health labels, so "ripe apple" would wrongly count as a
    negative phrase on every image; such concepts are dropped. Category-only concepts
    (positives like "apple" and negatives like "pear") are always kept.
    """
    keys = {k for s in samples for inst in s.instances for k in inst.attributes}
    return [c for c in as_concepts(concepts) if set(c.attributes) <= keys]


def describe_data(profile: str, n_images: int, seed: int, data_root=None, size=(256, 256)) -> str:
    """One phrase naming the data a profile used, for the page's provenance banner."""
    if profile == "smoke":
        return f"{n_images} synthetic orchard images ({size[0]}x{size[1]}, seed {seed})"
    return f"{n_images} MinneApple images from {data_root} (samgap split, seed {seed})"
