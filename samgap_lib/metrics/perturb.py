"""Controlled errors: predictions made from the ground truth, perturbed one way at a time.

No model is needed to see what a metric measures: start from a perfect prediction (every
instance a phrase denotes, with its exact mask and a confident score), apply one kind of error at
a known strength, and score the result with every metric. This module holds

* the prediction container `Detections` and the perfect starting point
  `ground_truth_predictions` (``predictions[phrase][i]`` for ``samples[i]``, the form the
  concept metrics of `samgap_lib.metrics.concept` read);
* the perturbations, each pure and seeded: `erode_predictions` / `dilate_predictions`
  (boundary error of ``r`` pixels), `drop_instances` (missed instances), `drop_images` (every
  instance of some images missed), `add_false_positives` (detections on phrases that denote
  nothing), `duplicate_detections`,
  `calibrate_scores` (a monotone score transform: ranking kept, threshold crossings change) and
  `confuse_attributes` (an attribute phrase answered with the wrong apples);
* `coco_results`, the same predictions as a COCO results list over SA-Co (image, phrase) pair
  ids (``pair id = sample_index * n_concepts + concept_index + 1``, as
  `samgap_lib.data.to_saco`), for `samgap_lib.metrics.cgf1` and `samgap_lib.metrics.coco_ap`;
* `evaluate` (every geometric and concept metric on one prediction set) and `metric_response`
  (a tidy table of all metrics while one perturbation's strength is swept);
* `erosion_boundary_response` (Boundary F of eroded masks at several tolerances) and, for
  videos, `tracks_from_frames`, `shift_mask` and `degrade_track`.

Randomness: every random choice is drawn from ``numpy.random.SeedSequence([seed, tag, i, ...])``
for image ``i``, with draws that do not depend on the strength, so the errors made at a small
strength are a subset of those made at a larger one (dropping 20 % of the instances drops the
same instances as 10 % and more). Metric curves over strength are therefore monotone wherever
the metric itself is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from samgap_lib.data.coco import to_saco
from samgap_lib.data.types import Concept, Sample, as_concepts
from samgap_lib.prompts.concepts import denoted_instances

from .coco import coco_ap
from .concept import attribute_accuracy, cgf1, concept_recall, mask_iou_matrix
from .masks import as_mask_stack, boundary_f1, boundary_tolerance, dice, disk, iou

__all__ = [
    "METRICS",
    "PERTURBATIONS",
    "Detections",
    "PredictionSet",
    "add_false_positives",
    "calibrate_scores",
    "coco_results",
    "confuse_attributes",
    "degrade_track",
    "dilate",
    "dilate_predictions",
    "drop_images",
    "drop_instances",
    "duplicate_detections",
    "erode",
    "erode_predictions",
    "erosion_boundary_response",
    "evaluate",
    "ground_truth_predictions",
    "invisible_erosion",
    "metric_response",
    "shift_mask",
    "tracks_from_frames",
    "with_background",
]

# Seed-stream tags: one per kind of random choice, so the perturbations draw independently.
_SCORE, _DROP, _FP, _DUP, _ATTR, _BG, _JITTER, _DROP_IMAGE = range(1, 9)

# The keys `evaluate` returns, in table order: geometric metrics, then concept metrics.
METRICS = (
    "IoU",
    "Dice",
    "BF_davis",
    "BF_tight",
    "cgF1",
    "pmF1",
    "IL_MCC",
    "AP",
    "concept_recall",
    "attr_precision",
    "attr_rejection",
)


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


# --------------------------------------------------------------------------------------------
# Geometric perturbations
# --------------------------------------------------------------------------------------------


def _morph(mask: np.ndarray, radius: int, op: Callable) -> np.ndarray:
    if radius == 0:
        return mask.copy()
    return op(np.ascontiguousarray(mask).view(np.uint8), disk(radius)).view(bool)


def erode(mask: Any, radius: int) -> np.ndarray:
    """Erode an ``(H, W)`` mask (or ``(N, H, W)`` stack) with a disk of ``radius`` pixels.

    The boundary moves ``radius`` pixels inwards; objects thinner than ``2 radius + 1`` vanish.
    The image edge is not treated as background (an apple cut by the frame keeps its cut edge),
    as DAVIS's boundary maps do not count the frame edge as a boundary either.
    """
    r = _check_radius(radius)
    m = as_mask_stack(mask, "mask")
    if m.ndim == 2:
        return _morph(np.ascontiguousarray(m), r, cv2.erode)
    if m.ndim != 3:
        raise ValueError(f"erode expects (H, W) or (N, H, W) masks, got shape {m.shape}.")
    return np.stack([_morph(np.ascontiguousarray(x), r, cv2.erode) for x in m]) if len(m) else m


def dilate(mask: Any, radius: int) -> np.ndarray:
    """Dilate an ``(H, W)`` mask (or ``(N, H, W)`` stack) with a disk of ``radius`` pixels."""
    r = _check_radius(radius)
    m = as_mask_stack(mask, "mask")
    if m.ndim == 2:
        return _morph(np.ascontiguousarray(m), r, cv2.dilate)
    if m.ndim != 3:
        raise ValueError(f"dilate expects (H, W) or (N, H, W) masks, got shape {m.shape}.")
    return np.stack([_morph(np.ascontiguousarray(x), r, cv2.dilate) for x in m]) if len(m) else m


def _morph_predictions(predictions: PredictionSet, radius: int, op: Callable) -> PredictionSet:
    _check_predictions(predictions)
    r = _check_radius(radius)
    if r == 0:
        return {p: list(per) for p, per in predictions.items()}
    cache: dict[int, np.ndarray] = {}

    def one(_i: int, _p: str, d: Detections) -> Detections:
        new = []
        for m in d.mask_list:
            if id(m) not in cache:
                cache[id(m)] = _morph(m, r, op)
            new.append(cache[id(m)])
        keep = [k for k, m in enumerate(new) if m.any()]
        return Detections(tuple(new[k] for k in keep), d.scores[keep], d.sources[keep], d.shape)

    return _map(predictions, one)


def erode_predictions(predictions: PredictionSet, radius: int) -> PredictionSet:
    """Every mask eroded by ``radius`` pixels (`erode`): a boundary error inwards.

    A mask eroded away entirely is dropped (a detector reports no empty masks), so large radii
    also turn small instances into misses.
    """
    return _morph_predictions(predictions, radius, cv2.erode)


def dilate_predictions(predictions: PredictionSet, radius: int) -> PredictionSet:
    """Every mask dilated by ``radius`` pixels (`dilate`): a boundary error outwards."""
    return _morph_predictions(predictions, radius, cv2.dilate)


# --------------------------------------------------------------------------------------------
# Instance-level perturbations
# --------------------------------------------------------------------------------------------


def drop_instances(
    predictions: PredictionSet, samples: Sequence[Sample], frac: float, seed: int = 0
) -> PredictionSet:
    """Miss a fraction of the instances: every detection made from them, under every phrase.

    Instance ``k`` of image ``i`` is missed when ``u[i][k] < frac`` for a uniform draw ``u``
    that depends only on ``(seed, i)``, so the missed sets are nested as ``frac`` grows.
    Spurious detections (source -1) are kept.
    """
    _check_predictions(predictions, samples)
    f = _check_fraction("frac", frac)
    missed = [_rng(seed, _DROP, i).random(len(s.instances)) < f for i, s in enumerate(samples)]

    def one(i: int, _p: str, d: Detections) -> Detections:
        keep = [k for k, src in enumerate(d.sources) if src < 0 or not missed[i][src]]
        return d if len(keep) == len(d) else d.subset(keep)

    return _map(predictions, one)


def drop_images(
    predictions: PredictionSet, samples: Sequence[Sample], frac: float, seed: int = 0
) -> PredictionSet:
    """Miss every instance of a fraction of the images: a model that fails on whole scenes (a
    dark or back-lit photograph, an unusual camera) rather than on apples one at a time.

    Image ``i`` is missed when ``u[i] < frac`` for a uniform draw ``u`` that depends only on
    ``(seed, i)``, so the missed images are nested as ``frac`` grows. Expected recall is the
    same as `drop_instances` at the same ``frac``; the errors are grouped by image, which is
    what intervals over images (`samgap_lib.metrics.bootstrap_ratio`) see and intervals over
    instances do not. Spurious detections (source -1) are kept.
    """
    _check_predictions(predictions, samples)
    f = _check_fraction("frac", frac)
    missed = [bool(_rng(seed, _DROP_IMAGE, i).random() < f) for i in range(len(samples))]

    def one(i: int, _p: str, d: Detections) -> Detections:
        if not missed[i]:
            return d
        keep = [k for k, src in enumerate(d.sources) if src < 0]
        return d if len(keep) == len(d) else d.subset(keep)

    return _map(predictions, one)


def duplicate_detections(
    predictions: PredictionSet,
    samples: Sequence[Sample],
    frac: float,
    seed: int = 0,
    score_delta: float = 0.0,
) -> PredictionSet:
    """Report a fraction of the instances twice (the same mask again, as a second detection).

    Instance ``k`` of image ``i`` is duplicated, under every phrase that detects it, when
    ``u[i][k] < frac`` (nested as ``frac`` grows). The copy's score is the original's minus
    ``score_delta`` (clipped at 0). With one-to-one matching only one of the two can be a true
    positive; the other is a false positive on a pair that has ground truth.
    """
    _check_predictions(predictions, samples)
    f = _check_fraction("frac", frac)
    if not (math.isfinite(score_delta) and score_delta >= 0):
        raise ValueError(f"score_delta must be a number >= 0, got {score_delta!r}.")
    dup = [_rng(seed, _DUP, i).random(len(s.instances)) < f for i, s in enumerate(samples)]

    def one(i: int, _p: str, d: Detections) -> Detections:
        ks = [k for k, src in enumerate(d.sources) if src >= 0 and dup[i][src]]
        return d.extend(
            [d.mask_list[k] for k in ks],
            [max(float(d.scores[k]) - score_delta, 0.0) for k in ks],
            [int(d.sources[k]) for k in ks],
        )

    return _map(predictions, one)


def _blob(rng: np.random.Generator, shape: tuple[int, int], radius: float) -> np.ndarray:
    """A filled ellipse of about ``radius`` pixels at a random place (always >= 1 pixel)."""
    h, w = shape
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = radius * rng.uniform(0.8, 1.2, 2)
    theta = rng.uniform(0, np.pi)
    y0, y1 = max(0, int(cy - ry - rx - 1)), min(h, int(cy + ry + rx + 2))
    x0, x1 = max(0, int(cx - ry - rx - 1)), min(w, int(cx + ry + rx + 2))
    mask = np.zeros(shape, dtype=bool)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dy, dx = yy + 0.5 - cy, xx + 0.5 - cx
    c, s = np.cos(theta), np.sin(theta)
    u, v = (c * dx + s * dy) / rx, (-s * dx + c * dy) / ry
    mask[y0:y1, x0:x1] = u * u + v * v <= 1
    if not mask.any():
        mask[min(int(cy), h - 1), min(int(cx), w - 1)] = True
    return mask


def _typical_radius(samples: Sequence[Sample]) -> float:
    areas = [inst.area for s in samples for inst in s.instances]
    if areas:
        return float(np.sqrt(np.median(areas) / np.pi))
    return 0.05 * min(min(s.height, s.width) for s in samples)


def _spurious(
    predictions: PredictionSet,
    samples: Sequence[Sample],
    targets: list[str],
    per_image: float,
    seed: int,
    tag: int,
    kind: str,
    score_range: tuple[float, float],
) -> PredictionSet:
    if not (math.isfinite(per_image) and per_image >= 0):
        raise ValueError(f"per_image must be a number >= 0, got {per_image!r}.")
    if kind not in ("instance", "blob"):
        raise ValueError(f"kind must be 'instance' or 'blob', got {kind!r}.")
    lo, hi = _check_range("score_range", score_range)
    radius = _typical_radius(samples)
    whole, part = int(per_image), per_image - int(per_image)
    added: dict[str, list[list]] = {p: [[] for _ in samples] for p in targets}
    if targets:
        for i, s in enumerate(samples):
            rng = _rng(seed, tag, i)
            count = whole + int(rng.random() < part)
            for _ in range(count):
                phrase = targets[int(rng.integers(len(targets)))]
                score = float(rng.uniform(lo, hi))
                if kind == "instance" and s.instances:
                    mask = s.instances[int(rng.integers(len(s.instances)))].mask
                else:
                    mask = _blob(rng, (s.height, s.width), radius)
                added[phrase][i].append((mask, score))

    def one(i: int, p: str, d: Detections) -> Detections:
        new = added.get(p, [[]] * len(samples))[i]
        return d.extend([m for m, _ in new], [sc for _, sc in new], [-1] * len(new))

    return _map(predictions, one)


def _targets(
    concepts: Sequence[Concept | str],
    samples: Sequence[Sample],
    predictions: PredictionSet,
    on: str | Sequence[str],
) -> list[str]:
    cs = as_concepts(concepts)
    missing = [c.text for c in cs if c.text not in predictions]
    if missing:
        raise ValueError(f"predictions lack phrase(s) {missing}.")
    if isinstance(on, str):
        if on == "all":
            return [c.text for c in cs]
        if on == "negative":
            return [c.text for c in cs if not any(denoted_instances(s, c).size for s in samples)]
        raise ValueError(f"on must be 'negative', 'all' or a list of phrases, got {on!r}.")
    unknown = [p for p in on if p not in predictions]
    if unknown:
        raise ValueError(f"on names phrase(s) {unknown} that predictions lack.")
    return list(on)


def add_false_positives(
    predictions: PredictionSet,
    samples: Sequence[Sample],
    concepts: Sequence[Concept | str],
    per_image: float,
    seed: int = 0,
    on: str | Sequence[str] = "negative",
    kind: str = "instance",
    score_range: tuple[float, float] = (0.5, 1.0),
) -> PredictionSet:
    """Add confident false positives, by default on the negative phrases ("pear" answered).

    Parameters
    ----------
    per_image
        Expected number per image: ``floor(per_image)``, plus one more with probability
        ``per_image - floor(per_image)``. The detections added at a smaller value are a prefix
        of those added at a larger one.
    on
        ``"negative"``: phrases that denote nothing in any sample; ``"all"``; or a list of texts.
        Each false positive goes to one of them, chosen at random.
    kind
        ``"instance"``: the mask of a random instance of the image (the model answers "pear"
        with an apple; a blob on an image without instances); ``"blob"``: a random ellipse of
        the data's median instance size.
    score_range
        Scores are drawn uniformly from it (at or above SAM3's threshold 0.5 by default).
    """
    _check_predictions(predictions, samples)
    targets = _targets(concepts, samples, predictions, on)
    return _spurious(predictions, samples, targets, per_image, seed, _FP, kind, score_range)


def with_background(
    predictions: PredictionSet,
    samples: Sequence[Sample],
    concepts: Sequence[Concept | str],
    per_image: float = 2.0,
    seed: int = 0,
    score_range: tuple[float, float] = (0.05, 0.45),
) -> PredictionSet:
    """Add low-scored spurious blobs on any phrase: the background every detector reports.

    Below the 0.5 threshold and below every true detection's score (with the default ranges),
    they change no metric of a perfect prediction until a score transform lifts them over the
    threshold (see `calibrate_scores`).
    """
    _check_predictions(predictions, samples)
    targets = _targets(concepts, samples, predictions, "all")
    return _spurious(predictions, samples, targets, per_image, seed, _BG, "blob", score_range)


def confuse_attributes(
    predictions: PredictionSet,
    samples: Sequence[Sample],
    concepts: Sequence[Concept | str],
    frac: float,
    seed: int = 0,
    score_range: tuple[float, float] = (0.6, 0.95),
) -> PredictionSet:
    """Answer attribute phrases with the wrong instances too ("ripe apple" finds unripe ones).

    For every phrase with attributes and every instance of its category that it does *not*
    denote, that instance's mask is added as a detection of the phrase when ``u < frac``
    (nested as ``frac`` grows). Phrases without attributes are unchanged.
    """
    _check_predictions(predictions, samples)
    f = _check_fraction("frac", frac)
    lo, hi = _check_range("score_range", score_range)
    added: dict[str, list[Detections | None]] = {}
    for ci, c in enumerate(as_concepts(concepts)):
        if not c.attributes:
            continue
        if c.text not in predictions:
            raise ValueError(f"predictions lack phrase {c.text!r}.")
        base = Concept(c.text, c.category)
        per: list[Detections | None] = []
        for i, s in enumerate(samples):
            cat = denoted_instances(s, base)
            rng = _rng(seed, _ATTR, i, ci)
            u = rng.random(len(cat))
            sc = rng.uniform(lo, hi, len(cat))
            pick = [j for j, k in enumerate(cat) if u[j] < f and not c.matches(s.instances[k])]
            per.append(
                Detections(
                    tuple(s.instances[cat[j]].mask for j in pick),
                    sc[pick],
                    cat[pick],
                    (s.height, s.width),
                )
                if pick
                else None
            )
        added[c.text] = per

    def one(i: int, p: str, d: Detections) -> Detections:
        extra = added.get(p, [None] * len(samples))[i]
        if extra is None:
            return d
        return d.extend(extra.mask_list, extra.scores, extra.sources)

    return _map(predictions, one)


def calibrate_scores(
    predictions: PredictionSet, shift: float = 0.0, temperature: float = 1.0
) -> PredictionSet:
    """Transform every score by ``s' = sigmoid(logit(s) / temperature + shift)``.

    The transform is strictly increasing, so the ranking of detections (all that AP reads) is
    kept, while detections move across a fixed threshold such as SAM3's 0.5: a negative shift
    (an under-confident model) pushes true detections below it, a positive shift (over-confident)
    lifts low-scored false positives above it. Scores are clipped to ``[1e-12, 1 - 1e-12]``
    before the logit.
    """
    _check_predictions(predictions)
    if not math.isfinite(shift):
        raise ValueError(f"shift must be a finite number, got {shift!r}.")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}.")
    if shift == 0 and temperature == 1:
        return {p: list(per) for p, per in predictions.items()}

    def one(_i: int, _p: str, d: Detections) -> Detections:
        s = np.clip(d.scores, 1e-12, 1 - 1e-12)
        z = np.log(s) - np.log1p(-s)
        new = 1.0 / (1.0 + np.exp(-(z / temperature + shift)))
        return Detections(d.mask_list, new, d.sources, d.shape)

    return _map(predictions, one)


# --------------------------------------------------------------------------------------------
# COCO results and evaluation
# --------------------------------------------------------------------------------------------


def coco_results(
    predictions: PredictionSet, concepts: Sequence[Concept | str]
) -> list[dict[str, Any]]:
    """The predictions as a COCO results list over SA-Co (image, phrase) pairs.

    Pair ids follow `samgap_lib.data.to_saco` with the same ``concepts`` in the same order:
    ``sample_index * n_concepts + concept_index + 1``; ``category_id`` is 1 (SA-Co's single
    "object" category); ``segmentation`` is compressed RLE, ``bbox`` its COCO ``xywh`` box.
    """
    _check_predictions(predictions)
    cs = as_concepts(concepts)
    missing = [c.text for c in cs if c.text not in predictions]
    if missing:
        raise ValueError(f"predictions lack phrase(s) {missing}; pass the same concepts.")
    n = len(next(iter(predictions.values())))
    cache: dict[int, tuple[dict, list[float]]] = {}
    out: list[dict[str, Any]] = []
    for i in range(n):
        for ci, c in enumerate(cs):
            d = predictions[c.text][i]
            for m, score in zip(d.mask_list, d.scores, strict=True):
                if id(m) not in cache:
                    rle = mask_utils.encode(np.asfortranarray(m.view(np.uint8)))
                    box = [float(v) for v in mask_utils.toBbox(rle)]
                    rle["counts"] = rle["counts"].decode("ascii")
                    cache[id(m)] = (rle, box)
                rle, box = cache[id(m)]
                out.append(
                    {
                        "image_id": i * len(cs) + ci + 1,
                        "category_id": 1,
                        "segmentation": dict(rle),
                        "bbox": list(box),
                        "score": float(score),
                    }
                )
    return out


def _geometric(
    samples: Sequence[Sample],
    predictions: PredictionSet,
    concept: Concept,
    tight_tolerance: float,
    davis_bound_th: float,
) -> dict[str, float]:
    ious, dices, bf_d, bf_t = [], [], [], []
    for i, s in enumerate(samples):
        idx = denoted_instances(s, concept)
        if idx.size == 0:
            continue
        gt = s.masks[idx]
        pred = predictions[concept.text][i].masks
        best = np.zeros_like(gt)
        if len(pred):
            m = mask_iou_matrix(pred, gt)
            j = m.argmax(axis=0)
            hit = m[j, np.arange(len(idx))] > 0
            best[hit] = pred[j[hit]]
        ious.append(np.atleast_1d(iou(best, gt)))
        dices.append(np.atleast_1d(dice(best, gt)))
        bf_d.append(np.atleast_1d(boundary_f1(best, gt, davis_bound_th)))
        bf_t.append(np.atleast_1d(boundary_f1(best, gt, tight_tolerance)))
    if not ious:
        nan = float("nan")
        return {"IoU": nan, "Dice": nan, "BF_davis": nan, "BF_tight": nan}
    return {
        "IoU": float(np.concatenate(ious).mean()),
        "Dice": float(np.concatenate(dices).mean()),
        "BF_davis": float(np.concatenate(bf_d).mean()),
        "BF_tight": float(np.concatenate(bf_t).mean()),
    }


def evaluate(
    samples: Sequence[Sample],
    concepts: Sequence[Concept | str],
    predictions: PredictionSet,
    phrase: str = "apple",
    tight_tolerance: float = 2,
    davis_bound_th: float = 0.008,
    saco: Mapping[str, Any] | None = None,
    score_threshold: float = 0.5,
) -> dict[str, float]:
    """Every geometric and concept metric of one prediction set (keys: `METRICS`).

    Geometric metrics read the predictions the way a prompted (SAM2-style) evaluation does: for
    each ground-truth instance that ``phrase`` denotes, the predicted mask of ``phrase`` that
    overlaps it most (whatever its score: a prompt always returns a mask) is compared with it;
    an instance no mask overlaps gets an empty mask. ``IoU``, ``Dice``, ``BF_davis`` (Boundary F
    at the DAVIS tolerance ``davis_bound_th``) and ``BF_tight`` (at ``tight_tolerance``; a
    whole number of pixels, or a diagonal fraction below 1) are means over those instances.

    Concept metrics read every phrase and the scores: ``cgF1``, ``pmF1`` (positive micro F1) and
    ``IL_MCC`` from `samgap_lib.metrics.cgf1` (SAM3's evaluator), ``AP`` from
    `samgap_lib.metrics.coco_ap` (COCO mask AP over the (image, phrase) pairs),
    ``concept_recall`` (micro, `samgap_lib.metrics.concept_recall`) and ``attr_precision`` /
    ``attr_rejection`` (`samgap_lib.metrics.attribute_accuracy` over the phrases with
    attributes; NaN when there are none). Thresholded metrics keep ``score >= score_threshold``
    and match at IoU 0.5 (cgF1: averaged over IoU 0.50:0.95).

    Parameters
    ----------
    saco
        ``to_saco(samples, concepts)``, when already computed (it is the same for every
        prediction set of a sweep).
    """
    cs = as_concepts(concepts)
    _check_predictions(predictions, samples)
    missing = [c.text for c in cs if c.text not in predictions]
    if missing:
        raise ValueError(f"predictions lack phrase(s) {missing}.")
    by_text = {c.text: c for c in cs}
    if phrase not in by_text:
        raise ValueError(f"phrase {phrase!r} is not among the concepts {sorted(by_text)}.")
    gt = saco if saco is not None else to_saco(samples, cs)
    results = coco_results(predictions, cs)
    out = _geometric(samples, predictions, by_text[phrase], tight_tolerance, davis_bound_th)
    cg = cgf1(gt, results, score_threshold=score_threshold)
    out["cgF1"] = cg["cgF1"]
    out["pmF1"] = cg["positive_micro_F1"]
    out["IL_MCC"] = cg["IL_MCC"]
    out["AP"] = coco_ap(gt, results)["AP"]
    out["concept_recall"] = concept_recall(samples, predictions, cs, score_threshold)["recall"]
    attr = [c for c in cs if c.attributes]
    if attr:
        acc = attribute_accuracy(samples, predictions, attr, score_threshold)
        out["attr_precision"] = acc["attribute_precision"]
        out["attr_rejection"] = acc["attribute_rejection"]
    else:
        out["attr_precision"] = out["attr_rejection"] = float("nan")
    return {k: float(out[k]) for k in METRICS}


# Perturbation families by name: (predictions, samples, concepts, strength, seed, **kw) -> new.
PERTURBATIONS: dict[str, Callable[..., PredictionSet]] = {
    "erode": lambda p, s, c, x, seed, **kw: erode_predictions(p, x),
    "dilate": lambda p, s, c, x, seed, **kw: dilate_predictions(p, x),
    "drop": lambda p, s, c, x, seed, **kw: drop_instances(p, s, x, seed),
    "false_positives": lambda p, s, c, x, seed, **kw: add_false_positives(p, s, c, x, seed, **kw),
    "duplicates": lambda p, s, c, x, seed, **kw: duplicate_detections(p, s, x, seed, **kw),
    "score_shift": lambda p, s, c, x, seed, **kw: calibrate_scores(p, shift=x),
    "temperature": lambda p, s, c, x, seed, **kw: calibrate_scores(p, temperature=x),
    "attribute_confusion": lambda p, s, c, x, seed, **kw: confuse_attributes(
        p, s, c, x, seed, **kw
    ),
}
"""The named perturbation families `metric_response` sweeps (strength meaning in brackets):
``erode`` / ``dilate`` (radius, px), ``drop`` (fraction of instances missed),
``false_positives`` (per image, on negative phrases), ``duplicates`` (fraction duplicated),
``score_shift`` (logit shift), ``temperature`` (logit temperature), ``attribute_confusion``
(fraction of other-attribute instances added)."""


def metric_response(
    samples: Sequence[Sample],
    concepts: Sequence[Concept | str],
    perturbation: str | Callable[..., PredictionSet],
    strengths: Sequence[float],
    seed: int = 0,
    base: PredictionSet | None = None,
    phrase: str = "apple",
    tight_tolerance: float = 2,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Sweep one perturbation's strength and score every metric at each: a tidy table.

    Parameters
    ----------
    samples, concepts
        Ground truth and phrases.
    perturbation
        A name in `PERTURBATIONS`, or a callable
        ``f(predictions, samples, concepts, strength, seed) -> predictions``.
    strengths
        The strengths to apply, each to ``base`` (not cumulatively).
    seed
        Seed of the perturbation (and of ``base`` when it is made here).
    base
        The prediction to perturb; by default ``ground_truth_predictions(samples, concepts,
        seed)``.
    phrase, tight_tolerance
        Passed to `evaluate`.
    **kwargs
        Passed to the perturbation (e.g. ``kind="blob"`` for false positives).

    Returns
    -------
    list of dict
        One row per strength: ``perturbation`` (name), ``strength`` and the `METRICS`.
    """
    if isinstance(perturbation, str):
        if perturbation not in PERTURBATIONS:
            raise ValueError(
                f"unknown perturbation {perturbation!r}; choose one of {sorted(PERTURBATIONS)} "
                "or pass a callable."
            )
        fn, name = PERTURBATIONS[perturbation], perturbation
    elif callable(perturbation):
        fn, name = perturbation, getattr(perturbation, "__name__", "custom")
    else:
        raise TypeError("perturbation must be a name or a callable.")
    strengths = list(strengths)
    if not strengths:
        raise ValueError("metric_response: no strengths to sweep.")
    cs = as_concepts(concepts)
    if base is None:
        base = ground_truth_predictions(samples, cs, seed)
    saco = to_saco(samples, cs)
    rows = []
    for x in strengths:
        pred = fn(base, samples, cs, x, seed, **kwargs)
        row: dict[str, Any] = {"perturbation": name, "strength": x}
        row.update(evaluate(samples, cs, pred, phrase, tight_tolerance, saco=saco))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# Boundary tolerance and video
# --------------------------------------------------------------------------------------------


def erosion_boundary_response(
    masks: Sequence[np.ndarray],
    radii: Sequence[int],
    tolerances: Mapping[str, float],
    relative: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Boundary F (and IoU) of masks eroded by each radius, at several tolerances.

    Parameters
    ----------
    masks
        Ground-truth ``(H, W)`` masks (non-empty), e.g. every apple of a dataset.
    radii
        Erosion radii in pixels.
    tolerances
        Label -> ``bound_th`` of `samgap_lib.metrics.boundary_f1` (a fraction of the image
        diagonal below 1, e.g. DAVIS's 0.008, or whole pixels from 1).
    relative
        Label -> fraction ``f`` of each mask's equivalent diameter ``d = 2 sqrt(area / pi)``:
        the tolerance is ``max(1, ceil(f d))`` pixels for that mask (a size-relative tolerance).

    Returns
    -------
    list of dict
        One row per (radius, tolerance): ``radius``, ``tolerance`` (label), ``boundary_f``
        (mean over masks), ``iou`` (mean IoU of the eroded masks, the same for every tolerance)
        and ``n_masks``.
    """
    ms = [as_mask_stack(m, "mask") for m in masks]
    if not ms:
        raise ValueError("erosion_boundary_response: no masks.")
    for k, m in enumerate(ms):
        if m.ndim != 2 or not m.any():
            raise ValueError(f"mask {k} must be a non-empty (H, W) mask, got shape {m.shape}.")
    relative = dict(relative or {})
    if not tolerances and not relative:
        raise ValueError("give at least one tolerance.")
    for label, f in relative.items():
        if not (math.isfinite(f) and f > 0):
            raise ValueError(f"relative tolerance {label!r} must be a fraction > 0, got {f!r}.")
    rel_px = {
        label: [max(1, math.ceil(f * 2 * math.sqrt(m.sum() / math.pi))) for m in ms]
        for label, f in relative.items()
    }
    rows = []
    for r in radii:
        er = [erode(m, r) for m in ms]
        j = float(np.mean([iou(e, m) for e, m in zip(er, ms, strict=True)]))
        for label, th in tolerances.items():
            bf = [boundary_f1(e, m, th) for e, m in zip(er, ms, strict=True)]
            rows.append(
                {"radius": int(r), "tolerance": label, "boundary_f": float(np.mean(bf)), "iou": j}
            )
        for label, px in rel_px.items():
            bf = [boundary_f1(e, m, t) for e, m, t in zip(er, ms, px, strict=True)]
            rows.append(
                {"radius": int(r), "tolerance": label, "boundary_f": float(np.mean(bf)), "iou": j}
            )
    for row in rows:
        row["n_masks"] = len(ms)
    return rows


def tracks_from_frames(frames: Sequence[Sample]) -> dict[int, np.ndarray]:
    """Per ``instance_id``, the ``(T, H, W)`` ground-truth masks of the object in every frame
    (empty where it is not visible), from video frames such as
    `samgap_lib.data.synthetic_orchard_video`'s."""
    if not frames:
        raise ValueError("tracks_from_frames: no frames.")
    shape = (frames[0].height, frames[0].width)
    if any((f.height, f.width) != shape for f in frames):
        raise ValueError("tracks_from_frames: every frame must have the same size.")
    ids = sorted({inst.instance_id for f in frames for inst in f.instances})
    out = {k: np.zeros((len(frames), *shape), dtype=bool) for k in ids}
    for t, f in enumerate(frames):
        for inst in f.instances:
            out[inst.instance_id][t] |= inst.mask
    return out


def shift_mask(mask: Any, dx: int, dy: int) -> np.ndarray:
    """Translate an ``(H, W)`` mask by whole pixels (``dx`` right, ``dy`` down), zero fill."""
    m = as_mask_stack(mask, "mask")
    if m.ndim != 2:
        raise ValueError(f"shift_mask expects an (H, W) mask, got shape {m.shape}.")
    dx, dy = int(dx), int(dy)
    h, w = m.shape
    out = np.zeros_like(m)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = m[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def degrade_track(
    masks: Any,
    erosion: int | Sequence[int] = 0,
    jitter: int | Sequence[int] = 0,
    seed: int = 0,
) -> np.ndarray:
    """A controlled, imperfect track: frame ``t`` eroded and shifted at random.

    Parameters
    ----------
    masks
        ``(T, H, W)`` ground-truth track.
    erosion
        Erosion radius per frame (px): one number for every frame, or ``T`` numbers (a radius
        growing with ``t`` is a drifting track).
    jitter
        Maximum shift per frame (px): frame ``t`` moves by ``(dx, dy)`` drawn uniformly from
        ``-jitter[t] .. jitter[t]`` (a jittery, flickering track).
    seed
        Seed of the shifts (draws depend only on ``(seed, t)``, so a larger jitter moves a frame
        at least as far in the same direction pattern).

    Returns
    -------
    numpy.ndarray
        ``(T, H, W)`` bool.
    """
    m = as_mask_stack(masks, "masks")
    if m.ndim != 3 or len(m) == 0:
        raise ValueError(f"degrade_track expects a (T, H, W) track with T >= 1, got {m.shape}.")
    t_len = len(m)

    def per_frame(name: str, v: Any) -> list[int]:
        arr = np.broadcast_to(np.asarray(v), (t_len,)) if np.ndim(v) == 0 else np.asarray(v)
        if arr.shape != (t_len,):
            raise ValueError(
                f"{name} must be one number or {t_len} numbers, got shape {arr.shape}."
            )
        return [_check_radius(x) for x in arr.tolist()]

    er, jit = per_frame("erosion", erosion), per_frame("jitter", jitter)
    out = np.empty_like(m)
    for t in range(t_len):
        frame = erode(m[t], er[t])
        u = _rng(seed, _JITTER, t).uniform(-1, 1, 2)
        dx, dy = (int(np.round(v * jit[t])) for v in u)
        out[t] = shift_mask(frame, dx, dy) if (dx or dy) else frame
    return out


def invisible_erosion(mask: Any, bound_th: float, min_f: float = 0.9) -> tuple[int, float]:
    """How much of an object Boundary F can lose without noticing.

    The mask is eroded by ``r = 1, 2, ...`` pixels while Boundary F of the eroded mask against
    the original, at tolerance ``bound_th`` (see `samgap_lib.metrics.boundary_f1`), stays
    ``>= min_f`` and the eroded mask is not empty.

    Returns
    -------
    radius, iou
        The largest such ``r`` (0 when already ``r = 1`` fails) and the IoU of the mask eroded by
        it (1.0 for ``r = 0``): the share of the object left when Boundary F still reports at
        least ``min_f``.
    """
    m = as_mask_stack(mask, "mask")
    if m.ndim != 2 or not m.any():
        raise ValueError(f"invisible_erosion needs a non-empty (H, W) mask, got shape {m.shape}.")
    if not 0 < min_f <= 1:
        raise ValueError(f"min_f must be in (0, 1], got {min_f!r}.")
    boundary_tolerance(bound_th, m.shape)  # validates bound_th
    best, best_iou = 0, 1.0
    for r in range(1, max(m.shape)):
        e = erode(m, r)
        if not e.any() or boundary_f1(e, m, bound_th) < min_f:
            break
        best, best_iou = r, float(iou(e, m))
    return best, best_iou
