"""Training data: image pools at the model's input size, and a deterministic distributed sampler.

Images are kept as uint8 ``(N, S, S, 3)`` at the model's square input size ``S`` (resized as the
processors do: no padding), instance masks as bool ``(k, S, S)`` stacks with their attributes.
The sampler is a pure function of ``(seed, step)``: epoch ``e`` visits a permutation seeded by
``(seed, e)``; the global batch of a step is split across ranks like
``torch.utils.data.DistributedSampler``. A resumed run therefore needs only the step number to
continue at the same data position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from samgap_lib.data import OrchardConfig, Sample, profile_samples, synthetic_orchard
from samgap_lib.data.profiles import SPLIT_START

__all__ = ["Pool", "make_pool", "load_samples", "batch_indices", "step_rng", "normalise"]

# Ripe shares (ripe, turning, unripe) of the training chunks when ripeness_mix is on: attribute
# phrases are then absent from some images, so presence has something to learn.
RIPENESS_MIX = ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.45, 0.2, 0.35), (0.2, 0.2, 0.6))


@dataclass
class Pool:
    """Images and instances at the model's input size."""

    images: np.ndarray  # (N, S, S, 3) uint8
    masks: list[np.ndarray]  # per image (k, S, S) bool
    attributes: list[list[dict[str, Any]]]  # per image, per instance
    categories: list[list[str]] = field(default_factory=list)
    # what a task derives from an image once and reuses every time it draws it (per task key)
    derived: dict[str, dict[int, Any]] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_instances(self) -> int:
        return int(sum(len(m) for m in self.masks))


def load_samples(cfg: dict[str, Any], split: str, n: int, workers: int = 1) -> list[Sample]:
    """The samples of a config's data section for ``split`` (``train``, ``val``, ``test``);
    ``workers`` processes render synthetic images (the same images for any number).
    Synthetic images are rendered at ``data.render_size`` px when it is set (`make_pool` then
    resizes them to the model's input), else at ``data.image_size``."""
    d = cfg["data"]
    if d["source"] == "minneapple":
        return profile_samples("paper", n, seed=d["seed"], data_root=d["root"], split=split)
    side = d.get("render_size") or d["image_size"]
    size = (side, side)
    start = SPLIT_START[split]
    if split == "train" and d.get("ripeness_mix"):
        out: list[Sample] = []
        k = len(RIPENESS_MIX)
        for i, mix in enumerate(RIPENESS_MIX):
            m = n // k + (1 if i < n % k else 0)
            conf = OrchardConfig(ripeness_p=mix)
            out += synthetic_orchard(
                m, seed=d["seed"], size=size, config=conf, start=start + 10_000 * i, workers=workers
            )
        return out
    return synthetic_orchard(n, seed=d["seed"], size=size, start=start, workers=workers)


def make_pool(samples: list[Sample], size: int, what: str = "training data") -> Pool:
    """Resize samples to ``size`` px squares; refuse data without any instance."""
    if not samples:
        raise ValueError(f"{what}: no images.")
    if sum(len(s.instances) for s in samples) == 0:
        raise ValueError(
            f"{what}: {len(samples)} images but no instances at all; training needs annotated "
            "objects. Check the data source (masks folder, SA-Co annotations)."
        )
    images, masks, attrs, cats = [], [], [], []
    for s in samples:
        img = s.image
        if img.shape[:2] != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
        m = s.masks
        if m.shape[1:] != (size, size) and len(m):
            m = np.stack(
                [
                    cv2.resize(x.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
                    > 0
                    for x in m
                ]
            )
        elif not len(m):
            m = np.zeros((0, size, size), bool)
        keep = m.reshape(len(m), -1).any(1) if len(m) else np.zeros(0, bool)
        images.append(img)
        masks.append(m[keep])
        attrs.append([dict(i.attributes) for i, k in zip(s.instances, keep, strict=True) if k])
        cats.append([i.category for i, k in zip(s.instances, keep, strict=True) if k])
    return Pool(np.stack(images), masks, attrs, cats)


def step_rng(seed: int, step: int, micro: int = 0, rank: int = 0) -> np.random.Generator:
    """The numpy Generator of one (step, micro-batch, rank): independent of anything before."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 7919, step, micro, rank]))


def batch_indices(
    n: int, step: int, micro: int, batch: int, accum: int, seed: int, rank: int = 0, world: int = 1
) -> np.ndarray:
    """Pool indices of one rank's micro-batch at ``step`` (0-based)."""
    per_step = batch * world * accum
    start = (step * accum + micro) * batch * world + rank * batch
    pos = np.arange(start, start + batch)
    epochs = pos // n
    out = np.empty(batch, dtype=np.int64)
    del per_step
    for e in np.unique(epochs):
        perm = np.random.default_rng(
            np.random.SeedSequence([int(seed), 104729, int(e)])
        ).permutation(n)
        sel = epochs == e
        out[sel] = perm[pos[sel] % n]
    return out


def normalise(images: np.ndarray, mean: Any, std: Any) -> np.ndarray:
    """uint8 ``(B, S, S, 3)`` -> float32 ``(B, 3, S, S)`` normalised as the processor does."""
    x = images.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
