"""NoC / NoF / mIoU@k and the click driver against RITM's loop (reference port, exact distances;
see samgap_lib.prompts.clicker for why not cv2's)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samgap_lib.evaluation import click_loop as run_clicks
from samgap_lib.metrics import candidate_selection, noc
from samgap_lib.metrics.reference import ritm_compute_noc_metric, ritm_evaluate_sample


def disc_predictor(h, w, radius):
    """Fake model: the union of discs around positive clicks minus discs around negative ones."""
    yy, xx = np.mgrid[0:h, 0:w]

    def from_clicks(pts_yx, labels):
        m = np.zeros((h, w), bool)
        for (y, x), lab in zip(pts_yx, labels, strict=True):
            d = (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
            m = (m | d) if lab else (m & ~d)
        return m

    def predict_fn(points, labels, prev_logits):
        return from_clicks(points[:, ::-1], labels), None

    def ritm_predict(clicker):
        pts = [c.coords for c in clicker.clicks_list]
        labels = [c.is_positive for c in clicker.clicks_list]
        return from_clicks(pts, labels).astype(np.float32)  # "probabilities" 0/1

    return predict_fn, ritm_predict


def _gt(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, min(h, w) / 3)
        m |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    if not m.any():
        m[h // 2, w // 2] = True
    return m


@pytest.mark.parametrize("seed", range(8))
def test_run_clicks_and_noc_match_ritm(seed):
    rng = np.random.default_rng(seed)
    h, w = 40, 56
    ours_all, ref_all = [], []
    for _ in range(4):
        gt = _gt(rng, h, w)
        fn, ritm_fn = disc_predictor(h, w, radius=int(rng.integers(2, 7)))
        ours, clicks = run_clicks(fn, gt, max_clicks=20, return_clicks=True)
        ref_clicks, ref = ritm_evaluate_sample(
            gt.astype(np.int64), ritm_fn, max_clicks=20, dt="exact"
        )
        assert [(c.is_positive, c.y, c.x) for c in clicks] == [
            (c.is_positive, *c.coords) for c in ref_clicks
        ]
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
        ours_all.append(ours)
        ref_all.append(ref)
    thrs = [0.8, 0.85, 0.9]
    res = noc(ours_all, thrs)
    ref_noc, ref_over = ritm_compute_noc_metric(ref_all, thrs, max_clicks=20)
    for t, n, o in zip(thrs, ref_noc, ref_over, strict=True):
        assert res[f"NoC@{t:g}"] == pytest.approx(n, abs=1e-12)
        assert res[f"NoF@{t:g}"] == o
    for k in (1, 2, 3, 5, 10, 20):
        assert res[f"mIoU@{k}"] == pytest.approx(np.mean([r[k - 1] for r in ref_all]), abs=1e-12)


def test_stop_iou_and_ragged_noc_like_ritm():
    rng = np.random.default_rng(5)
    h, w = 30, 30
    gts = [_gt(rng, h, w) for _ in range(5)]
    ious = []
    for gt in gts:
        fn, ritm_fn = disc_predictor(h, w, 4)
        a = run_clicks(fn, gt, max_clicks=20, stop_iou=0.85)
        _, b = ritm_evaluate_sample(gt.astype(np.int64), ritm_fn, max_iou_thr=0.85, dt="exact")
        np.testing.assert_allclose(a, b, atol=1e-12)
        ious.append(a)
    ref_noc, ref_over = ritm_compute_noc_metric(ious, [0.85], 20)
    res = noc(ious, [0.85])
    assert res["NoC@0.85"] == pytest.approx(ref_noc[0]) and res["NoF@0.85"] == ref_over[0]


def test_noc_semantics_by_hand():
    ious = np.array(
        [
            [0.5, 0.79, 0.81, 0.9] + [0.9] * 16,  # NoC@0.8 = 3, NoC@0.9 = 4
            [0.1] * 19 + [0.95],  # reaches everything at the last click
            [0.2] * 20,  # never
        ]
    )
    r = noc(ious)
    assert r["NoC@0.8"] == pytest.approx((3 + 20 + 20) / 3)
    assert r["NoF@0.8"] == 2  # RITM counts NoC == max_clicks, the last-click success too
    assert r["NoF_never@0.8"] == 1
    assert r["mIoU@1"] == pytest.approx((0.5 + 0.1 + 0.2) / 3)
    assert r["mIoU@20"] == pytest.approx((0.9 + 0.95 + 0.2) / 3)
    assert r["n_instances"] == 3


def test_noc_errors():
    with pytest.raises(ValueError, match="no instances"):
        noc([])
    with pytest.raises(ValueError, match="max_clicks"):
        noc([[0.5] * 21])
    with pytest.raises(ValueError, match="NaN|\\[0, 1\\]"):
        noc([[0.5, np.nan]])
    with pytest.raises(ValueError, match="no IoU"):
        noc([[0.5], []])


def test_run_clicks_prediction_checks():
    gt = np.zeros((10, 10), bool)
    gt[3:7, 3:7] = True

    def bad_shape(points, labels, prev):
        return np.zeros((5, 5), bool), None

    def logits(points, labels, prev):
        return np.full((10, 10), 3.0), None

    def probs(points, labels, prev):
        return gt * 0.9 + 0.05, prev

    with pytest.raises(ValueError, match="shape"):
        run_clicks(bad_shape, gt, 3)
    with pytest.raises(ValueError, match="logits"):
        run_clicks(logits, gt, 3)
    np.testing.assert_array_equal(run_clicks(probs, gt, 3), [1.0, 1.0, 1.0])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.floats(0, 1), min_size=20, max_size=20), min_size=1, max_size=6),
    st.floats(0.05, 0.95),
)
def test_noc_properties(rows, t):
    r = noc(rows, thresholds=(t, min(t + 0.05, 1.0)))
    lo, hi = r[f"NoC@{t:g}"], r[f"NoC@{min(t + 0.05, 1.0):g}"]
    assert 1 <= lo <= 20 and lo <= hi  # a stricter target never needs fewer clicks
    ref, over = ritm_compute_noc_metric([np.array(x) for x in rows], [t], 20)
    assert lo == pytest.approx(ref[0]) and r[f"NoF@{t:g}"] == over[0]


def test_candidate_selection_by_hand():
    ious = [[0.2, 0.9, 0.5], [0.8, 0.1, 0.3], [0.6, 0.6, 0.0]]
    scores = [[0.9, 0.8, 0.1], [0.7, 0.2, 0.9], [0.1, 0.5, 0.5]]  # row 3: a tie, first kept
    r = candidate_selection(ious, scores)
    assert r["confident_mIoU"] == pytest.approx((0.2 + 0.3 + 0.6) / 3)
    assert r["oracle_mIoU"] == pytest.approx((0.9 + 0.8 + 0.6) / 3)
    assert r["selection_loss"] == pytest.approx((0.7 + 0.5 + 0.0) / 3)
    np.testing.assert_allclose(r["candidate_mIoU"], [1.6 / 3, 1.6 / 3, 0.8 / 3])
    np.testing.assert_allclose(r["picked_share"], [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(r["best_share"], [2 / 3, 1 / 3, 0])  # row 3: IoU tie, first
    assert r["score_mae"] == pytest.approx(np.abs(np.subtract(scores, ious)).mean())
    assert r["n_instances"] == 3
    one = candidate_selection([[0.4], [0.6]], [[0.0], [1.0]])  # one candidate: no choice
    assert one["confident_mIoU"] == one["oracle_mIoU"] == pytest.approx(0.5)
    assert one["selection_loss"] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_candidate_selection_properties(n, c, seed):
    rng = np.random.default_rng(seed)
    ious = rng.random((n, c)).round(2)  # rounding makes ties
    scores = rng.random((n, c)).round(1)
    r = candidate_selection(ious, scores)
    # the loop a reader would write, per prompt
    kept = [row[int(np.argmax(s))] for row, s in zip(ious, scores, strict=True)]
    assert r["confident_mIoU"] == pytest.approx(np.mean(kept))
    assert r["oracle_mIoU"] == pytest.approx(np.mean([max(row) for row in ious]))
    assert r["selection_loss"] >= 0
    assert r["oracle_mIoU"] >= r["candidate_mIoU"].max() - 1e-12
    assert r["picked_share"].sum() == pytest.approx(1) and r["best_share"].sum() == pytest.approx(1)
    # scores that are the IoUs choose as the oracle does
    exact = candidate_selection(ious, ious)
    assert exact["selection_loss"] == pytest.approx(0) and exact["score_mae"] == 0
    # the order of the candidates does not matter, as long as scores move with them
    perm = rng.permutation(c)
    moved = candidate_selection(ious[:, perm], scores[:, perm])
    assert moved["oracle_mIoU"] == pytest.approx(r["oracle_mIoU"])
    np.testing.assert_allclose(moved["candidate_mIoU"], r["candidate_mIoU"][perm])
    top2 = np.sort(scores, 1)[:, -2:]
    if c == 1 or (top2[:, 1] > top2[:, 0]).all():  # without tied top scores, the same choice
        assert moved["confident_mIoU"] == pytest.approx(r["confident_mIoU"])


@pytest.mark.parametrize(
    ("ious", "scores", "match"),
    [
        ([0.5, 0.6], [0.5, 0.6], r"\(N, C\)"),
        (np.zeros((0, 3)), np.zeros((0, 3)), r"\(N, C\)"),
        ([[0.5, 0.6]], [[0.5]], "same shape"),
        ([[1.5, 0.6]], [[0.5, 0.5]], r"\[0, 1\]"),
        ([[np.nan, 0.6]], [[0.5, 0.5]], "NaN"),
        ([[0.5, 0.6]], [[np.nan, 0.5]], "NaN"),
    ],
)
def test_candidate_selection_refuses(ious, scores, match):
    with pytest.raises(ValueError, match=match):
        candidate_selection(ious, scores)
