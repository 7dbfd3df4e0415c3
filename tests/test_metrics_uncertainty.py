"""Bootstrap intervals over images against scipy.stats.bootstrap (percentile, paired), their
properties, and their coverage on a population whose true value is known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from samgap_lib.metrics import (
    Interval,
    bootstrap_ratio,
    bootstrap_ratio_difference,
    paired_differences,
    unit_sums,
)


def _scipy_ratio(num, den, n_resamples, confidence, seed):
    res = stats.bootstrap(
        (num, den),
        lambda n, d, axis=-1: n.sum(axis=axis) / d.sum(axis=axis),
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=n_resamples,
        confidence_level=confidence,
        random_state=np.random.default_rng(seed),
    )
    return res.confidence_interval


def _apples(rng, n_images):
    """Per image: the summed IoU of its apples and how many it has (some have none)."""
    counts = rng.integers(0, 9, n_images).astype(float)
    ious = np.array([rng.beta(6, 2, int(c)).sum() for c in counts])
    return ious, counts


@pytest.mark.parametrize("n_images,confidence", [(12, 0.9), (50, 0.95), (200, 0.95)])
def test_ratio_matches_scipy_percentile_bootstrap(n_images, confidence):
    rng = np.random.default_rng(n_images)
    num, den = _apples(rng, n_images)
    den[0] = max(den[0], 1.0)
    ours = bootstrap_ratio(num, den, confidence=confidence, n_resamples=40_000, seed=1)
    ref = _scipy_ratio(num, den, 40_000, confidence, 2)
    assert ours.estimate == pytest.approx(num.sum() / den.sum())
    # two Monte-Carlo estimates of the same quantiles: they agree to a few hundredths of the width
    tol = 0.03 * (ref.high - ref.low)
    assert ours.low == pytest.approx(ref.low, abs=tol)
    assert ours.high == pytest.approx(ref.high, abs=tol)
    assert ours.n_units == n_images and ours.confidence == confidence


def test_plain_mean_matches_scipy():
    rng = np.random.default_rng(3)
    x = rng.normal(0.7, 0.1, 40)
    ours = bootstrap_ratio(x, n_resamples=40_000, seed=0)
    ref = stats.bootstrap(
        (x,),
        np.mean,
        method="percentile",
        n_resamples=40_000,
        random_state=np.random.default_rng(9),
    ).confidence_interval
    tol = 0.03 * (ref.high - ref.low)
    assert ours.estimate == pytest.approx(x.mean())
    assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), abs=tol)


def test_difference_matches_scipy_paired():
    rng = np.random.default_rng(4)
    num_b, den = _apples(rng, 60)
    den[0] = 3.0
    num_a = np.minimum(num_b + rng.normal(0.1, 0.2, 60) * den, den)  # a paired, better model
    ours = bootstrap_ratio_difference(num_a, den, num_b, den, n_resamples=40_000, seed=0)
    ref = stats.bootstrap(
        (num_a, den, num_b),
        lambda a, d, b, axis=-1: (a.sum(axis) - b.sum(axis)) / d.sum(axis),
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=40_000,
        random_state=np.random.default_rng(5),
    ).confidence_interval
    tol = 0.03 * (ref.high - ref.low)
    assert ours.estimate == pytest.approx((num_a.sum() - num_b.sum()) / den.sum())
    assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), abs=tol)


def test_pairing_narrows_the_interval_of_a_difference():
    """What both scores share (hard images) cancels when the images are resampled together."""
    rng = np.random.default_rng(6)
    hardness = rng.uniform(0.2, 1.0, 80)
    a, b = hardness + 0.05, hardness + rng.normal(0, 0.01, 80)
    paired = bootstrap_ratio_difference(a, None, b, None, seed=0)
    apart = [bootstrap_ratio(x, seed=s) for s, x in ((1, a), (2, b))]
    assert paired.low > 0  # the 0.05 shows
    assert paired.half_width < 0.2 * min(i.half_width for i in apart)


def test_same_scores_give_a_zero_difference():
    rng = np.random.default_rng(7)
    num, den = _apples(rng, 30)
    den[0] = 1.0
    d = bootstrap_ratio_difference(num, den, num, den, n_resamples=500)
    assert d.estimate == d.low == d.high == 0.0


def test_coverage_on_a_known_population():
    """95% intervals from 60 Bernoulli images cover the true recall about 95% of the time."""
    rng = np.random.default_rng(8)
    p, hits = 0.45, 0
    trials = 300
    for t in range(trials):
        named = rng.integers(1, 6, 60).astype(float)
        found = rng.binomial(named.astype(int), p).astype(float)
        hits += p in bootstrap_ratio(found, named, n_resamples=1000, seed=t)
    assert 0.89 <= hits / trials <= 0.99


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.integers(1, 8)),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 2**31 - 1),
)
def test_interval_lies_within_the_per_unit_ratios(units, seed):
    """A resample's ratio of sums is a weighted mean of the per-unit ratios: it cannot leave
    their range, and the interval is ordered."""
    share = np.array([u[0] for u in units])
    den = np.array([u[1] for u in units], float)
    num = share * den
    iv = bootstrap_ratio(num, den, n_resamples=300, seed=seed)
    eps = 1e-12
    assert share.min() - eps <= iv.low <= iv.high <= share.max() + eps
    assert share.min() - eps <= iv.estimate <= share.max() + eps
    assert iv.undefined == 0


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 40), st.floats(0, 1), st.integers(1, 5))
def test_constant_ratio_has_no_spread(n, share, per):
    den = np.full(n, float(per))
    iv = bootstrap_ratio(share * den, den, n_resamples=200)
    assert iv.low == pytest.approx(share) and iv.high == pytest.approx(share)


def test_more_images_narrow_the_interval():
    rng = np.random.default_rng(9)
    num, den = _apples(rng, 40)
    den[0] = 2.0
    one = bootstrap_ratio(num, den, seed=0)
    four = bootstrap_ratio(np.tile(num, 4), np.tile(den, 4), seed=0)
    assert four.estimate == pytest.approx(one.estimate)
    assert four.half_width < 0.65 * one.half_width  # about 1/2 (1/sqrt(4))


def test_same_seed_same_interval_and_scaling_invariance():
    rng = np.random.default_rng(10)
    num, den = _apples(rng, 25)
    den[0] = 1.0
    a = bootstrap_ratio(num, den, seed=42, n_resamples=2000)
    assert a == bootstrap_ratio(num, den, seed=42, n_resamples=2000)
    assert a != bootstrap_ratio(num, den, seed=43, n_resamples=2000)
    scaled = bootstrap_ratio(3 * num, 3 * den, seed=42, n_resamples=2000)
    assert (scaled.low, scaled.high) == pytest.approx((a.low, a.high))


def test_resamples_without_instances_are_counted_and_left_out():
    """Two images, one with the only apple: about a quarter of resamples draw no apple."""
    iv = bootstrap_ratio([1.0, 0.0], [1.0, 0.0], n_resamples=4000, seed=0)
    assert iv.estimate == 1.0 and iv.low == iv.high == 1.0
    assert 800 < iv.undefined < 1200


def test_chunked_resampling_is_the_same_draw(monkeypatch):
    import samgap_lib.metrics.uncertainty as u

    rng = np.random.default_rng(11)
    num, den = _apples(rng, 30)
    den[0] = 1.0
    whole = u.bootstrap_ratio(num, den, n_resamples=999, seed=5)
    monkeypatch.setattr(u, "_CHUNK_CELLS", 30 * 7)  # 7 resamples per chunk
    chunked = u.bootstrap_ratio(num, den, n_resamples=999, seed=5)
    assert chunked == whole


def test_interval_reads_as_text_and_contains():
    iv = Interval(0.5, 0.4, 0.6, 0.95, 50, 1000)
    assert str(iv) == "0.500 [0.400, 0.600]"
    assert 0.45 in iv and 0.61 not in iv
    assert iv.half_width == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num": [1.0, 2.0], "den": [1.0]}, "one entry per unit"),
        ({"num": [[1.0]], "den": None}, "1-D"),
        ({"num": [1.0, np.nan], "den": None}, "NaN"),
        ({"num": [1.0], "den": [-1.0]}, "negative"),
        ({"num": [0.0, 0.0], "den": [0.0, 0.0]}, "sums to 0"),
        ({"num": [], "den": []}, "no units"),
        ({"num": [1.0], "den": None, "confidence": 95}, "between 0 and 1"),
        ({"num": [1.0], "den": None, "n_resamples": 0}, "positive integer"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_ratio(**kwargs)


def test_difference_needs_the_same_units():
    with pytest.raises(ValueError, match="same units"):
        bootstrap_ratio_difference([1.0, 2.0], None, [1.0], None)


def test_unit_sums():
    sums, counts = unit_sums([0.5, 0.7, 0.9], [2, 0, 2], n_units=4)
    assert sums.tolist() == pytest.approx([0.7, 0.0, 1.4, 0.0])
    assert counts.tolist() == [1, 0, 2, 0]
    sums, counts = unit_sums([], np.zeros(0, int), n_units=3)
    assert sums.tolist() == [0, 0, 0] and counts.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="outside n_units"):
        unit_sums([1.0], [3], n_units=2)
    with pytest.raises(ValueError, match="integer indices"):
        unit_sums([1.0], [0.5])
    with pytest.raises(ValueError, match="one entry per item"):
        unit_sums([1.0, 2.0], [0])


def test_paired_differences_take_the_metrics_both_have():
    rng = np.random.default_rng(12)
    num, den = _apples(rng, 20)
    den[0] = 1.0
    after = {"box": (num, den), "click": (0.9 * num, den), "only_after": (num, den)}
    before = {"click": (0.5 * num, den), "box": (0.8 * num, den), "only_before": (num, den)}
    out = paired_differences(after, before, n_resamples=500, seed=3)
    assert list(out) == ["box", "click"]
    assert out["click"] == bootstrap_ratio_difference(
        0.9 * num, den, 0.5 * num, den, n_resamples=500, seed=3
    )
    assert out["box"].estimate == pytest.approx(0.2 * num.sum() / den.sum())
