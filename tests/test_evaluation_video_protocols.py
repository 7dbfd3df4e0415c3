"""The two video protocols with oracle masks, on hand-made sequences whose answers are known,
and on the synthetic orchard video."""

from __future__ import annotations

import math

import numpy as np
import pytest

from samgap_lib.data import synthetic_orchard_video
from samgap_lib.evaluation import (
    KeepAlive,
    appearances,
    associate,
    detect_then_track,
    ground_truth_tracks,
    sam2_effort_curve,
    sam2_oracle,
    sam3_oracle,
    video_coverage,
)
from samgap_lib.metrics import mot_scores

H = W = 16


def box(x: int, y: int = 2, w: int = 3, h: int = 3) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y : y + h, x : x + w] = True
    return m


A, B, C = box(0), box(6), box(11)
# A stays for 4 frames, B enters at frame 2, C leaves after frame 1.
STAGE = [{1: A, 3: C}, {1: A, 3: C}, {1: A, 2: B}, {1: A, 2: B}]


def test_sam2_prompts_what_it_sees_and_misses_what_enters():
    """Prompts on frame 0: A and C (2 prompts). B (2 of 8 object-frames) is never segmented:
    coverage 6/8; DetA 6/8, AssA 1, HOTA sqrt(3/4); IDF1 = 6 / (6 + 2/2)."""
    out = sam2_oracle(STAGE)
    assert out.prompts == 2
    assert out.coverage == pytest.approx(6 / 8)
    assert out.scores["DetA"] == pytest.approx(6 / 8)
    assert out.scores["AssA"] == pytest.approx(1.0)
    assert out.scores["HOTA"] == pytest.approx(math.sqrt(6 / 8))
    assert out.scores["IDF1"] == pytest.approx(6 / 7)
    assert 2 not in out.tracks[2] and set(out.tracks[1]) == {1, 3}


def test_one_more_prompt_when_the_object_enters_buys_it():
    out = sam2_oracle(STAGE, extra_prompts=1)
    assert out.prompts == 3 and out.coverage == pytest.approx(1.0)
    assert out.scores["HOTA"] == pytest.approx(1.0) and out.scores["IDF1"] == pytest.approx(1.0)
    # B is segmented from the frame it enters on
    assert np.array_equal(out.tracks[2][2], B)


def test_effort_curve_spends_prompts_on_the_largest_gain_first():
    """Two late objects: D enters at frame 1 (3 frames), B at frame 2 (2 frames). The curve buys
    D first: coverage 4/9 -> 7/9 -> 9/9 for 1, 2, 3 prompts."""
    D = box(3, y=9)
    gt = [{1: A}, {1: A, 4: D}, {1: A, 2: B, 4: D}, {1: A, 2: B, 4: D}]
    curve = sam2_effort_curve(gt)
    assert [o.prompts for o in curve] == [1, 2, 3]
    assert [o.coverage for o in curve] == pytest.approx([4 / 9, 7 / 9, 1.0])
    assert [o.scores["DetA"] for o in curve] == pytest.approx([4 / 9, 7 / 9, 1.0])


def test_prompting_a_later_frame_propagates_forward_only():
    """Prompted on frame 2: C (gone by then) is out of reach, A and B are prompted there, and
    frames 0-1 of A are not segmented (forward propagation)."""
    out = sam2_oracle(STAGE, prompt_frame=2)
    assert out.prompts == 2
    assert out.coverage == pytest.approx(4 / 8)
    with pytest.raises(ValueError, match="between 0 and 0"):
        sam2_oracle(STAGE, prompt_frame=2, extra_prompts=1)
    with pytest.raises(ValueError, match="outside the video's 4 frames"):
        sam2_oracle(STAGE, prompt_frame=4)


def test_sam3_one_phrase_covers_every_object_with_stable_ids():
    """Perfect detector and tracker: one prompt, coverage 1, HOTA 1, IDF1 1, including an object
    hidden on frame 1 that comes back on frame 2 (the masklet survives the gap)."""
    gap = [{1: A, 3: C}, {1: A}, {1: A, 2: B, 3: C}, {1: A, 2: B, 3: C}]
    for gt in (STAGE, gap):
        out = sam3_oracle(gt)
        assert out.prompts == 1
        assert out.coverage == pytest.approx(1.0)
        assert out.scores["HOTA"] == pytest.approx(1.0)
        assert out.scores["IDF1"] == pytest.approx(1.0)
    out = sam3_oracle(gap)
    assert len(appearances(out.tracks)) == 3  # three identities, not four


def test_associate_matches_by_iou_and_starts_the_rest():
    moved = box(1)  # A moved by one column: IoU with A = 6/12
    matches, new = associate({5: moved, 9: box(6, y=10)}, [A, B], iou_threshold=0.1)
    assert matches == {0: 5} and new == [1]
    # below the threshold nothing matches
    matches, new = associate({5: moved}, [A], iou_threshold=0.6)
    assert matches == {} and new == [0]
    # an empty propagated mask takes no part
    matches, new = associate({5: np.zeros((H, W), bool)}, [A])
    assert matches == {} and new == [0]


def test_detect_then_track_swaps_identity_when_the_tracker_swaps():
    """A tracker that hands each masklet the other object's mask on frame 2 swaps the ids: the
    identity metrics see it (DetA 1, AssA 1/3, IDF1 0.5), coverage by identity halves."""
    gt = [{"a": A, "b": B}] * 4
    dets = [[A, B]] * 4

    def swapping(k, mask, t):
        if t == 2:
            return B if np.array_equal(mask, A) else A
        return mask

    pred = detect_then_track(dets, swapping)
    assert [sorted(f) for f in pred] == [[1, 2]] * 4
    assert np.array_equal(pred[1][1], A) and np.array_equal(pred[2][1], B)
    scores = mot_scores(gt, pred)
    assert scores["DetA"] == pytest.approx(1.0)  # every mask is right
    assert scores["AssA"] == pytest.approx(1 / 3)  # 2 of 4 frames per identity: 2 / (4 + 4 - 2)
    assert scores["HOTA"] == pytest.approx(math.sqrt(1 / 3))
    assert scores["IDF1"] == pytest.approx(0.5)
    assert video_coverage(gt, pred) == pytest.approx(0.5)


def test_keep_alive_suppresses_a_masklet_left_unmatched():
    """A stationary tracker keeps C's masklet after C leaves; with keep-alive 2 it is shown for
    one more unmatched frame, then suppressed (count 2 -> 1 -> 0)."""
    dets = [[A, C], [A], [A], [A]]
    pred = detect_then_track(dets, lambda k, m, t: m, keep_alive=KeepAlive(2, 2, -1))
    assert [sorted(f) for f in pred] == [[1, 2], [1, 2], [1], [1]]


def test_orchard_video_oracles():
    """On the panning orchard, apples enter and leave: SAM 2's frame-0 prompts miss the apples
    that enter, its effort curve reaches full coverage only with one prompt per late apple, and
    SAM 3's single phrase covers everything."""
    frames = synthetic_orchard_video(n_frames=6, seed=3, size=(96, 96), pan=12)
    gt = ground_truth_tracks(frames)
    seen = appearances(gt)
    on_first = [k for k, ts in seen.items() if 0 in ts]
    late = [k for k, ts in seen.items() if 0 not in ts]
    assert late, "the pan brings new apples in"
    curve = sam2_effort_curve(gt)
    assert curve[0].prompts == len(on_first)
    assert curve[-1].prompts == len(seen) and curve[-1].coverage == pytest.approx(1.0)
    cov = [o.coverage for o in curve]
    assert all(b > a for a, b in zip(cov, cov[1:], strict=False))
    assert curve[0].coverage < 1.0
    s3 = sam3_oracle(gt)
    assert s3.prompts == 1 and s3.coverage == pytest.approx(1.0)
    assert s3.scores["HOTA"] == pytest.approx(1.0)
    assert set(s3.record()) >= {"protocol", "prompts", "coverage", "HOTA", "DetA", "AssA", "IDF1"}
