"""Geometric prompts and concept phrase sets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from samgap_lib.data import Concept, mask_to_box, synthetic_orchard
from samgap_lib.prompts import (
    ORCHARD_ALL,
    ORCHARD_ATTRIBUTE,
    ORCHARD_NEGATIVE,
    ORCHARD_POSITIVE,
    box_ellipse_masks,
    boxes_from_masks,
    concept_masks,
    denotation_table,
    denoted_instances,
    interior_points,
    jitter_boxes,
    mask_prompts,
    most_interior_point,
    padded_distance,
    phrase_set,
    random_exterior_points,
    random_interior_points,
)


@pytest.fixture(scope="module")
def samples():
    return synthetic_orchard(4, seed=2, size=(96, 128))


def test_most_interior_point_is_max_of_scipy_edt(samples):
    for s in samples:
        for inst in s.instances:
            x, y = most_interior_point(inst.mask)
            edt = ndimage.distance_transform_edt(np.pad(inst.mask, 1))[1:-1, 1:-1]
            assert inst.mask[int(y), int(x)]
            assert edt[int(y), int(x)] == edt.max()
            first = np.argwhere(edt == edt.max())[0]
            assert (int(y), int(x)) == tuple(first)  # row-major tie-breaking
    np.testing.assert_allclose(padded_distance(np.ones((3, 3), bool))[1, 1], 2.0)


def test_interior_points_batched(samples):
    s = samples[0]
    pts, labels = interior_points(s.masks)
    assert pts.shape == (len(s.instances), 2) and labels.tolist() == [1] * len(s.instances)
    with pytest.raises(ValueError, match="empty"):
        interior_points(np.zeros((1, 5, 5), bool))


def test_random_points_seeded_and_inside(samples):
    m = max((i.mask for s in samples for i in s.instances), key=lambda x: x.sum())
    a, la = random_interior_points(m, 5, 0)
    b, _ = random_interior_points(m, 5, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert m[a[:, 1].astype(int), a[:, 0].astype(int)].all() and (la == 1).all()
    assert len({tuple(p) for p in a}) == 5
    c, _ = random_interior_points(m, 3, 1, min_distance=2)
    edt = padded_distance(m)
    assert (edt[c[:, 1].astype(int), c[:, 0].astype(int)] >= 2).all()
    e, le = random_exterior_points(m, 4, 3)
    assert (~m[e[:, 1].astype(int), e[:, 0].astype(int)]).all() and (le == 0).all()
    with pytest.raises(ValueError, match="seed"):
        random_interior_points(m, 1, None)
    with pytest.raises(ValueError, match="only"):
        random_interior_points(m, m.sum() + 1, 0)


def test_boxes_and_jitter(samples):
    s = samples[1]
    boxes = boxes_from_masks(s.masks)
    np.testing.assert_array_equal(boxes, np.stack([mask_to_box(m) for m in s.masks]))
    j1 = boxes_from_masks(s.masks, jitter=0.1, rng=7)
    j2 = boxes_from_masks(s.masks, jitter=0.1, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(j1, j2)
    side = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)[
        :, [0, 1, 2, 3]
    ]
    bound = np.minimum(0.1 * side[:, [0, 1, 0, 1]], 20)
    assert (np.abs(j1 - boxes) <= bound + 1e-9).all()
    assert (j1[:, 2] > j1[:, 0]).all() and (j1[:, 3] > j1[:, 1]).all()
    assert (
        (j1 >= 0).all() and (j1[:, [0, 2]] <= s.width).all() and (j1[:, [1, 3]] <= s.height).all()
    )
    big = jitter_boxes(np.array([[0.0, 0, 128, 96]]), (96, 128), 0, noise=0.5)
    assert (big >= 0).all() and (big[:, 2] <= 128).all()
    with pytest.raises(ValueError, match="seed"):
        boxes_from_masks(s.masks, jitter=0.1)
    with pytest.raises(ValueError, match="N, 4"):
        jitter_boxes(np.zeros(4), (9, 9), 0)


@settings(max_examples=60, deadline=None)
@given(
    x0=st.floats(0, 40),
    y0=st.floats(0, 40),
    bw=st.floats(0.0, 60),
    bh=st.floats(0.0, 60),
)
def test_box_ellipse_masks_inscribed(x0, y0, bw, bh):
    box = np.array([[x0, y0, x0 + bw, y0 + bh]])
    m = box_ellipse_masks(box, (100, 100))[0]  # the whole box lies inside
    ys, xs = np.nonzero(m)
    if bw < 1e-9 or bh < 1e-9:
        assert not m.any()  # a degenerate box gives nothing
        return
    # every pixel centre in the mask lies in the box
    assert (xs + 0.5 >= x0).all() and (xs + 0.5 <= x0 + bw).all()
    assert (ys + 0.5 >= y0).all() and (ys + 0.5 <= y0 + bh).all()
    # the area is pi/4 of the box's, up to the pixels the outline crosses (< 2 (w + h) + 4)
    assert abs(m.sum() - np.pi / 4 * bw * bh) <= 2 * (bw + bh) + 4
    if bw >= 8 and bh >= 8:  # the ellipse of the mask's own tight box is about the same
        inner = box_ellipse_masks(boxes_from_masks(m), m.shape)[0]
        assert (inner & m).sum() / (inner | m).sum() > 0.8


def test_box_ellipse_masks_examples():
    m = box_ellipse_masks([[0, 0, 4, 4], [2, 2, 2, 6]], (6, 6))
    assert m.shape == (2, 6, 6) and not m[1].any()
    np.testing.assert_array_equal(
        m[0, :4, :4].astype(int), [[0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 0]]
    )
    assert m[0].sum() == 12  # the 4x4 box's corners are out
    assert box_ellipse_masks(np.zeros((0, 4)), (5, 5)).shape == (0, 5, 5)


def test_mask_prompts(samples):
    m = samples[0].masks[:2]
    full = mask_prompts(m)
    assert full.dtype == np.float32 and ((full > 0) == m).all()
    low = mask_prompts(m, size=(32, 32), logit=5)
    assert low.shape == (2, 32, 32) and np.abs(low).max() <= 5
    with pytest.raises(ValueError, match="0 and 1"):
        mask_prompts(np.full((1, 4, 4), 0.5))


def test_phrase_sets(samples):
    assert ORCHARD_ALL == ORCHARD_POSITIVE + ORCHARD_ATTRIBUTE + ORCHARD_NEGATIVE
    assert phrase_set("negative") == ORCHARD_NEGATIVE
    assert {c.text for c in ORCHARD_NEGATIVE} == {"pear", "leaf", "orange", "lemon"}
    with pytest.raises(ValueError, match="unknown"):
        phrase_set("fruit")
    texts = [c.text for c in ORCHARD_ALL]
    assert len(texts) == len(set(texts))
    table = denotation_table(samples, ORCHARD_ALL)
    for k, s in enumerate(samples):
        n = len(s.instances)
        np.testing.assert_array_equal(table["apple"][k], np.arange(n))
        ripe = [i for i, inst in enumerate(s.instances) if inst.attributes["ripeness"] == "ripe"]
        assert table["ripe apple"][k].tolist() == ripe
        dam = [i for i, inst in enumerate(s.instances) if inst.attributes["health"] == "damaged"]
        assert table["damaged apple"][k].tolist() == dam
        healthy = set(table["healthy apple"][k].tolist())
        assert healthy | set(dam) == set(range(n)) and not healthy & set(dam)
        ripeness = [
            set(table[t][k].tolist()) for t in ("ripe apple", "unripe apple", "turning apple")
        ]
        assert set().union(*ripeness) == set(range(n))
        for c in ORCHARD_NEGATIVE:
            assert table[c.text][k].size == 0 and concept_masks(s, c).shape == (
                0,
                s.height,
                s.width,
            )
    assert denoted_instances(samples[0], "apple").tolist() == list(range(len(samples[0].instances)))
    with pytest.raises(ValueError, match="unique"):
        denotation_table(samples, [Concept("apple"), Concept("apple")])
