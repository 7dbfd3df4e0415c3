"""cgF1 against SAM3's CGF1Evaluator, and the Sample-based concept metrics."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
from _saco_fixtures import random_saco, rle, run_sam3_cgf1, xywh

from samgap_lib.data import Concept, Instance, Sample
from samgap_lib.metrics import (
    attribute_accuracy,
    cgf1,
    concept_recall,
    localization_error,
    match_detections,
    open_vocab_f1,
)


def _assert_same(ours: dict, ref: dict) -> None:
    assert set(ours) == set(ref)
    for k in ref:
        assert ours[k] == pytest.approx(ref[k], abs=1e-9, rel=0), k


def _both(tmp_path, gt, preds, iou_type):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # SAM3's 0/0 for macro F1
        ref = run_sam3_cgf1(tmp_path, gt, copy.deepcopy(preds), iou_type)
    return cgf1(gt, preds, iou_type=iou_type), ref


@pytest.mark.parametrize("seed", range(24))
@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_cgf1_matches_sam3_random(tmp_path, seed, iou_type):
    rng = np.random.default_rng(seed)
    kwargs = {}
    if seed % 4 == 1:
        kwargs = {"n_categories": 2}  # SAM3 orders GT and detections by category
    if seed % 4 == 2:
        kwargs = {"max_gt": 25, "n_pairs": 5, "p_negative": 0.0}  # crowded
    if seed % 4 == 3:
        kwargs = {"p_negative": 0.7, "p_no_preds": 0.5}
    gt, preds = random_saco(rng, **kwargs)
    ours, ref = _both(tmp_path, gt, preds, iou_type)
    _assert_same(ours, ref)


def test_cgf1_names_match_sam3_without_prefix(tmp_path):
    gt, preds = random_saco(np.random.default_rng(7))
    ours, ref = _both(tmp_path, gt, preds, "segm")
    assert list(ours) == list(ref)
    assert {"cgF1", "cgF1@0.5", "cgF1@0.75", "IL_MCC", "positive_micro_F1"} <= set(ours)


def _one_pair_gt(n_gt: int, exhaustive: bool = True):
    m = np.zeros((10, 12), bool)
    m[2:6, 3:8] = True
    anns = [
        {
            "id": i + 1,
            "image_id": 1,
            "category_id": 1,
            "segmentation": rle(m),
            "bbox": xywh(m),
            "area": float(m.sum()),
            "iscrowd": 0,
        }
        for i in range(n_gt)
    ]
    img = {
        "id": 1,
        "height": 10,
        "width": 12,
        "text_input": "apple",
        "is_instance_exhaustive": exhaustive,
    }
    gt = {"images": [img], "annotations": anns, "categories": [{"id": 1, "name": "object"}]}
    return gt, m


def _pred(m, score, image_id=1):
    return {
        "image_id": image_id,
        "category_id": 1,
        "segmentation": rle(m),
        "bbox": xywh(m),
        "score": score,
    }


def test_cgf1_edge_cases_match_sam3(tmp_path):
    gt_pos, m = _one_pair_gt(1)
    neg_img = {
        "id": 2,
        "height": 10,
        "width": 12,
        "text_input": "pear",
        "is_instance_exhaustive": True,
    }
    gt_mixed = copy.deepcopy(gt_pos)
    gt_mixed["images"].append(neg_img)
    cases = [
        (gt_pos, []),  # no predictions at all
        (gt_pos, [_pred(m, 0.5)]),  # score exactly at the threshold counts
        (gt_pos, [_pred(m, float(np.nextafter(0.5, 0)))]),  # just below does not
        (gt_mixed, [_pred(m, 0.9, image_id=2)]),  # detection on a negative phrase
        (gt_mixed, [_pred(m, 0.9, image_id=1)]),
        (_one_pair_gt(0)[0], []),  # empty GT, empty predictions: one true negative
    ]
    for k, (gt, preds) in enumerate(cases):
        d = tmp_path / str(k)
        d.mkdir()
        ours, ref = _both(d, gt, preds, "segm")
        _assert_same(ours, ref)
    ours = cgf1(gt_pos, [_pred(m, 0.5)])
    assert ours["cgF1"] == pytest.approx(0.0, abs=1e-6)  # MCC is 0 without any negative pair
    assert ours["positive_micro_F1"] == pytest.approx(1.0, abs=1e-3)
    assert cgf1(_one_pair_gt(0)[0], [])["positive_macro_F1"] == -1.0


def test_cgf1_crowd_is_ignored_like_sam3(tmp_path):
    gt, m = _one_pair_gt(2)
    gt["annotations"][1]["iscrowd"] = 1
    ours, ref = _both(tmp_path, gt, [_pred(m, 0.9), _pred(m, 0.8)], "segm")
    _assert_same(ours, ref)
    assert ours["precision@0.5"] == pytest.approx(0.5, abs=1e-3)  # the crowd match is an FP
    assert ours["recall@0.5"] == pytest.approx(1.0, abs=1e-3)


def test_cgf1_non_exhaustive_pairs_are_skipped():
    gt, m = _one_pair_gt(1, exhaustive=False)
    with pytest.raises(ValueError, match="is_instance_exhaustive"):
        cgf1(gt, [_pred(m, 0.9)])


def test_cgf1_invalid_inputs():
    gt, m = _one_pair_gt(1)
    with pytest.raises(ValueError, match="NaN|score"):
        cgf1(gt, [_pred(m, float("nan"))])
    with pytest.raises(ValueError, match="image_id"):
        cgf1(gt, [_pred(m, 0.9, image_id=99)])
    with pytest.raises(ValueError, match="iou_type"):
        cgf1(gt, [], iou_type="keypoints")
    bad = _pred(np.zeros((5, 5), bool) | True, 0.9)
    with pytest.raises(ValueError, match="size"):
        cgf1(gt, [bad])
    p = _pred(m, 0.9)
    p["category_id"] = 42
    with pytest.raises(ValueError, match="category_id"):
        cgf1(gt, [p])


def test_cgf1_box_only_results_match_sam3(tmp_path):
    rng = np.random.default_rng(3)
    gt, preds = random_saco(rng)
    boxes_only = [{k: v for k, v in p.items() if k != "segmentation"} for p in preds]
    for iou_type in ("segm", "bbox"):
        d = tmp_path / iou_type
        d.mkdir()
        ours, ref = _both(d, gt, boxes_only, iou_type)
        _assert_same(ours, ref)


# ---------------------------------------------------------------------------------------------
# Sample-based concept metrics
# ---------------------------------------------------------------------------------------------


def _disc(h, w, cy, cx, r):
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def _orchard():
    h, w = 40, 60
    insts = [
        Instance(_disc(h, w, 10, 10, 6), {"ripeness": "ripe", "health": "healthy"}, instance_id=1),
        Instance(
            _disc(h, w, 10, 40, 6), {"ripeness": "unripe", "health": "healthy"}, instance_id=2
        ),
        Instance(_disc(h, w, 30, 25, 6), {"ripeness": "ripe", "health": "damaged"}, instance_id=3),
    ]
    return Sample(np.zeros((h, w, 3), np.uint8), insts, image_id=0), (h, w)


def test_match_detections_thresholds():
    s, (h, w) = _orchard()
    gt = s.masks
    pred = np.stack([gt[1], gt[0], np.roll(gt[2], 20, axis=1)])
    pi, gi, ious = match_detections(pred, gt, np.array([0.9, 0.4, 0.9]))
    assert pi.tolist() == [0] and gi.tolist() == [1] and ious.tolist() == [1.0]
    pi, gi, _ = match_detections(pred, gt)  # no scores: all kept
    assert sorted(zip(pi.tolist(), gi.tolist(), strict=True)) == [(0, 1), (1, 0)]
    with pytest.raises(ValueError, match="NaN"):
        match_detections(pred, gt, np.array([0.9, np.nan, 0.1]))


def test_concept_metrics_on_a_hand_made_case():
    s, (h, w) = _orchard()
    ripe = Concept("ripe apple", "apple", {"ripeness": "ripe"})
    pear = Concept("pear", "pear")
    gt = s.masks
    shifted = np.roll(gt[0], 2, axis=1)
    preds = {
        # detects ripe #1 (shifted by 2 px), wrongly unripe #2, misses ripe #3
        "ripe apple": [{"masks": np.stack([shifted, gt[1]]), "scores": np.array([0.9, 0.8])}],
        "pear": [(np.zeros((0, h, w), bool), np.zeros(0))],
    }
    rec = concept_recall([s], preds, [ripe, pear])
    assert rec["recall[ripe apple]"] == 0.5
    assert np.isnan(rec["recall[pear]"])
    assert rec["recall"] == 0.5 and rec["macro_recall"] == 0.5
    f1 = open_vocab_f1([s], preds, [ripe, pear])
    assert f1["F1[ripe apple]"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))
    assert np.isnan(f1["F1[pear]"])
    att = attribute_accuracy([s], preds, [ripe])
    assert att["attribute_precision"] == 0.5  # matched 2 apples, one is ripe
    assert att["attribute_rejection"] == 0.0  # the only non-ripe apple was selected
    loc = localization_error([s], preds, [ripe])
    c_gt = np.array(np.nonzero(gt[0]))[::-1].mean(axis=1)
    c_pr = np.array(np.nonzero(shifted))[::-1].mean(axis=1)
    expect = np.linalg.norm(c_gt - c_pr) / np.sqrt(gt[0].sum())
    assert loc["n_matched"] == 1 and loc["mean"] == pytest.approx(expect, abs=1e-12)


def test_concept_metrics_perfect_predictions():
    from samgap_lib.data import synthetic_orchard
    from samgap_lib.prompts import ORCHARD_ALL, concept_masks

    samples = synthetic_orchard(3, seed=1, size=(64, 64))
    preds = {
        c.text: [(concept_masks(s, c), np.ones(len(concept_masks(s, c)))) for s in samples]
        for c in ORCHARD_ALL
    }
    rec = concept_recall(samples, preds, ORCHARD_ALL)
    assert rec["recall"] == 1.0
    f1 = open_vocab_f1(samples, preds, ORCHARD_ALL)
    assert f1["F1_micro"] == 1.0 and f1["F1_macro"] == 1.0
    att = attribute_accuracy(samples, preds, [c for c in ORCHARD_ALL if c.attributes])
    assert att["attribute_precision"] == 1.0 and att["attribute_rejection"] == 1.0
    assert localization_error(samples, preds, ORCHARD_ALL)["max"] == 0.0


def test_concept_metrics_invalid_predictions():
    s, (h, w) = _orchard()
    ripe = Concept("ripe apple", "apple", {"ripeness": "ripe"})
    with pytest.raises(ValueError, match="no predictions"):
        concept_recall([s], {}, [ripe])
    with pytest.raises(ValueError, match="shape"):
        concept_recall([s], {"ripe apple": [(np.zeros((1, 5, 5), bool), [1.0])]}, [ripe])
    with pytest.raises(ValueError, match="scores"):
        concept_recall([s], {"ripe apple": [(s.masks[:1], [1.0, 2.0])]}, [ripe])
