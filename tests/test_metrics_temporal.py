"""Temporal metrics: per-frame J/F, DAVIS decay and motion-compensated stability."""

from __future__ import annotations

import numpy as np
import pytest

from samgap_lib.metrics import (
    boundary_f1,
    consecutive_iou,
    davis_statistics,
    decay,
    iou,
    per_frame_jf,
    temporal_stability,
    track_scores,
)
from samgap_lib.metrics.reference import davis_f_measure
from samgap_lib.metrics.reference import davis_statistics as ref_stats


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 13, 50, 200])
def test_statistics_match_davis(n):
    rng = np.random.default_rng(n)
    v = rng.random(n)
    if n > 3:
        v[1] = np.nan
    m, o, d = ref_stats(v)
    ours = davis_statistics(v)
    assert ours["mean"] == pytest.approx(m, abs=1e-12)
    assert ours["recall"] == pytest.approx(o, abs=1e-12)
    assert ours["decay"] == pytest.approx(d, abs=1e-12)
    assert decay(v) == ours["decay"]


def test_decay_by_hand():
    assert decay([1.0, 1.0, 0.5, 0.0, 0.0]) == pytest.approx(1.0)  # bins [0,1],[1,2],[2,3],[3,4]
    assert decay(np.ones(10)) == 0.0
    with pytest.raises(ValueError, match="no frames"):
        decay([])


def _track(n=6, h=48, w=64, pan=4):
    """A static disc in a wide scene, seen through a panning, shaking window (like
    samgap_lib.data.synthetic_orchard_video, built here so the test does not depend on it)."""
    scene_h, scene_w = h + 4, w + pan * (n - 1)
    yy, xx = np.mgrid[0:scene_h, 0:scene_w]
    disc = (yy - 25) ** 2 + (xx - 45) ** 2 <= 9**2
    offsets = np.array([[t * pan, [0, 2, 1, 3, 2, 0][t % 6]] for t in range(n)])
    gt = np.stack([disc[y : y + h, x : x + w] for x, y in offsets])
    return gt, offsets


def test_per_frame_jf_and_track_scores():
    gt, _ = _track()
    pred = gt.copy()
    pred[3:] = np.roll(gt[3:], 2, axis=2)  # the track drifts in the second half
    j, f = per_frame_jf(pred, gt)
    np.testing.assert_allclose(j, [iou(p, g) for p, g in zip(pred, gt, strict=True)], atol=0)
    np.testing.assert_allclose(
        f,
        [davis_f_measure(p, g, 0.008, "numpy") for p, g in zip(pred, gt, strict=True)],
        atol=1e-12,
    )
    s = track_scores(pred, gt)
    assert s["J_decay"] > 0 and s["JF_mean"] == pytest.approx((s["J_mean"] + s["F_mean"]) / 2)
    assert s["F_mean"] == pytest.approx(np.mean(f))
    perfect = track_scores(gt, gt)
    assert perfect["J_mean"] == perfect["F_mean"] == 1.0 and perfect["JF_decay"] == 0.0
    with pytest.raises(ValueError, match="T, H, W|frames"):
        per_frame_jf(gt[0], gt[0])
    assert boundary_f1(gt, gt).shape == (len(gt),)


def test_temporal_stability_compensates_camera():
    gt, offsets = _track()
    # the object is static in the scene: the ground truth is perfectly stable once compensated
    # (up to visibility changes at the frame edge, which the shared-view crop removes)
    assert temporal_stability(gt, offsets) == pytest.approx(1.0)
    assert temporal_stability(gt) < 1.0  # without compensation, the camera pan looks unstable
    jitter = gt.copy()
    jitter[::2] = np.roll(gt[::2], 3, axis=1)
    assert temporal_stability(jitter, offsets) < 0.95
    v = consecutive_iou(gt, offsets)
    assert v.shape == (len(gt) - 1,)
    far = np.array([[0, 0], [1000, 0]] * 3)
    assert np.isnan(consecutive_iou(gt, far)).all() and np.isnan(temporal_stability(gt, far))
    with pytest.raises(ValueError, match="offsets"):
        temporal_stability(gt, offsets[:2])
    with pytest.raises(ValueError, match="T >= 2"):
        temporal_stability(gt[:1])
