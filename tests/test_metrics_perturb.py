"""Controlled perturbations of the ground truth (metrics.perturb) and the click simulator
(metrics.simulate): determinism, perfect scores at zero strength, monotone responses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samgap_lib.data import (
    Concept,
    Instance,
    Sample,
    synthetic_orchard,
    synthetic_orchard_video,
    to_saco,
    usable_concepts,
)
from samgap_lib.evaluation import coco_results
from samgap_lib.metrics import boundary_f1, concept_counts, concept_recall, iou, noc
from samgap_lib.prompts.concepts import ORCHARD_ALL
from samgap_lib.studies.perturb import (
    METRICS,
    PERTURBATIONS,
    Detections,
    add_false_positives,
    calibrate_scores,
    confuse_attributes,
    degrade_track,
    dilate,
    drop_images,
    drop_instances,
    duplicate_detections,
    erode,
    erode_predictions,
    erosion_boundary_response,
    evaluate,
    ground_truth_predictions,
    invisible_erosion,
    metric_response,
    shift_mask,
    tracks_from_frames,
    with_background,
)
from samgap_lib.studies.simulate import disc_predictor, simulate_clicks

SLOW_OK = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def data():
    samples = synthetic_orchard(5, seed=3, size=(96, 96))
    assert sum(len(s.instances) for s in samples) >= 8
    return samples, usable_concepts(samples, ORCHARD_ALL)


@pytest.fixture(scope="module")
def base(data):
    samples, concepts = data
    return ground_truth_predictions(samples, concepts, seed=0)


def _disc(h=64, w=64, cy=32, cx=32, r=20):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _assert_perfect(m: dict) -> None:
    for k in ("IoU", "Dice", "BF_davis", "BF_tight", "AP", "concept_recall"):
        assert m[k] == 1.0, k
    # SAM3's 1e-4 / 1e-6 smoothing keeps cgF1 a hair below 1
    for k in ("cgF1", "pmF1", "IL_MCC"):
        assert m[k] == pytest.approx(1.0, abs=1e-3), k
    assert m["attr_precision"] == 1.0 and m["attr_rejection"] == 1.0


# --------------------------------------------------------------------------------------------
# Container and perfect prediction
# --------------------------------------------------------------------------------------------


def test_ground_truth_prediction_is_perfect(data, base):
    samples, concepts = data
    m = evaluate(samples, concepts, base)
    assert list(m) == list(METRICS)
    _assert_perfect(m)


def test_ground_truth_prediction_shares_masks_and_unpacks(data, base):
    samples, _ = data
    d = base["apple"][0]
    assert all(m is inst.mask for m, inst in zip(d.mask_list, samples[0].instances, strict=True))
    masks, scores = d
    assert masks.shape == (len(samples[0].instances), 96, 96) and scores.shape == (len(d),)
    assert ((scores >= 0.6) & (scores <= 0.95)).all()
    assert Detections.empty((5, 7)).masks.shape == (0, 5, 7)


def test_zero_strength_is_perfect_for_every_family(data):
    samples, concepts = data
    for name in PERTURBATIONS:
        zero = 1.0 if name == "temperature" else 0
        (row,) = metric_response(samples, concepts, name, [zero], seed=1)
        assert row["perturbation"] == name and row["strength"] == zero
        _assert_perfect(row)


def test_detections_validation():
    m = np.zeros((4, 4), bool)
    with pytest.raises(ValueError, match="bool array"):
        Detections((m.astype(np.uint8),), [0.5], [0], (4, 4))
    with pytest.raises(ValueError, match="bool array"):
        Detections((np.zeros((4, 5), bool),), [0.5], [0], (4, 4))
    with pytest.raises(ValueError, match="one score"):
        Detections((m,), [0.5, 0.6], [0], (4, 4))
    with pytest.raises(ValueError, match="finite"):
        Detections((m,), [np.nan], [0], (4, 4))


def test_ground_truth_predictions_validation(data):
    samples, concepts = data
    with pytest.raises(ValueError, match="unique"):
        ground_truth_predictions(samples, [concepts[0], concepts[0]])
    with pytest.raises(ValueError, match="no samples"):
        ground_truth_predictions([], concepts)
    with pytest.raises(ValueError, match="score_range"):
        ground_truth_predictions(samples, concepts, score_range=(0.5, 1.5))
    with pytest.raises(ValueError, match="seed"):
        ground_truth_predictions(samples, concepts, seed=-1)


def test_coco_results_use_saco_pair_ids(data, base):
    samples, concepts = data
    saco = to_saco(samples, concepts)
    text = {img["id"]: img["text_input"] for img in saco["images"]}
    res = coco_results(base, concepts)
    assert len(res) == len(saco["annotations"])
    for r in res:
        assert r["category_id"] == 1 and 0.6 <= r["score"] <= 0.95
    # the same masks land on the same pairs: count per pair agrees with the ground truth
    per_pair = {}
    for r in res:
        per_pair[r["image_id"]] = per_pair.get(r["image_id"], 0) + 1
    gt_pair = {}
    for a in saco["annotations"]:
        gt_pair[a["image_id"]] = gt_pair.get(a["image_id"], 0) + 1
    assert per_pair == gt_pair
    assert {text[k] for k in per_pair} <= {c.text for c in concepts}
    with pytest.raises(ValueError, match="lack"):
        coco_results(base, [*concepts, Concept("plum", "plum")])


# --------------------------------------------------------------------------------------------
# Determinism and nesting
# --------------------------------------------------------------------------------------------


def _signature(pred):
    return {
        p: [(len(d), d.scores.round(12).tolist(), d.sources.tolist()) for d in per]
        for p, per in pred.items()
    }


@pytest.mark.parametrize("name", ["drop", "false_positives", "duplicates", "attribute_confusion"])
def test_perturbations_are_deterministic(data, base, name):
    samples, concepts = data
    fn = PERTURBATIONS[name]
    a = fn(base, samples, concepts, 0.5, 7)
    b = fn(base, samples, concepts, 0.5, 7)
    assert _signature(a) == _signature(b)
    assert coco_results(a, concepts) == coco_results(b, concepts)
    c = fn(base, samples, concepts, 0.5, 8)
    assert _signature(c) != _signature(a)


def test_inputs_are_not_modified(data, base):
    samples, concepts = data
    strengths = {
        "erode": 2,
        "dilate": 2,
        "drop": 0.5,
        "false_positives": 2,
        "duplicates": 0.5,
        "score_shift": 1.0,
        "temperature": 2.0,
        "attribute_confusion": 0.5,
    }
    assert set(strengths) == set(PERTURBATIONS)
    before = _signature(base)
    pixels = [int(inst.mask.sum()) for s in samples for inst in s.instances]
    for name, fn in PERTURBATIONS.items():
        fn(base, samples, concepts, strengths[name], 0)
    assert _signature(base) == before
    assert pixels == [int(inst.mask.sum()) for s in samples for inst in s.instances]


def test_missed_instances_are_nested(data, base):
    samples, _ = data
    small = drop_instances(base, samples, 0.3, seed=2)
    large = drop_instances(base, samples, 0.6, seed=2)
    for d_small, d_large in zip(small["apple"], large["apple"], strict=True):
        assert set(d_large.sources.tolist()) <= set(d_small.sources.tolist())
    assert sum(map(len, drop_instances(base, samples, 1.0)["apple"])) == 0


def test_dropped_images_lose_every_instance_and_are_nested(data, base):
    samples, concepts = data
    small = drop_images(base, samples, 0.3, seed=5)
    large = drop_images(base, samples, 0.7, seed=5)
    for p in base:
        for i, (b, d_small, d_large) in enumerate(zip(base[p], small[p], large[p], strict=True)):
            for d in (d_small, d_large):
                assert len(d) in (0, len(b))  # an image keeps all its detections or none
            if len(b) and not len(d_small):
                assert not len(d_large), (p, i)  # missed at 30 %: missed at 70 % too
    assert sum(map(len, drop_images(base, samples, 1.0)["apple"])) == 0
    assert drop_images(base, samples, 0.0) == base
    # spurious detections (source -1) are not the model's recall: they stay
    noisy = add_false_positives(base, samples, concepts, 2, seed=0)
    gone = drop_images(noisy, samples, 1.0)
    for p in noisy:
        for d_noisy, d_gone in zip(noisy[p], gone[p], strict=True):
            assert len(d_gone) == int((d_noisy.sources < 0).sum())


def test_concept_counts_per_image_sum_to_recall(data, base):
    samples, concepts = data
    pred = drop_instances(base, samples, 0.4, seed=1)
    counts = concept_counts(samples, pred, concepts)
    recall = concept_recall(samples, pred, concepts)
    for c in concepts:
        n = counts[c.text]
        assert all(v.shape == (len(samples),) for v in n.values())
        np.testing.assert_array_equal(n["named"], [len(s.select(c)) for s in samples])
        np.testing.assert_array_equal(n["kept"], [len(d) for d in pred[c.text]])
        assert (n["found"] <= np.minimum(n["named"], n["kept"])).all()
        if n["named"].sum():
            assert recall[f"recall[{c.text}]"] == n["found"].sum() / n["named"].sum()
        else:
            assert np.isnan(recall[f"recall[{c.text}]"])


def test_false_positives_land_on_negative_phrases_only(data, base):
    samples, concepts = data
    pred = add_false_positives(base, samples, concepts, 3, seed=0)
    negatives = {"pear", "leaf", "orange", "lemon"}
    added = {p: sum(len(a) - len(b) for a, b in zip(pred[p], base[p], strict=True)) for p in pred}
    assert sum(added[p] for p in negatives) == 3 * len(samples)
    assert all(added[p] == 0 for p in pred if p not in negatives)
    one = add_false_positives(base, samples, concepts, 2, seed=0, on=["pear"], kind="blob")
    assert sum(map(len, one["pear"])) == 2 * len(samples)
    assert all((d.sources == -1).all() for d in one["pear"])
    with pytest.raises(ValueError, match="on must be"):
        add_false_positives(base, samples, concepts, 1, on="positive")
    with pytest.raises(ValueError, match="predictions lack"):
        add_false_positives(base, samples, concepts, 1, on=["plum"])
    with pytest.raises(ValueError, match="kind"):
        add_false_positives(base, samples, concepts, 1, kind="cloud")
    with pytest.raises(ValueError, match="per_image"):
        add_false_positives(base, samples, concepts, -1)


# --------------------------------------------------------------------------------------------
# Responses: who sees what
# --------------------------------------------------------------------------------------------


@SLOW_OK
@given(a=st.floats(0, 1), b=st.floats(0, 1))
def test_missed_instances_lower_recall_and_iou_monotonically(data, base, a, b):
    samples, concepts = data
    lo, hi = sorted((a, b))
    m_lo = evaluate(samples, concepts, drop_instances(base, samples, lo, seed=4))
    m_hi = evaluate(samples, concepts, drop_instances(base, samples, hi, seed=4))
    for k in ("IoU", "concept_recall", "pmF1", "AP"):
        assert m_hi[k] <= m_lo[k] + 1e-12, k
    assert m_hi["attr_precision"] in (1.0,) or np.isnan(m_hi["attr_precision"])


@SLOW_OK
@given(a=st.floats(0, 4), b=st.floats(0, 4))
def test_false_positives_on_negatives_are_seen_only_by_presence(data, base, a, b):
    samples, concepts = data
    lo, hi = sorted((a, b))
    m_lo = evaluate(samples, concepts, add_false_positives(base, samples, concepts, lo, seed=5))
    m_hi = evaluate(samples, concepts, add_false_positives(base, samples, concepts, hi, seed=5))
    assert m_hi["IL_MCC"] <= m_lo["IL_MCC"] + 1e-12
    for m in (m_lo, m_hi):
        for k in ("IoU", "Dice", "BF_davis", "BF_tight", "concept_recall"):
            assert m[k] == 1.0, k
        assert m["pmF1"] == pytest.approx(1.0, abs=1e-3)  # pmF1 ignores pairs without GT


def test_duplicates_cost_precision_not_iou_or_presence(data, base):
    samples, concepts = data
    rows = metric_response(samples, concepts, "duplicates", [0, 0.3, 0.6, 1.0], seed=3)
    cg = [r["cgF1"] for r in rows]
    assert all(x >= y - 1e-12 for x, y in zip(cg, cg[1:], strict=False))
    assert cg[-1] < 0.8
    for r in rows:
        assert r["IoU"] == 1.0 and r["concept_recall"] == 1.0
        assert r["IL_MCC"] == pytest.approx(1.0, abs=1e-6)
    dup = duplicate_detections(base, samples, 1.0, score_delta=0.1)
    d0, d1 = base["apple"][0], dup["apple"][0]
    assert len(d1) == 2 * len(d0)
    np.testing.assert_allclose(d1.scores[len(d0) :], d0.scores - 0.1)


def test_score_shift_keeps_ap_and_iou_but_not_cgf1(data, base):
    samples, concepts = data
    noisy = with_background(base, samples, concepts, per_image=2, seed=1)
    assert evaluate(samples, concepts, noisy)["cgF1"] == pytest.approx(1.0, abs=1e-3)
    rows = metric_response(samples, concepts, "score_shift", [-3, -1, 0, 1, 3], seed=0, base=noisy)
    assert {r["AP"] for r in rows} == {1.0}
    assert {r["IoU"] for r in rows} == {1.0}
    by = {r["strength"]: r for r in rows}
    assert by[-3]["cgF1"] < by[-1]["cgF1"] < by[0]["cgF1"]
    assert by[3]["cgF1"] < by[0]["cgF1"]  # background lifted over 0.5


def test_calibrate_scores_keeps_ranking_and_temperature_keeps_the_half(base):
    shifted = calibrate_scores(base, shift=-1.5)
    warm = calibrate_scores(base, temperature=3.0)
    for d, s, t in zip(base["apple"], shifted["apple"], warm["apple"], strict=True):
        np.testing.assert_array_equal(np.argsort(d.scores), np.argsort(s.scores))
        np.testing.assert_array_equal(d.scores >= 0.5, t.scores >= 0.5)
        assert (s.scores < d.scores).all()
    with pytest.raises(ValueError, match="temperature"):
        calibrate_scores(base, temperature=0)
    with pytest.raises(ValueError, match="shift"):
        calibrate_scores(base, shift=float("inf"))


@SLOW_OK
@given(a=st.integers(0, 6), b=st.integers(0, 6))
def test_erosion_lowers_iou_monotonically(data, base, a, b):
    samples, concepts = data
    lo, hi = sorted((a, b))
    m_lo = evaluate(samples, concepts, erode_predictions(base, lo))
    m_hi = evaluate(samples, concepts, erode_predictions(base, hi))
    for k in ("IoU", "Dice"):
        assert m_hi[k] <= m_lo[k] + 1e-12, k


def test_erosion_is_seen_late_by_boundary_f_at_a_wide_tolerance(data, base):
    samples, concepts = data
    m = evaluate(samples, concepts, erode_predictions(base, 1), tight_tolerance=1)
    assert m["IoU"] < 0.9
    assert m["BF_davis"] > m["IoU"]
    assert m["attr_precision"] == 1.0


def test_attribute_confusion_is_seen_only_by_concept_metrics(data, base):
    samples, concepts = data
    m = evaluate(samples, concepts, confuse_attributes(base, samples, concepts, 1.0, seed=0))
    assert m["IoU"] == 1.0 and m["concept_recall"] == 1.0
    assert m["attr_precision"] < 1.0 and m["attr_rejection"] == 0.0
    assert m["cgF1"] < 0.9


def test_detections_work_with_the_concept_metrics(data, base):
    samples, concepts = data
    pred = drop_instances(base, samples, 0.5, seed=0)
    r = concept_recall(samples, pred, concepts)["recall"]
    assert r == pytest.approx(evaluate(samples, concepts, pred)["concept_recall"])


def test_metric_response_validation(data):
    samples, concepts = data
    with pytest.raises(ValueError, match="unknown perturbation"):
        metric_response(samples, concepts, "blur", [0])
    with pytest.raises(ValueError, match="no strengths"):
        metric_response(samples, concepts, "erode", [])
    with pytest.raises(TypeError):
        metric_response(samples, concepts, 3, [0])
    with pytest.raises(ValueError, match="phrase"):
        metric_response(samples, concepts, "erode", [0], phrase="pearl")
    with pytest.raises(ValueError, match="fraction"):
        metric_response(samples, concepts, "drop", [1.5])
    with pytest.raises(ValueError, match="radius"):
        metric_response(samples, concepts, "erode", [1.5])

    def nothing(pred, samples, concepts, strength, seed):
        return pred

    (row,) = metric_response(samples, concepts, nothing, [3])
    assert row["perturbation"] == "nothing"
    _assert_perfect(row)


def test_evaluate_without_attribute_phrases_gives_nan(data):
    samples, _ = data
    concepts = [Concept("apple"), Concept("pear", "pear")]
    m = evaluate(samples, concepts, ground_truth_predictions(samples, concepts))
    assert np.isnan(m["attr_precision"]) and np.isnan(m["attr_rejection"])
    assert m["IoU"] == 1.0


def test_evaluate_rejects_mismatched_predictions(data, base):
    samples, concepts = data
    with pytest.raises(ValueError, match="samples"):
        evaluate(samples[:2], concepts, base)
    with pytest.raises(ValueError, match="lack"):
        evaluate(samples, [*concepts, Concept("plum", "plum")], base)
    with pytest.raises(TypeError, match="Detections"):
        evaluate(
            samples, concepts, {p: [(d.masks, d.scores) for d in per] for p, per in base.items()}
        )


# --------------------------------------------------------------------------------------------
# Masks, tolerances, video
# --------------------------------------------------------------------------------------------


def test_erode_and_dilate():
    disc = _disc()
    assert erode(disc, 0).sum() == disc.sum()
    assert erode(disc, 3).sum() < disc.sum() and (erode(disc, 3) <= disc).all()
    assert (dilate(disc, 3) >= disc).all() and dilate(disc, 3).sum() > disc.sum()
    assert erode(np.stack([disc, disc]), 2).shape == (2, 64, 64)
    assert not erode(disc, 25).any()
    with pytest.raises(ValueError, match="radius"):
        erode(disc, -1)
    with pytest.raises(ValueError, match="radius"):
        dilate(disc, 1.5)


def test_boundary_f_saturates_below_the_tolerance():
    disc = _disc(r=20)
    rows = erosion_boundary_response([disc], [0, 2, 6], {"12 px": 12, "1 px": 1}, {"rel": 0.05})
    assert len(rows) == 9
    by = {(r["radius"], r["tolerance"]): r for r in rows}
    assert by[0, "12 px"]["boundary_f"] == 1.0 and by[0, "12 px"]["iou"] == 1.0
    assert by[6, "12 px"]["boundary_f"] == 1.0 and by[6, "12 px"]["iou"] < 0.6
    assert by[6, "1 px"]["boundary_f"] == 0.0
    assert by[6, "rel"]["boundary_f"] < 0.5  # 5 % of a 40-px diameter: 2 px
    with pytest.raises(ValueError, match="no masks"):
        erosion_boundary_response([], [0], {"a": 1})
    with pytest.raises(ValueError, match="non-empty"):
        erosion_boundary_response([np.zeros((4, 4), bool)], [0], {"a": 1})


def test_invisible_erosion_grows_with_the_tolerance():
    disc = _disc(r=20)
    r_tight, iou_tight = invisible_erosion(disc, 2)
    r_wide, iou_wide = invisible_erosion(disc, 12)
    assert r_tight < r_wide and iou_tight > iou_wide
    assert boundary_f1(erode(disc, r_wide), disc, 12) >= 0.9
    assert iou_wide == pytest.approx(iou(erode(disc, r_wide), disc))
    with pytest.raises(ValueError, match="min_f"):
        invisible_erosion(disc, 2, min_f=0)
    with pytest.raises(ValueError, match="bound_th"):
        invisible_erosion(disc, 1.5)


def test_shift_mask():
    m = np.zeros((5, 6), bool)
    m[1, 2] = True
    s = shift_mask(m, 2, 1)
    assert s[2, 4] and s.sum() == 1
    np.testing.assert_array_equal(shift_mask(s, -2, -1), m)
    assert not shift_mask(m, 10, 0).any()
    with pytest.raises(ValueError, match="shift_mask"):
        shift_mask(np.zeros((2, 2, 2), bool), 1, 1)


def test_tracks_and_degraded_tracks():
    frames = synthetic_orchard_video(6, seed=1, size=(64, 64), pan=3)
    tracks = tracks_from_frames(frames)
    assert tracks and all(t.shape == (6, 64, 64) for t in tracks.values())
    k, gt = max(tracks.items(), key=lambda kv: kv[1].sum())
    np.testing.assert_array_equal(degrade_track(gt), gt)
    grown = degrade_track(gt, erosion=[0, 0, 1, 1, 2, 2])
    assert (grown <= gt).all() and grown[-1].sum() < gt[-1].sum()
    a = degrade_track(gt, jitter=2, seed=3)
    np.testing.assert_array_equal(a, degrade_track(gt, jitter=2, seed=3))
    with pytest.raises(ValueError, match="6 numbers"):
        degrade_track(gt, erosion=[1, 2])
    with pytest.raises(ValueError, match="T >= 1"):
        degrade_track(np.zeros((64, 64), bool))
    with pytest.raises(ValueError, match="no frames"):
        tracks_from_frames([])


# --------------------------------------------------------------------------------------------
# Simulated clicks
# --------------------------------------------------------------------------------------------


def test_disc_predictor_reach_and_boundary_error():
    disc = _disc(r=12)
    pts, labels = np.array([[32.0, 32.0]]), np.array([1])
    full, _ = disc_predictor(disc, reach=1.2)(pts, labels, None)
    np.testing.assert_array_equal(full, disc)
    part, _ = disc_predictor(disc, reach=0.5)(pts, labels, None)
    assert (part <= disc).all() and 0.1 < iou(part, disc) < 0.4
    fat, _ = disc_predictor(disc, reach=2.0, boundary_error=2)(pts, labels, None)
    assert (fat >= disc).all() and iou(fat, disc) < 0.9
    # a negative click removes false positives only
    neg_pts = np.array([[32.0, 32.0], [32.0, 32.0 + 13]])
    cleaned, _ = disc_predictor(disc, reach=2.0, boundary_error=2)(neg_pts, np.array([1, 0]), None)
    assert (cleaned >= disc).all() and cleaned.sum() < fat.sum()
    with pytest.raises(ValueError, match="empty"):
        disc_predictor(np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="reach"):
        disc_predictor(disc, reach=0)
    with pytest.raises(ValueError, match="boundary_error"):
        disc_predictor(disc, boundary_error=0.5)


def test_simulate_clicks_and_noc():
    samples = synthetic_orchard(2, seed=5, size=(96, 96))
    n = sum(len(s.instances) for s in samples)
    strong, diam = simulate_clicks(samples, reach=1.0, max_clicks=6)
    weak, _ = simulate_clicks(samples, reach=0.4, boundary_error=1, max_clicks=6)
    assert strong.shape == weak.shape == (n, 6) and diam.shape == (n,)
    a, b = noc(strong, max_clicks=6), noc(weak, max_clicks=6)
    assert a["NoC@0.85"] <= b["NoC@0.85"] and a["mIoU@1"] > b["mIoU@1"]
    np.testing.assert_array_equal(strong, simulate_clicks(samples, reach=1.0, max_clicks=6)[0])
    empty = [Sample(image=np.zeros((16, 16, 3), np.uint8))]
    with pytest.raises(ValueError, match="no instances"):
        simulate_clicks(empty)


def test_single_instance_sample_round_trip():
    m = _disc(32, 32, 16, 16, 6)
    s = Sample(image=np.zeros((32, 32, 3), np.uint8), instances=[Instance(m)])
    concepts = [Concept("apple"), Concept("pear", "pear")]
    pred = ground_truth_predictions([s], concepts)
    _ = evaluate([s], concepts, pred)
    m1 = evaluate([s], concepts, drop_instances(pred, [s], 1.0))
    assert m1["IoU"] == 0.0 and m1["concept_recall"] == 0.0 and m1["cgF1"] <= 0.0 + 1e-9
