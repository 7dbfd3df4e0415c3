"""The perturbations, each pure and seeded: boundary errors (`erode_predictions`,
`dilate_predictions`), missed instances and images (`drop_instances`, `drop_images`), false
positives on phrases that denote nothing (`add_false_positives`, `with_background`),
`duplicate_detections`, score transforms (`calibrate_scores`) and an attribute phrase answered
with the wrong apples (`confuse_attributes`); `PERTURBATIONS` names them for sweeps."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from ...data.types import Concept, Sample, as_concepts
from ...metrics import (
    as_mask_stack,
    disk,
)
from ...prompts.concepts import denoted_instances
from .detections import (
    _ATTR,
    _BG,
    _DROP,
    _DROP_IMAGE,
    _DUP,
    _FP,
    Detections,
    PredictionSet,
    _check_fraction,
    _check_predictions,
    _check_radius,
    _check_range,
    _map,
    _rng,
)

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
