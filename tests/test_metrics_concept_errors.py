"""The concept error breakdown (where recall and precision go) on hand-made and generated cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samgap_lib.data import Concept, Instance, Sample
from samgap_lib.metrics import (
    DETECTION_OUTCOMES,
    INSTANCE_OUTCOMES,
    concept_errors,
    concept_recall,
    detection_error_labels,
    mask_iou_matrix,
    open_vocab_f1,
    pool_concept_errors,
)

H, W, R = 40, 84, 5
UNRIPE = Concept("unripe apple", "apple", {"ripeness": "unripe"})
PEAR = Concept("pear", "pear")


def _disc(cy: int, cx: int, r: int = R) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def _sample(centres, ripeness, radii=None) -> Sample:
    radii = radii or [R] * len(centres)
    insts = [
        Instance(_disc(cy, cx, rad), {"ripeness": r}, instance_id=i + 1)
        for i, ((cy, cx), r, rad) in enumerate(zip(centres, ripeness, radii, strict=True))
    ]
    return Sample(np.zeros((H, W, 3), np.uint8), insts, image_id=0)


def _hand_made():
    # unripe A..D on the top row, ripe E, F below; one empty spot for a background detection
    s = _sample(
        [(8, 8), (8, 30), (8, 52), (8, 74), (30, 8), (30, 30)],
        ["unripe", "unripe", "unripe", "unripe", "ripe", "ripe"],
    )
    g = s.masks
    shift = 5  # a disc moved by its radius: IoU ~0.24, between 0.1 and 0.5
    dets = [
        (g[0], 0.9),  # A found
        (g[0], 0.8),  # ... and answered twice
        (g[1], 0.3),  # B drawn but under the threshold
        (np.roll(g[2], shift, axis=1), 0.9),  # C drawn too badly
        (g[4], 0.7),  # E is ripe: the wrong attribute
        (np.roll(g[5], shift, axis=1), 0.6),  # near F (ripe), drawn badly
        (_disc(30, 60), 0.95),  # nothing there
    ]
    masks = np.stack([m for m, _ in dets])
    scores = np.array([sc for _, sc in dets])
    return s, masks, scores


def test_every_outcome_on_a_hand_made_image():
    s, masks, scores = _hand_made()
    den = np.array([0, 1, 2, 3])
    assert 0.1 < mask_iou_matrix(masks[3:4], s.masks[2:3])[0, 0] < 0.5
    inst, det = detection_error_labels(masks, scores, s.masks, den)
    assert inst.tolist() == ["found", "low score", "poor mask", "missed"]
    assert det.tolist() == [
        "correct",
        "duplicate",
        "",  # under the threshold: not a detection
        "poor mask",
        "other concept",
        "other concept, poor mask",
        "background",
    ]
    # a threshold under B's score keeps it: found, and nothing is left "low score"
    inst, det = detection_error_labels(masks, scores, s.masks, den, score_threshold=0.2)
    assert inst.tolist() == ["found", "found", "poor mask", "missed"]
    assert det[2] == "correct"
    # a background IoU above C's overlap turns it into a miss and its detection into background
    inst, det = detection_error_labels(masks, scores, s.masks, den, background_iou=0.4)
    assert inst[2] == "missed" and det[3] == "background" and det[5] == "background"


def test_concept_errors_counts_agree_with_recall_and_precision():
    s, masks, scores = _hand_made()
    preds = {
        "unripe apple": [(masks, scores)],
        "pear": [(masks[-2:], scores[-2:])],
    }
    out = concept_errors([s], preds, [UNRIPE, PEAR])
    u = out["unripe apple"]
    assert u["instances"] == {"found": 1, "low score": 1, "poor mask": 1, "missed": 1}
    assert u["detections"] == {
        "correct": 1,
        "duplicate": 1,
        "other concept": 1,
        "poor mask": 1,
        "other concept, poor mask": 1,
        "background": 1,
    }
    assert list(u["instances"]) == list(INSTANCE_OUTCOMES)
    assert list(u["detections"]) == list(DETECTION_OUTCOMES)
    # "pear" denotes nothing: every detection is an error, landing on an apple or on nothing
    p = out["pear"]
    assert sum(p["instances"].values()) == 0
    assert p["detections"]["other concept, poor mask"] == 1 and p["detections"]["background"] == 1
    rec = concept_recall([s], preds, [UNRIPE])["recall[unripe apple]"]
    assert u["instances"]["found"] / sum(u["instances"].values()) == rec
    assert "by_area" not in u
    pooled = pool_concept_errors(out)  # summed over the two phrases
    assert pooled["instances"] == u["instances"]  # "pear" names no apple
    assert pooled["detections"]["background"] == 2 and pooled["detections"]["correct"] == 1


def test_instances_by_visible_area():
    s, masks, scores = _hand_made()
    a = s.instances[0].area  # every disc has this area; an area on an edge opens its bin
    out = concept_errors([s], {"unripe apple": [(masks, scores)]}, [UNRIPE], area_edges=(0, a, 1e9))
    small, large = out["unripe apple"]["by_area"]
    assert (small["area from"], small["area to"], large["area from"]) == (0.0, a, a)
    assert sum(small[k] for k in INSTANCE_OUTCOMES) == 0
    assert {k: large[k] for k in INSTANCE_OUTCOMES} == out["unripe apple"]["instances"]
    # an area at the last edge is outside every bin: left out of the bins only
    out = concept_errors([s], {"unripe apple": [(masks, scores)]}, [UNRIPE], area_edges=(0, a))
    assert sum(out["unripe apple"]["by_area"][0][k] for k in INSTANCE_OUTCOMES) == 0
    assert sum(out["unripe apple"]["instances"].values()) == 4
    for bad in [(0,), (0, 100, 50), (-1, 10)]:
        with pytest.raises(ValueError, match="area_edges"):
            concept_errors([s], {"unripe apple": [(masks, scores)]}, [UNRIPE], area_edges=bad)


def test_refusals():
    s, masks, scores = _hand_made()
    with pytest.raises(ValueError, match="background_iou"):
        detection_error_labels(masks, scores, s.masks, [0], background_iou=0.6)
    with pytest.raises(ValueError, match="distinct indices"):
        detection_error_labels(masks, scores, s.masks, [0, 0])
    with pytest.raises(ValueError, match="distinct indices"):
        detection_error_labels(masks, scores, s.masks, [9])
    with pytest.raises(ValueError, match="scores"):
        detection_error_labels(masks, scores[:2], s.masks, [0])


GRID = [(cy, cx) for cy in (8, 30) for cx in (8, 24, 40, 56, 72)]


@st.composite
def _case(draw):
    spots = draw(st.lists(st.integers(0, len(GRID) - 1), max_size=6, unique=True))
    ripeness = [draw(st.sampled_from(["ripe", "unripe"])) for _ in spots]
    radii = [draw(st.integers(2, 7)) for _ in spots]
    s = _sample([GRID[k] for k in spots], ripeness, radii)
    dets = []
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(GRID) - 1))  # on an apple, or on an empty spot
        shift = draw(st.sampled_from([0, 0, 1, 3, 5, 8]))
        dets.append((np.roll(_disc(*GRID[at]), shift, axis=1), draw(st.floats(0, 1))))
    masks = np.stack([m for m, _ in dets]) if dets else np.zeros((0, H, W), bool)
    scores = np.array([sc for _, sc in dets], dtype=float)
    return s, masks, scores, draw(st.sampled_from([0.0, 0.3, 0.5, 0.8]))


@settings(max_examples=80, deadline=None)
@given(_case())
def test_breakdown_partitions_the_counts_recall_and_precision_use(case):
    s, masks, scores, thr = case
    preds = {c.text: [(masks, scores)] for c in (UNRIPE, PEAR)}
    edges = (0, 30, 80, np.inf)
    out = concept_errors([s], preds, [UNRIPE, PEAR], score_threshold=thr, area_edges=edges)
    f1 = open_vocab_f1([s], preds, [UNRIPE], score_threshold=thr)
    u = out["unripe apple"]
    n_unripe = sum(i.attributes["ripeness"] == "unripe" for i in s.instances)
    n_kept = int((scores >= thr).sum())
    assert sum(u["instances"].values()) == n_unripe  # every denoted instance once
    assert sum(u["detections"].values()) == n_kept  # every kept detection once
    assert u["instances"]["found"] == u["detections"]["correct"]
    for k in INSTANCE_OUTCOMES:  # the area bins cover every area: they split each count
        assert sum(b[k] for b in u["by_area"]) == u["instances"][k]
    if n_unripe:
        assert u["instances"]["found"] / n_unripe == f1["recall_micro"]
    if n_kept:
        assert u["detections"]["correct"] / n_kept == f1["precision_micro"]
    if thr == 0.0:
        assert u["instances"]["low score"] == 0  # every detection is kept
    p = out["pear"]
    assert sum(p["instances"].values()) == 0 and sum(p["detections"].values()) == n_kept
    assert p["detections"]["correct"] == p["detections"]["duplicate"] == 0
    assert p["detections"]["poor mask"] == 0  # nothing is denoted, so nothing to draw badly
    # the labels are those of the instances and detections one at a time
    den = np.array([k for k, i in enumerate(s.instances) if i.attributes["ripeness"] == "unripe"])
    inst, det = detection_error_labels(masks, scores, s.masks, den, score_threshold=thr)
    assert set(inst) <= set(INSTANCE_OUTCOMES) and set(det) <= {"", *DETECTION_OUTCOMES}
    assert (det == "").sum() == len(scores) - n_kept


def test_each_controlled_error_lands_in_its_own_column():
    from samgap_lib.data import synthetic_orchard
    from samgap_lib.prompts import ORCHARD_ALL
    from samgap_lib.studies.perturb import (
        add_false_positives,
        calibrate_scores,
        confuse_attributes,
        drop_instances,
        duplicate_detections,
        erode_predictions,
        ground_truth_predictions,
    )

    samples = synthetic_orchard(10, seed=3, size=(96, 96))
    concepts = list(ORCHARD_ALL)
    base = ground_truth_predictions(samples, concepts, seed=0)

    def pooled(pred):
        both = pool_concept_errors(concept_errors(samples, pred, concepts))
        return both["instances"], both["detections"]

    def errors_in(counts, ok):
        return {k for k, v in counts.items() if v and k != ok}

    inst0, det0 = pooled(base)
    n = inst0["found"]
    assert n > 20 and errors_in(inst0, "found") == set() and errors_in(det0, "correct") == set()

    inst, det = pooled(drop_instances(base, samples, 0.3, seed=0))
    assert errors_in(inst, "found") == {"missed"} and errors_in(det, "correct") == set()
    dropped = n - sum(len(d) for per in drop_instances(base, samples, 0.3).values() for d in per)
    assert inst["missed"] == dropped

    dup = duplicate_detections(base, samples, 0.4, seed=0)
    inst, det = pooled(dup)
    assert errors_in(inst, "found") == set() and errors_in(det, "correct") == {"duplicate"}
    assert det["duplicate"] == sum(len(d) for per in dup.values() for d in per) - n

    inst, det = pooled(calibrate_scores(base, shift=-1.0))  # some scores fall under 0.5
    assert errors_in(inst, "found") == {"low score"} and errors_in(det, "correct") == set()
    assert inst["low score"] + inst["found"] == n

    inst, det = pooled(confuse_attributes(base, samples, concepts, 1.0, seed=0))
    assert errors_in(inst, "found") == set() and errors_in(det, "correct") == {"other concept"}

    # "pear" answered with apples (with a blob on an image without apples: background)
    samples_with_apples = [s for s in samples if s.instances]
    fp = add_false_positives(
        ground_truth_predictions(samples_with_apples, concepts), samples_with_apples, concepts, 2
    )
    errs = concept_errors(samples_with_apples, fp, concepts)
    assert errors_in(errs["pear"]["detections"], "correct") == {"other concept"}
    inst, det = pooled(add_false_positives(base, samples, concepts, 2, seed=0))
    assert errors_in(inst, "found") == set()
    assert errors_in(det, "correct") == {"other concept", "background"}

    inst, det = pooled(erode_predictions(base, 3))  # small apples fall under IoU 0.5 or vanish
    assert inst["found"] < n and errors_in(inst, "found") <= {"poor mask", "missed"}
    assert errors_in(det, "correct") <= {"poor mask", "background"}
