"""HOTA and IDF1 (TrackEval) on hand-made sequences whose answers follow from the definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samgap_lib.metrics.tracking import combine_mot_scores, mot_data, mot_scores

H = W = 12


def box(x: int, y: int = 2, w: int = 3, h: int = 3) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y : y + h, x : x + w] = True
    return m


A, B = box(0), box(6)


def test_perfect_tracks_score_one():
    gt = [{1: A, 2: B}] * 4
    s = mot_scores(gt, gt)
    for k in ("HOTA", "DetA", "AssA", "LocA", "IDF1", "IDR", "IDP"):
        assert s[k] == pytest.approx(1.0)
    assert (s["IDTP"], s["IDFN"], s["IDFP"]) == (8, 0, 0)


def test_identity_swap_halves_idf1_and_leaves_detection_perfect():
    """Two objects, four frames, the predicted ids swap at frame 2 (masks exact).

    Every detection is right (DetA 1). Each predicted id covers its object for 2 of the 4 frames
    and the other object for 2: AssA = 2 / (4 + 4 - 2) = 1/3, HOTA = sqrt(1/3). The best one-to-one
    id mapping keeps 4 of 8 object-frames: IDF1 = 0.5.
    """
    gt = [{"a": A, "b": B}] * 4
    pred = [{1: A, 2: B}] * 2 + [{1: B, 2: A}] * 2
    s = mot_scores(gt, pred)
    assert s["DetA"] == pytest.approx(1.0)
    assert s["AssA"] == pytest.approx(1 / 3)
    assert s["HOTA"] == pytest.approx(math.sqrt(1 / 3))
    assert (s["IDTP"], s["IDFN"], s["IDFP"]) == (4, 4, 4)
    assert s["IDF1"] == pytest.approx(0.5)


def test_object_entering_late_and_never_tracked():
    """A is in all 4 frames, B enters at frame 2; the prediction has A only.

    DetA = 4 / (4 + 2) = 2/3, AssA = 1, HOTA = sqrt(2/3); IDR = 4/6, IDP = 1, IDF1 = 4 / (4 + 1).
    """
    gt = [{1: A}, {1: A}, {1: A, 2: B}, {1: A, 2: B}]
    pred = [{7: A}] * 4
    s = mot_scores(gt, pred)
    assert s["DetA"] == pytest.approx(2 / 3)
    assert s["AssA"] == pytest.approx(1.0)
    assert s["HOTA"] == pytest.approx(math.sqrt(2 / 3))
    assert s["IDR"] == pytest.approx(4 / 6) and s["IDP"] == pytest.approx(1.0)
    assert s["IDF1"] == pytest.approx(0.8)


def test_object_that_leaves_but_is_still_predicted_is_a_false_positive():
    """B leaves after frame 1, the prediction keeps it on frames 2-3: 2 false positives.

    DetA = 6 / (6 + 0 + 2); B's predicted id covers 4 frames of which 2 match: AssA over the 6
    true positives = (4 * 1 + 2 * 2/4) / 6 = 5/6.
    """
    gt = [{1: A, 2: B}] * 2 + [{1: A}] * 2
    pred = [{1: A, 2: B}] * 4
    s = mot_scores(gt, pred)
    assert s["DetA"] == pytest.approx(6 / 8)
    assert s["AssA"] == pytest.approx(5 / 6)
    assert s["HOTA"] == pytest.approx(math.sqrt(6 / 8 * 5 / 6))
    assert (s["IDTP"], s["IDFN"], s["IDFP"]) == (6, 0, 2)


def test_hota_averages_over_localisation_thresholds():
    """Every match has IoU 2/3: it counts at the 13 thresholds 0.05 ... 0.65 of HOTA's 19, so
    HOTA = DetA = AssA = 13/19; IDF1 (IoU >= 0.5) is 1."""
    gt_mask, pred_mask = box(0, w=3), box(0, w=2)  # IoU = 6/9 = 2/3
    assert (gt_mask & pred_mask).sum() / (gt_mask | pred_mask).sum() == pytest.approx(2 / 3)
    s = mot_scores([{1: gt_mask}] * 3, [{1: pred_mask}] * 3)
    assert s["HOTA"] == pytest.approx(13 / 19)
    assert s["DetA"] == pytest.approx(13 / 19)
    assert s["IDF1"] == pytest.approx(1.0)


def test_empty_prediction_and_empty_ground_truth():
    gt = [{1: A}] * 3
    none = [{}] * 3
    s = mot_scores(gt, none)
    assert s["HOTA"] == 0.0 and s["IDF1"] == 0.0 and s["IDFN"] == 3
    s = mot_scores(none, gt)
    assert s["HOTA"] == 0.0 and s["IDFP"] == 3


def test_empty_masks_count_as_absent():
    empty = np.zeros((H, W), dtype=bool)
    s = mot_scores([{1: A, 2: empty}] * 2, [{1: A}] * 2)
    assert s["HOTA"] == pytest.approx(1.0)


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="3 frames and the prediction 2"):
        mot_data([{}] * 3, [{}] * 2)
    with pytest.raises(ValueError, match="resize the predictions"):
        mot_data([{1: A}], [{1: np.ones((4, 4), bool)}])


def test_combined_sequences_pool_counts():
    """Two sequences pooled as TrackEval pools them: the ID counts add up."""
    gt = [{"a": A, "b": B}] * 4
    swap = [{1: A, 2: B}] * 2 + [{1: B, 2: A}] * 2
    perfect = mot_scores(gt, gt)
    swapped = mot_scores(gt, swap)
    both = combine_mot_scores([perfect, swapped])
    assert (both["IDTP"], both["IDFN"], both["IDFP"]) == (12, 4, 4)
    assert both["IDF1"] == pytest.approx(12 / 16)
    assert both["DetA"] == pytest.approx(1.0)
    # AssA pooled over true positives: (8 * 1 + 8 * 1/3) / 16
    assert both["AssA"] == pytest.approx((8 + 8 / 3) / 16)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=1, max_size=5),
    st.permutations([10, 20, 30]),
)
def test_scores_do_not_depend_on_the_names_of_ids(present, names):
    """Renaming predicted ids changes nothing; the ground truth scored against itself is perfect."""
    masks = [box(0), box(4), box(8)]
    gt = [{k: masks[k] for k in range(3) if row[k]} for row in present]
    renamed = [{names[k]: m for k, m in frame.items()} for frame in gt]
    a, b = mot_scores(gt, gt), mot_scores(gt, renamed)
    for k in ("HOTA", "DetA", "AssA", "IDF1"):
        assert a[k] == pytest.approx(b[k])
    if any(any(r) for r in present):
        assert a["HOTA"] == pytest.approx(1.0) and a["IDF1"] == pytest.approx(1.0)


def test_identity_perturbations_are_seen_by_association_not_detection():
    """Built from ground-truth tracks: a swap and a restart leave every mask in place (DetA 1)
    and cost association; a restart from frame 2 of 4 halves every identity: AssA 1/2, IDF1 1/2."""
    from samgap_lib.studies.perturb import frames_of_tracks, restart_identities, swap_identities

    tracks = {
        1: np.stack([A] * 4),
        2: np.stack([B] * 4),
        3: np.stack([A & False] * 2 + [box(3, y=8)] * 2),
    }
    gt = frames_of_tracks(tracks)
    assert [sorted(f) for f in gt] == [[1, 2], [1, 2], [1, 2, 3], [1, 2, 3]]
    swapped = mot_scores(gt, swap_identities(gt, 1, 2, from_frame=2))
    assert swapped["DetA"] == pytest.approx(1.0) and swapped["AssA"] < 1.0
    assert swapped["IDF1"] == pytest.approx((2 + 2 + 2) / 10)  # object 3 keeps its id
    restarted = mot_scores(gt, restart_identities(gt, from_frame=2))
    assert restarted["DetA"] == pytest.approx(1.0)
    # objects 1, 2: matched pairs cover 2 of their 4 frames (A = 2/4) on 8 TPs; object 3 is born
    # after frame 2 and keeps one identity (A = 1) on 2 TPs
    assert restarted["AssA"] == pytest.approx((8 * 0.5 + 2 * 1.0) / 10)
    assert restarted["IDF1"] == pytest.approx((2 + 2 + 2) / 10)
    with pytest.raises(ValueError, match="one length T"):
        frames_of_tracks({1: np.stack([A] * 2), 2: np.stack([A] * 3)})
