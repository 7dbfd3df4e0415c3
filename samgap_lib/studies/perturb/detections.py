"""The prediction container `Detections` and the perfect starting point `ground_truth_predictions`
(``predictions[phrase][i]`` for ``samples[i]``, the form the concept metrics read), with the
seeded random streams and checks the perturbations share."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...data.types import Concept, Sample, as_concepts
from ...prompts.concepts import denoted_instances

# Seed-stream tags: one per kind of random choice, so the perturbations draw independently.
_SCORE, _DROP, _FP, _DUP, _ATTR, _BG, _JITTER, _DROP_IMAGE = range(1, 9)

# --------------------------------------------------------------------------------------------
# The container
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Detections:
    """The detections one phrase gets on one image: masks, scores and where each came from.

    Masks are kept as a tuple of ``(H, W)`` bool arrays so that perturbations can share the
    masks they do not change (a perfect prediction references the ground-truth masks
    themselves); `masks` stacks them on access. The object unpacks like the ``(masks, scores)``
    tuple the concept metrics accept (``masks, scores = det``).

    Attributes
    ----------
    mask_list
        ``M`` bool masks at the image's size ``shape``.
    scores
        ``(M,)`` float64 confidence scores (finite).
    sources
        ``(M,)`` int64: the index in ``sample.instances`` of the instance a detection was made
        from, or -1 for a spurious detection (a false positive not made from any instance).
    shape
        ``(H, W)`` of the image.
    """

    mask_list: tuple[np.ndarray, ...]
    scores: np.ndarray
    sources: np.ndarray
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        h, w = (int(v) for v in self.shape)
        masks = tuple(self.mask_list)
        for k, m in enumerate(masks):
            if not isinstance(m, np.ndarray) or m.dtype != bool or m.shape != (h, w):
                raise ValueError(
                    f"Detections: mask {k} must be an ({h}, {w}) bool array, got "
                    f"{getattr(m, 'dtype', type(m).__name__)} {np.shape(m)}."
                )
        scores = np.array(self.scores, dtype=np.float64).reshape(-1)
        sources = np.array(self.sources, dtype=np.int64).reshape(-1)
        if scores.shape != (len(masks),) or sources.shape != (len(masks),):
            raise ValueError(
                f"Detections: {len(masks)} masks but {scores.size} scores and {sources.size} "
                "sources; give one score and one source per mask."
            )
        if not np.isfinite(scores).all():
            raise ValueError("Detections: scores must be finite numbers.")
        scores.flags.writeable = False
        sources.flags.writeable = False
        object.__setattr__(self, "mask_list", masks)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "shape", (h, w))

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> Detections:
        """No detections on an image of size ``shape``."""
        return cls((), np.zeros(0), np.zeros(0, np.int64), shape)

    @property
    def masks(self) -> np.ndarray:
        """``(M, H, W)`` bool stack (``(0, H, W)`` when there are no detections)."""
        if not self.mask_list:
            return np.zeros((0, *self.shape), dtype=bool)
        return np.stack(self.mask_list)

    def __len__(self) -> int:
        return len(self.mask_list)

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.masks
        yield self.scores

    def subset(self, keep: Sequence[int] | np.ndarray) -> Detections:
        """The detections at positions ``keep`` (in that order)."""
        keep = [int(k) for k in keep]
        return Detections(
            tuple(self.mask_list[k] for k in keep),
            self.scores[keep],
            self.sources[keep],
            self.shape,
        )

    def extend(
        self, masks: Sequence[np.ndarray], scores: Sequence[float], sources: Sequence[int]
    ) -> Detections:
        """These detections followed by new ones."""
        if not len(masks):
            return self
        return Detections(
            self.mask_list + tuple(masks),
            np.concatenate([self.scores, np.asarray(scores, dtype=np.float64)]),
            np.concatenate([self.sources, np.asarray(sources, dtype=np.int64)]),
            self.shape,
        )


PredictionSet = dict[str, list[Detections]]
"""``predictions[phrase_text][i]``: the `Detections` of a phrase on ``samples[i]``."""


def _rng(seed: int, *keys: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return np.random.default_rng(np.random.SeedSequence([int(seed), *keys]))


def _check_range(name: str, rng_: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in rng_)
    if not (0 <= lo <= hi <= 1):
        raise ValueError(f"{name} must be (low, high) with 0 <= low <= high <= 1, got {rng_}.")
    return lo, hi


def _check_fraction(name: str, value: float) -> float:
    v = float(value)
    if not 0 <= v <= 1:
        raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}.")
    return v


def _check_radius(radius: Any) -> int:
    if isinstance(radius, bool) or float(radius) != int(radius) or int(radius) < 0:
        raise ValueError(f"radius must be a whole number of pixels >= 0, got {radius!r}.")
    return int(radius)


def _check_predictions(
    predictions: Mapping[str, Sequence[Detections]], samples: Sequence[Sample] | None = None
) -> None:
    if not isinstance(predictions, Mapping) or not predictions:
        raise ValueError("predictions must be a non-empty dict: phrase -> list of Detections.")
    n = None
    for phrase, per in predictions.items():
        if n is None:
            n = len(per)
        if len(per) != n:
            raise ValueError(
                f"predictions[{phrase!r}] has {len(per)} entries but another phrase has {n}; "
                "every phrase needs one entry per sample."
            )
        for i, d in enumerate(per):
            if not isinstance(d, Detections):
                raise TypeError(
                    f"predictions[{phrase!r}][{i}] is a {type(d).__name__}; these functions "
                    "work on Detections (make them with ground_truth_predictions)."
                )
    if samples is not None and n != len(samples):
        raise ValueError(
            f"predictions hold {n} images per phrase but there are {len(samples)} samples."
        )


def _map(predictions: PredictionSet, fn: Callable[[int, str, Detections], Detections]):
    return {p: [fn(i, p, d) for i, d in enumerate(per)] for p, per in predictions.items()}


# --------------------------------------------------------------------------------------------
# The perfect prediction
# --------------------------------------------------------------------------------------------


def ground_truth_predictions(
    samples: Sequence[Sample],
    concepts: Sequence[Concept | str],
    seed: int = 0,
    score_range: tuple[float, float] = (0.6, 0.95),
) -> PredictionSet:
    """A perfect prediction: each phrase detects exactly the instances it denotes.

    Parameters
    ----------
    samples
        The ground truth.
    concepts
        The phrases (`samgap_lib.data.Concept`, or bare category names); texts must be unique.
    seed
        Seed of the scores.
    score_range
        Scores are drawn uniformly from this range (all above SAM3's 0.5 threshold by default,
        and distinct, so a score transform has a ranking to keep).

    Returns
    -------
    PredictionSet
        ``predictions[c.text][i]``: the denoted instances' own masks (shared, not copied), their
        scores and their indices as ``sources``. Every metric scores it perfectly (cgF1 up to
        SAM3's ``1e-4`` smoothing).
    """
    cs = as_concepts(concepts)
    texts = [c.text for c in cs]
    if len(set(texts)) != len(texts):
        raise ValueError(f"phrases must be unique, got {texts}.")
    if not samples:
        raise ValueError("ground_truth_predictions: no samples.")
    lo, hi = _check_range("score_range", score_range)
    out: PredictionSet = {}
    for ci, c in enumerate(cs):
        per = []
        for i, s in enumerate(samples):
            idx = denoted_instances(s, c)
            scores = _rng(seed, _SCORE, i, ci).uniform(lo, hi, len(idx))
            per.append(
                Detections(
                    tuple(s.instances[k].mask for k in idx), scores, idx, (s.height, s.width)
                )
            )
        out[c.text] = per
    return out
