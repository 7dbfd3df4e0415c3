"""SAM3 post-processing: masks cut to their boxes, and the checkpoint flag that asks for it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from samgap_lib.models.postprocess import (
    clip_masks_to_boxes,
    mask_nms,
    postprocess_prediction,
    select_instances,
)
from samgap_lib.prompts import boxes_from_masks


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 4),
    h=st.integers(4, 40),
    w=st.integers(4, 40),
)
def test_clip_keeps_exactly_the_pixels_the_box_touches(seed, n, h, w):
    rng = np.random.default_rng(seed)
    masks = rng.random((n, h, w)) < 0.3
    x = np.sort(rng.uniform(-3, w + 3, (n, 2)), axis=1)
    y = np.sort(rng.uniform(-3, h + 3, (n, 2)), axis=1)
    boxes = np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1)
    out = clip_masks_to_boxes(masks, boxes)
    assert out.shape == masks.shape and out.dtype == bool
    assert not (out & ~masks).any()  # never adds a pixel
    for k in range(n):
        for yy in range(h):
            for xx in range(w):
                touches = xx + 1 > boxes[k, 0] and xx < boxes[k, 2]
                touches &= yy + 1 > boxes[k, 1] and yy < boxes[k, 3]
                assert out[k, yy, xx] == (masks[k, yy, xx] and touches)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shrink=st.floats(0.0, 0.49))
def test_a_box_round_its_mask_keeps_the_mask(seed, shrink):
    rng = np.random.default_rng(seed)
    masks = rng.random((3, 20, 30)) < 0.2
    masks[:, 5, 7] = True  # never empty
    boxes = boxes_from_masks(masks).astype(np.float64)
    boxes += np.array([shrink, shrink, -shrink, -shrink])  # a box a little inside still touches
    np.testing.assert_array_equal(clip_masks_to_boxes(masks, boxes), masks)


def test_clip_removes_a_leak_onto_another_apple():
    m = np.zeros((1, 10, 10), bool)
    m[0, 1:4, 1:4] = True  # the apple
    m[0, 7:9, 7:9] = True  # leaked onto another one
    out = clip_masks_to_boxes(m, np.array([[1.0, 1.0, 4.0, 4.0]]))
    assert out.sum() == 9 and out[0, 1:4, 1:4].all()


def test_clip_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(N, H, W\) and boxes \(N, 4\)"):
        clip_masks_to_boxes(np.zeros((2, 5, 5), bool), np.zeros((3, 4)))


def test_select_instances_with_mask_in_box_clips_each_mask():
    torch.manual_seed(0)
    q, h, w = 5, 8, 8
    logits = torch.tensor([3.0, -3.0, 2.0, 1.0, -1.0])
    boxes = torch.tensor([[0.1, 0.1, 0.5, 0.5], [0, 0, 1, 1], [0.5, 0.5, 0.9, 0.9]] * 2)[:q]
    mask_logits = torch.randn(q, h, w) + 0.5
    args = ("apple", logits, None, boxes, mask_logits, (32, 48), 0.5)
    plain = select_instances(*args)
    cut = select_instances(*args, mask_in_box=True)
    assert len(plain.scores) == 3
    np.testing.assert_array_equal(cut.boxes, plain.boxes)
    np.testing.assert_array_equal(cut.masks, clip_masks_to_boxes(plain.masks, plain.boxes))
    assert cut.masks.sum() < plain.masks.sum()


def _naive_nms(masks, scores, t):
    order = sorted(range(len(masks)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        ok = True
        for j in keep:
            inter = (masks[i] & masks[j]).sum()
            union = (masks[i] | masks[j]).sum()
            if union and inter / union >= t:
                ok = False
        if ok:
            keep.append(i)
    return sorted(keep)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 7), t=st.floats(0.05, 1.0))
def test_mask_nms_matches_the_greedy_definition(seed, n, t):
    rng = np.random.default_rng(seed)
    base = rng.random((3, 12, 12)) < 0.4
    # near-copies of a few masks, so duplicates occur
    noise = rng.random((n, 12, 12)) < 0.1
    masks = base[rng.integers(3, size=n)] ^ noise
    scores = rng.permutation(n).astype(np.float32) / max(n, 1)  # distinct scores
    keep = mask_nms(masks, scores, t)
    assert keep.tolist() == _naive_nms(masks, scores, t)
    kept = masks[keep]
    for a in range(len(kept)):  # what stays never overlaps at the threshold
        for b in range(a + 1, len(kept)):
            union = (kept[a] | kept[b]).sum()
            assert not union or (kept[a] & kept[b]).sum() / union < t


def test_mask_nms_keeps_the_higher_score_and_disjoint_masks():
    m = np.zeros((3, 6, 6), bool)
    m[0, :3, :3] = m[1, :3, :3] = True
    m[1, 3, 0] = True  # IoU 9/10 with mask 0
    m[2, 4:, 4:] = True
    assert mask_nms(m, np.array([0.6, 0.9, 0.1]), 0.5).tolist() == [1, 2]
    assert mask_nms(m, np.array([0.6, 0.9, 0.1]), 0.95).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"iou_threshold must be in \(0, 1\]"):
        mask_nms(m, np.ones(3), 0.0)
    with pytest.raises(ValueError, match=r"scores \(N,\)"):
        mask_nms(m, np.ones(2), 0.5)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    q=st.integers(1, 8),
    mask_in_box=st.booleans(),
    nms_iou=st.sampled_from([None, 0.3, 0.5, 0.9]),
)
def test_post_processing_a_plain_prediction_equals_selecting_with_it(seed, q, mask_in_box, nms_iou):
    """`postprocess_prediction` applied afterwards gives what `select_instances` gives with the
    same post-processing on (so one model pass serves both, as the orchard-tiny card does)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(q, generator=g) * 3
    xy = torch.rand(q, 2, generator=g) * 0.6
    boxes = torch.cat([xy, xy + 0.1 + torch.rand(q, 2, generator=g) * 0.3], 1)
    base = torch.randn(2, 6, 6, generator=g)  # queries share a few masks: duplicates occur
    mask_logits = base[torch.randint(2, (q,), generator=g)] + 0.3 * torch.randn(
        q, 6, 6, generator=g
    )
    presence = torch.randn((), generator=g) + 2
    args = ("apple", logits, presence, boxes, mask_logits, (30, 40), 0.3)
    plain = select_instances(*args)
    on = select_instances(*args, mask_in_box=mask_in_box, nms_iou=nms_iou)
    after = postprocess_prediction(plain, mask_in_box, nms_iou)
    for field in ("masks", "boxes", "scores"):
        np.testing.assert_array_equal(getattr(after, field), getattr(on, field))
    assert (after.phrase, after.presence) == (on.phrase, on.presence)
    if not mask_in_box and nms_iou is None:
        assert after is plain
