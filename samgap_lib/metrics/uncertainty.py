"""How sure a held-out number is: percentile bootstrap intervals over the images it was measured on.

A held-out score such as a mean IoU over apples or a recall over a phrase's instances is a
*ratio of sums over images*: the sum over images of a per-image numerator (the IoUs of its
apples, the apples found) divided by the sum of a per-image denominator (its apples, the apples
the phrase names). The images are the independent draws; the apples of one image are not (they
share its lighting, its leaves, each other's occlusions). So the interval resamples images with
replacement, keeping each image's apples together (a cluster bootstrap), and recomputes the
ratio of sums (Efron and Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13, the
percentile interval; Field and Welsh, 2007, on resampling clusters).

The interval says how much the number would move on another draw of test images of the same
kind, with the model fixed. It says nothing about another training seed: for that, train again
(`samgap_lib.training.seed_spread`). A paired difference (`bootstrap_ratio_difference`) resamples
the images of two scores measured on the same images together, which is the right interval for
"does A beat B on these images".

`unit_sums` turns per-item values (one IoU per apple) and the unit of each item (its image) into
the per-image numerators and denominators. `tests/test_metrics_uncertainty.py` checks both
bootstraps against ``scipy.stats.bootstrap`` (percentile method, paired samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Interval",
    "bootstrap_ratio",
    "bootstrap_ratio_difference",
    "paired_differences",
    "unit_sums",
]

# resamples per matrix product: bounds the (chunk, n_units) weight matrix to ~32 MB of int64
_CHUNK_CELLS = 1 << 22


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval.

    ``n_units`` units (images) were resampled ``n_resamples`` times; ``undefined`` of those
    resamples had a zero denominator (no instance in any drawn image) and were left out of the
    quantiles.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n_units: int
    n_resamples: int
    undefined: int = 0

    def __contains__(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _vector(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(
            f"{what} must be one number per unit (a 1-D array), got shape {arr.shape}."
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} holds NaN or infinite values; drop or fix those units first.")
    return arr


def _pair(num: Any, den: Any, name: str = "") -> tuple[np.ndarray, np.ndarray]:
    n = _vector(num, f"num{name}")
    d = np.ones_like(n) if den is None else _vector(den, f"den{name}")
    if d.shape != n.shape:
        raise ValueError(
            f"num{name} and den{name} must have one entry per unit each, got {n.shape} and {d.shape}."
        )
    if len(n) == 0:
        raise ValueError(f"num{name}: no units to resample.")
    if (d < 0).any():
        raise ValueError(f"den{name} must be counts or weights >= 0; it has negative entries.")
    if d.sum() <= 0:
        raise ValueError(
            f"den{name} sums to 0: the ratio is undefined (no instance in any unit), so there is "
            "nothing to put an interval on."
        )
    return n, d


def _check(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(
            f"confidence must lie strictly between 0 and 1 (e.g. 0.95), got {confidence}."
        )
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples}.")


def _resampled(
    sums: list[np.ndarray], n_resamples: int, seed: int | np.random.Generator
) -> list[np.ndarray]:
    """For each ``(n_units,)`` array in ``sums``, its sum over each of ``n_resamples``
    resamples of the units with replacement (the same resamples for every array)."""
    rng = np.random.default_rng(seed)
    n = len(sums[0])
    stacked = np.stack(sums, axis=1)  # (n_units, k)
    chunk = max(1, _CHUNK_CELLS // n)
    out = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size)  # (size, n_units)
        out.append(counts @ stacked)
    total = np.concatenate(out)  # (n_resamples, k)
    return [total[:, j] for j in range(len(sums))]


def _interval(
    estimate: float, stats: np.ndarray, confidence: float, n_units: int, n_resamples: int
) -> Interval:
    ok = np.isfinite(stats)
    alpha = 1.0 - confidence
    low, high = np.quantile(stats[ok], [alpha / 2, 1 - alpha / 2])
    return Interval(
        float(estimate),
        float(low),
        float(high),
        float(confidence),
        int(n_units),
        int(n_resamples),
        int((~ok).sum()),
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_ratio(
    num: Any,
    den: Any = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int | np.random.Generator = 0,
) -> Interval:
    """``sum(num) / sum(den)`` with a percentile bootstrap interval over the units.

    Parameters
    ----------
    num, den
        ``(n_units,)``: per unit (image), the numerator and denominator of the score. A mean
        IoU over apples: the image's summed IoUs and its number of apples (`unit_sums`); a
        recall: apples found and apples named. ``den=None`` bootstraps the plain mean of
        ``num`` over units.
    confidence
        Coverage of the interval (0.95: the 2.5 and 97.5 percentiles of the resampled scores).
    n_resamples
        Bootstrap resamples; each draws ``n_units`` units with replacement.
    seed
        For the resampling: the same seed gives the same interval.

    Returns
    -------
    Interval
        ``estimate`` is the score on the units as they are; ``low`` and ``high`` bound it.
        Resamples whose denominators sum to 0 are left out (counted in ``undefined``).
    """
    n, d = _pair(num, den)
    _check(confidence, n_resamples)
    sn, sd = _resampled([n, d], int(n_resamples), seed)
    return _interval(n.sum() / d.sum(), _ratio(sn, sd), confidence, len(n), n_resamples)


def bootstrap_ratio_difference(
    num_a: Any,
    den_a: Any,
    num_b: Any,
    den_b: Any,
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int | np.random.Generator = 0,
) -> Interval:
    """``sum(num_a)/sum(den_a) - sum(num_b)/sum(den_b)`` with a paired bootstrap interval.

    Both scores were measured on the same units (unit ``i`` of ``a`` is unit ``i`` of ``b``), so
    each resample draws the units once and recomputes both: what the images share (an easy
    image is easy for both) cancels, and the interval is narrower than two separate ones
    suggest. An interval that excludes 0 says the difference holds beyond the luck of which
    test images were drawn. ``den_a`` / ``den_b`` may be None (plain means), as in
    `bootstrap_ratio`.
    """
    na, da = _pair(num_a, den_a, "_a")
    nb, db = _pair(num_b, den_b, "_b")
    if na.shape != nb.shape:
        raise ValueError(
            f"a and b must be measured on the same units (paired), got {len(na)} and {len(nb)} units."
        )
    _check(confidence, n_resamples)
    sa, sda, sb, sdb = _resampled([na, da, nb, db], int(n_resamples), seed)
    estimate = na.sum() / da.sum() - nb.sum() / db.sum()
    return _interval(estimate, _ratio(sa, sda) - _ratio(sb, sdb), confidence, len(na), n_resamples)


def paired_differences(
    after: dict[str, tuple[Any, Any]],
    before: dict[str, tuple[Any, Any]],
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Interval]:
    """`bootstrap_ratio_difference` of each metric two models were scored on, on the same units.

    ``after`` and ``before`` map a metric name to its per-unit ``(num, den)`` (for example
    `samgap_lib.training.start_validation` of a run's start and of its final checkpoint).
    Returns ``{metric: Interval of after - before}`` for the metrics both have, in ``after``'s
    order; each metric's resampling uses the same ``seed``, so the images drawn are the same.
    """
    out = {}
    for name, (num_a, den_a) in after.items():
        if name in before:
            num_b, den_b = before[name]
            out[name] = bootstrap_ratio_difference(
                num_a,
                den_a,
                num_b,
                den_b,
                confidence=confidence,
                n_resamples=n_resamples,
                seed=seed,
            )
    return out


def unit_sums(values: Any, units: Any, n_units: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit sum and count of per-item ``values``: the ``num`` and ``den`` of `bootstrap_ratio`.

    ``values[k]`` belongs to unit ``units[k]`` (an integer in ``[0, n_units)``; for example the
    IoU of apple ``k`` and the index of its image). Units with no item get sum 0 and count 0:
    pass ``n_units`` so that images without instances still count as drawn units.
    """
    v = _vector(values, "values")
    u = np.asarray(units)
    if u.shape != v.shape:
        raise ValueError(
            f"values and units must have one entry per item, got {v.shape} and {u.shape}."
        )
    if u.size and (u.dtype.kind not in "iu" or u.min() < 0):
        raise ValueError("units must be non-negative integer indices (the unit of each item).")
    size = int(u.max()) + 1 if u.size else 0
    if n_units is not None:
        if size > n_units:
            raise ValueError(f"units go up to {size - 1}, outside n_units={n_units}.")
        size = int(n_units)
    sums = np.bincount(u.astype(np.int64), weights=v, minlength=size).astype(float)
    counts = np.bincount(u.astype(np.int64), minlength=size).astype(float)
    return sums, counts
