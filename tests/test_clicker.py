"""The Clicker against a literal port of RITM's clicker (samgap_lib.metrics.reference)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from samgap_lib.metrics.reference import RITMClicker
from samgap_lib.prompts import Clicker, most_interior_point, padded_distance


def _blob(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(-2, h + 2), rng.uniform(-2, w + 2)
    ry, rx = rng.uniform(1, h / 2), rng.uniform(1, w / 2)
    m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    if rng.random() < 0.3:
        m |= rng.random((h, w)) < 0.03
    if not m.any():
        m[int(rng.integers(h)), int(rng.integers(w))] = True
    return m


@pytest.mark.parametrize("seed", range(30))
def test_clicks_match_ritm_on_random_predictions(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(5, 40)), int(rng.integers(5, 40))
    gt = _blob(rng, h, w)
    ours, ref = Clicker(gt), RITMClicker(gt.astype(np.int64), dt="exact")
    pred = None
    for _ in range(12):
        c = ours.next_click(pred)
        ref.make_next_click(np.zeros_like(gt) if pred is None else pred)
        r = ref.clicks_list[-1]
        assert (c.is_positive, c.y, c.x) == (r.is_positive, r.coords[0], r.coords[1])
        kind = rng.integers(4)  # next prediction: random blob, gt, gt with errors, empty
        pred = [_blob(rng, h, w), gt.copy(), gt ^ (rng.random((h, w)) < 0.1), np.zeros_like(gt)][
            kind
        ]


@pytest.mark.parametrize("seed", range(6))
def test_clicks_agree_with_literal_cv2_ritm_up_to_float32_noise(seed):
    """Literal RITM (cv2 float32 distances) picks, among equally distant pixels, whichever cv2's
    rounding noise favours. Our click must be the same or equally far (within float32 noise)."""
    rng = np.random.default_rng(100 + seed)
    h, w = 120, 90
    gt = _blob(rng, h, w) | _blob(rng, h, w)
    same = 0
    for _ in range(8):
        pred = _blob(rng, h, w) if rng.random() < 0.5 else gt ^ (rng.random((h, w)) < 0.05)
        ours, ref = Clicker(gt), RITMClicker(gt.astype(np.int64), dt="cv2")
        c = ours.next_click(pred)
        ref.make_next_click(pred)
        r = ref.clicks_list[-1]
        if (c.is_positive, c.y, c.x) == (r.is_positive, *r.coords):
            same += 1
            continue
        region = (gt & ~pred) if r.is_positive else (~gt & pred)
        d = cv2.distanceTransform(np.pad(region, 1).astype(np.uint8), cv2.DIST_L2, 0)[1:-1, 1:-1]
        d_ours = padded_distance((gt & ~pred) if c.is_positive else (~gt & pred))
        assert d_ours[c.y, c.x] == pytest.approx(float(d.max()), rel=1e-6)
    assert same >= 4


def test_first_click_is_most_interior_point_and_ties_row_major():
    gt = np.zeros((7, 9), bool)
    gt[1:5, 1:7] = True  # 4x6 rectangle: the maximum (2.0) is reached on a whole segment
    c = Clicker(gt).next_click()
    ys, xs = np.nonzero(gt)
    assert c.is_positive and (c.y, c.x) == (2, 2)  # first maximum in row-major order
    np.testing.assert_array_equal(most_interior_point(gt), [2.0, 2.0])


def test_perfect_prediction_gives_ritm_degenerate_click():
    gt = np.zeros((6, 6), bool)
    gt[2:4, 2:4] = True
    ours, ref = Clicker(gt), RITMClicker(gt.astype(np.int64), dt="exact")
    c = ours.next_click(gt)
    ref.make_next_click(gt)
    assert (c.is_positive, c.y, c.x) == (False, 0, 0)
    assert ref.clicks_list[-1].coords == (0, 0) and not ref.clicks_list[-1].is_positive


def test_clicked_pixels_are_not_clicked_again():
    gt = np.zeros((3, 3), bool)
    gt[1, 1] = True
    ck = Clicker(gt)
    assert (ck.next_click().y, ck.clicks[0].x) == (1, 1)
    c2 = ck.next_click(np.zeros_like(gt))  # the only FN pixel is already clicked
    assert (c2.is_positive, c2.y, c2.x) == (False, 0, 0)


def test_points_and_labels_and_errors():
    gt = np.zeros((8, 8), bool)
    gt[2:6, 2:6] = True
    ck = Clicker(gt)
    ck.next_click()
    pred = np.ones_like(gt)
    ck.next_click(pred)
    pts, labels = ck.points_and_labels()
    assert pts.shape == (2, 2) and labels.tolist() == [1, 0]
    assert pts[0].tolist() == [ck.clicks[0].x, ck.clicks[0].y]
    with pytest.raises(ValueError, match="empty"):
        Clicker(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="shape|match"):
        ck.next_click(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="0 and 1"):
        ck.next_click(np.full((8, 8), 0.3))
