"""IoU, Dice and boundary F against DAVIS's definitions, plus property tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from samgap_lib.metrics import boundary_f1, boundary_tolerance, dice, iou, seg2bmap
from samgap_lib.metrics.reference import davis_eval_iou, davis_f_measure, davis_seg2bmap


def _blob(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(-3, h + 3), rng.uniform(-3, w + 3)
    ry, rx = rng.uniform(0.5, h / 2), rng.uniform(0.5, w / 2)
    m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    if rng.random() < 0.3:
        m ^= rng.random((h, w)) < 0.05  # ragged edges and specks
    return m


def _pairs(seed, n=40, h=37, w=53):
    rng = np.random.default_rng(seed)
    gt = np.stack([_blob(rng, h, w) for _ in range(n)])
    pred = np.stack(
        [_blob(rng, h, w) if rng.random() < 0.3 else np.roll(g, rng.integers(-4, 5), 1) for g in gt]
    )
    gt[0] = False  # empty vs something
    pred[1] = False
    gt[2] = pred[2] = False  # both empty
    gt[3] = pred[3] = True  # full frame: boundary only on the last row/column rules
    gt[4, -1, :] = True  # masks touching the last row/column
    pred[5, :, -1] = True
    return pred, gt


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("bound_th", [0.008, 0.05, 1, 3])
def test_boundary_f1_matches_davis(seed, bound_th):
    pred, gt = _pairs(seed)
    ours = boundary_f1(pred, gt, bound_th=bound_th)
    ref = np.array(
        [davis_f_measure(p, g, bound_th, dilation="numpy") for p, g in zip(pred, gt, strict=True)]
    )
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    for k in (0, 1, 2, 6):
        assert boundary_f1(pred[k], gt[k], bound_th) == pytest.approx(ref[k], abs=1e-12)


def test_numpy_dilation_reference_equals_cv2_davis():
    pred, gt = _pairs(9, n=8)
    for p, g in zip(pred, gt, strict=True):
        assert davis_f_measure(p, g, 0.05, "numpy") == davis_f_measure(p, g, 0.05, "cv2")


def test_seg2bmap_matches_davis():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.random((rng.integers(1, 12), rng.integers(1, 12))) < 0.5
        np.testing.assert_array_equal(seg2bmap(m), davis_seg2bmap(m))


def test_iou_matches_davis_j_and_conventions():
    pred, gt = _pairs(4)
    np.testing.assert_allclose(iou(pred, gt), davis_eval_iou(gt, pred), rtol=0, atol=1e-15)
    e = np.zeros((5, 5), bool)
    assert iou(e, e) == 1.0 and dice(e, e) == 1.0 and boundary_f1(e, e) == 1.0
    f = e.copy()
    f[1:3, 1:3] = True
    assert iou(e, f) == 0.0 and dice(f, e) == 0.0 and boundary_f1(e, f) == 0.0
    assert isinstance(iou(f, f), float)
    assert iou(np.zeros((0, 4, 4), bool), np.zeros((0, 4, 4), bool)).shape == (0,)


def test_tolerance():
    assert boundary_tolerance(0.008, (720, 1280)) == 12
    assert boundary_tolerance(3, (720, 1280)) == 3
    with pytest.raises(ValueError, match="whole number"):
        boundary_tolerance(2.5, (10, 10))
    with pytest.raises(ValueError, match="positive"):
        boundary_tolerance(0, (10, 10))


def test_invalid_inputs():
    a = np.zeros((4, 4), bool)
    with pytest.raises(ValueError, match="shape"):
        iou(a, np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match="0 and 1"):
        dice(a, np.full((4, 4), 0.7))
    with pytest.raises(ValueError, match="0 and 1"):
        boundary_f1(np.full((4, 4), 255, np.uint8), a)
    with pytest.raises(ValueError, match="NaN"):
        iou(np.full((4, 4), np.nan), a)
    with pytest.raises(ValueError, match="2-D|D arrays"):
        iou(np.zeros(4, bool), np.zeros(4, bool))
    assert iou(a.astype(np.uint8), a.astype(np.float32)) == 1.0


masks_st = arrays(np.bool_, (9, 11))


@settings(max_examples=60, deadline=None)
@given(masks_st, masks_st)
def test_properties(a, b):
    for fn in (iou, dice, boundary_f1):
        v = fn(a, b)
        assert 0.0 <= v <= 1.0
        assert fn(b, a) == pytest.approx(v, abs=1e-12)  # symmetric
        assert fn(a, a) == 1.0  # identity
    j, d = iou(a, b), dice(a, b)
    assert d == pytest.approx(2 * j / (1 + j), abs=1e-12)  # Dice is monotone in IoU
    assert d >= j - 1e-12


@settings(max_examples=40, deadline=None)
@given(masks_st, masks_st, masks_st)
def test_iou_monotone_when_adding_true_positives(a, b, extra):
    # adding ground-truth pixels to a prediction never lowers its IoU
    assert iou(a | (b & extra), b) >= iou(a, b) - 1e-12


@settings(max_examples=40, deadline=None)
@given(masks_st, masks_st, st.integers(1, 4))
def test_boundary_f1_monotone_in_tolerance(a, b, r):
    assert boundary_f1(a, b, r + 1) >= boundary_f1(a, b, r) - 1e-12
