"""The SAM2 held-out evaluation: per-instance box answers and their grouping by box fill."""

from __future__ import annotations

import numpy as np
import pytest
from _fake_segmenters import RectSegmenter
from hypothesis import given, settings
from hypothesis import strategies as st

from samgap_lib.data import synthetic_orchard
from samgap_lib.evaluation import evaluate_prompted as evaluate_sam2
from samgap_lib.evaluation import instance_ious as sam2_instance_ious
from samgap_lib.evaluation import ious_by_box_fill
from samgap_lib.metrics import iou
from samgap_lib.prompts import box_ellipse_masks, boxes_from_masks


@pytest.fixture(scope="module")
def samples():
    return synthetic_orchard(4, seed=3, size=(96, 96))


def test_box_prompt_rows_per_instance(samples):
    r = sam2_instance_ious(RectSegmenter(), samples, clicks=0)
    gt = np.concatenate([s.masks for s in samples if s.instances])
    boxes = boxes_from_masks(gt)
    assert all(len(v) == len(gt) for v in r.values())
    np.testing.assert_array_equal(r["area"], gt.sum((1, 2)))
    np.testing.assert_allclose(r["ellipse"], iou(box_ellipse_masks(boxes, gt.shape[1:]), gt))
    # the filled box contains the mask, so its IoU is the share of the box the mask fills
    np.testing.assert_allclose(r["model"], r["fill"])
    assert ((r["fill"] > 0) & (r["fill"] <= 1)).all()
    with pytest.raises(ValueError, match="no instances"):
        sam2_instance_ious(RectSegmenter(), [s for s in samples if not s.instances], clicks=0)


def test_evaluate_sam2_box_scores_are_the_per_instance_means(samples):
    r = sam2_instance_ious(RectSegmenter(), samples, clicks=0)
    m = evaluate_sam2(RectSegmenter(), samples, clicks=2)
    assert m["n_instances"] == len(r["model"])
    assert m["box_mIoU"] == pytest.approx(r["model"].mean())
    assert m["box_ellipse_mIoU"] == pytest.approx(r["ellipse"].mean())


def test_sam2_instance_ious_name_each_instance_image_and_clicks(samples):
    r = sam2_instance_ious(RectSegmenter(), samples, clicks=2)
    m = evaluate_sam2(RectSegmenter(), samples, clicks=2)
    counts = [len(s.masks) if s.instances else 0 for s in samples]
    assert 0 in counts  # an image without apples is skipped, and its index with it
    np.testing.assert_array_equal(r["image"], np.repeat(np.arange(len(samples)), counts))
    assert r["click"].shape == (sum(counts), 2)
    for k in (1, 2):
        assert m[f"click_mIoU@{k}"] == pytest.approx(r["click"][:, k - 1].mean())
    box_only = sam2_instance_ious(RectSegmenter(), samples, clicks=0)
    assert "click" not in box_only
    for key in ("image", "model", "ellipse", "area", "fill"):
        np.testing.assert_array_equal(box_only[key], r[key])


def test_ious_by_box_fill_bins():
    ious = {
        "fill": np.array([0.2, 0.5, 0.6, 0.85, 1.0]),
        "model": np.array([0.1, 0.2, 0.3, 0.4, 0.5]),
        "ellipse": np.array([0.5, 0.4, 0.3, 0.2, 0.1]),
    }
    rows = ious_by_box_fill(ious, (0.0, 0.5, 0.7, 0.8, 1.0))
    assert [r["instances"] for r in rows] == [1, 2, 0, 2]  # 0.5 opens its bin, 1.0 closes the last
    assert rows[1]["model"] == pytest.approx(0.25) and rows[1]["ellipse"] == pytest.approx(0.35)
    assert np.isnan(rows[2]["model"]) and np.isnan(rows[2]["ellipse"])
    assert (rows[3]["fill from"], rows[3]["fill to"]) == (0.8, 1.0)
    for bad in [(0.5,), (0.0, 0.5, 0.5), (1.0, 0.0)]:
        with pytest.raises(ValueError, match="increasing"):
            ious_by_box_fill(ious, bad)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.01, 1.0), st.floats(0, 1), st.floats(0, 1)), min_size=1))
def test_ious_by_box_fill_counts_every_instance_once(data):
    fill, model, ellipse = (np.array(c) for c in zip(*data, strict=True))
    rows = ious_by_box_fill({"fill": fill, "model": model, "ellipse": ellipse})
    n = np.array([r["instances"] for r in rows])
    assert n.sum() == len(fill)
    for k, v in (("model", model), ("ellipse", ellipse)):
        means = np.array([r[k] for r in rows])
        # the bins' means, weighted by their counts, give the overall mean
        assert np.nansum(means * n) / n.sum() == pytest.approx(v.mean(), abs=1e-9)
