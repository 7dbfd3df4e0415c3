"""Exemplar prompts against the phrase (`samgap_lib.evaluation.evaluate_exemplar_modes`) on a
model-free segmenter whose answers are known: it segments exactly the boxes it is shown, and
for a phrase a fixed set of instances."""

import numpy as np
import pytest

from samgap_lib.data import Instance, Sample
from samgap_lib.evaluation import (
    EXEMPLAR_MODES,
    evaluate_exemplar_modes,
    exemplar_modes_table,
    exemplar_order,
    exemplar_prompt,
)
from samgap_lib.models.base import ConceptPrediction, concept_prompts
from samgap_lib.prompts import boxes_from_masks, concept_of

H = W = 40


def _rect(y0, x0, s=6):
    m = np.zeros((H, W), bool)
    m[y0 : y0 + s, x0 : x0 + s] = True
    return m


def _sample(image_id, ripeness):
    """Apples on a grid, with the given ripeness each."""
    inst = [
        Instance(_rect(2 + 9 * (k // 4), 2 + 9 * (k % 4)), {"ripeness": r}, instance_id=k)
        for k, r in enumerate(ripeness)
    ]
    return Sample(np.zeros((H, W, 3), np.uint8), inst, image_id=image_id)


class BoxEcho:
    """Segments the positive exemplar boxes it is shown (score 0.9 each) and, for a phrase, the
    instances ``phrase_finds[phrase, image_id]`` (indices into the image's instances); nothing
    else."""

    backend = "fake"

    def __init__(self, samples, phrase_finds):
        self.by_image = {id(s.image): s for s in samples}
        self.phrase_finds = phrase_finds
        self.sample = None

    def set_image(self, image):
        self.sample = self.by_image[id(image)]

    def segment(self, image=None, phrases=None, exemplars=None, threshold=None):
        out = {}
        for phrase, ex in concept_prompts(phrases, exemplars):
            masks = []
            if phrase != "visual":
                found = self.phrase_finds.get((phrase, self.sample.image_id), [])
                masks += [self.sample.instances[i].mask for i in found]
            if ex is not None:
                for (x0, y0, x1, y1), lab in zip(ex.boxes.astype(int), ex.labels, strict=True):
                    m = np.zeros((H, W), bool)
                    m[y0:y1, x0:x1] = lab == 1
                    if lab == 1 and not any((m == q).all() for q in masks):
                        masks.append(m)
            stack = np.stack(masks) if masks else np.zeros((0, H, W), bool)
            n = len(stack)
            out[phrase] = ConceptPrediction(
                phrase, stack, boxes_from_masks(stack).reshape(-1, 4), np.full(n, 0.9), 0.9
            )
        return out


def test_exemplars_are_boxes_of_denoted_instances_chosen_reproducibly_and_nested():
    s = _sample("a", ["ripe", "unripe", "ripe", "ripe", "unripe", "ripe"])
    ripe = concept_of("ripe apple")
    order = exemplar_order(s, ripe, seed=0)
    assert sorted(order.tolist()) == [0, 2, 3, 5]
    assert np.array_equal(order, exemplar_order(s, ripe, seed=0))
    assert any(not np.array_equal(order, exemplar_order(s, ripe, seed=k)) for k in range(1, 6))
    one, i1 = exemplar_prompt(s, ripe, 1, seed=0)
    three, i3 = exemplar_prompt(s, ripe, 3, seed=0)
    assert list(i1) == list(i3[:1]) and len(i3) == 3
    want = boxes_from_masks(np.stack([s.instances[i].mask for i in i3]))
    np.testing.assert_array_equal(three.boxes, want)
    assert (three.labels == 1).all()
    # fewer instances than asked: all of them; none: no prompt
    _, i9 = exemplar_prompt(s, concept_of("unripe apple"), 9)
    assert sorted(i9.tolist()) == [1, 4]
    ex, idx = exemplar_prompt(s, concept_of("pear"), 3)
    assert ex is None and len(idx) == 0
    assert exemplar_prompt(s, ripe, 0)[0] is None


def test_modes_count_prompts_and_score_the_shown_instances_as_sam3_does():
    samples = [
        _sample(0, ["ripe"] * 5),  # 5 apples
        _sample(1, ["ripe", "ripe"]),  # 2 apples: 3 exemplars shows both
        _sample(2, []),  # no apple: not asked
    ]
    # the phrase finds the first two apples of image 0 and nothing on image 1
    seg = BoxEcho(samples, {("apple", 0): [0, 1]})
    res = evaluate_exemplar_modes(seg, samples, ["apple"], seed=0)
    by = {(r["mode"], r["image_id"]): r for r in res["rows"]}
    assert {r["image_id"] for r in res["rows"]} == {0, 1}
    assert set(EXEMPLAR_MODES) == {m for m, _ in by}
    # prompts: 1 per phrase, 1 per box actually given
    assert by[("phrase only", 0)]["prompts"] == 1
    assert by[("phrase + 3 exemplars", 0)]["prompts"] == 4
    assert by[("phrase + 3 exemplars", 1)]["prompts"] == 3  # only 2 apples to show
    assert by[("3 exemplars only", 1)]["prompts"] == 2
    # phrase only on image 0: 2 of 5 found exactly: PQ = 2 / (2 + 3/2)
    assert by[("phrase only", 0)]["PQ"] == pytest.approx(2 / 3.5)
    assert by[("phrase only", 1)]["PQ"] == 0.0
    # 1 exemplar only: the shown apple comes back, so it counts (SAM3's protocol), nothing else
    assert by[("1 exemplar only", 0)]["PQ"] == pytest.approx(1 / 3)
    assert by[("1 exemplar only", 0)]["PQ_others"] == 0.0  # beyond what was shown: nothing
    # phrase + 1 exemplar on image 0: the phrase's two plus the shown one unless it is one of them
    shown = by[("phrase + 1 exemplar", 0)]["exemplars"][0]
    tp = 2 + (shown not in (0, 1))
    assert by[("phrase + 1 exemplar", 0)]["PQ"] == pytest.approx(tp / (tp + (5 - tp) / 2))
    others = 2 - (shown in (0, 1))  # the phrase's finds that were not shown
    assert by[("phrase + 1 exemplar", 0)]["PQ_others"] == pytest.approx(
        others / (others + (4 - others) / 2)
    )
    # every apple of image 1 shown: nothing left to find, PQ_others undefined
    assert np.isnan(by[("3 exemplars only", 1)]["PQ_others"])
    summ = {s["mode"]: s for s in res["summary"]}
    assert summ["1 exemplar only"]["recall"] == pytest.approx(2 / 7)
    assert summ["1 exemplar only"]["precision"] == 1.0
    assert summ["1 exemplar only"]["recall_others"] == 0.0
    assert summ["3 exemplars only"]["recall"] == pytest.approx(5 / 7)
    assert summ["3 exemplars only"]["images_others"] == 1
    assert summ["phrase only"]["prompts"] == 1.0
    assert summ["3 exemplars only"]["prompts"] == pytest.approx((3 + 2) / 2)
    assert np.isnan(summ["phrase only"]["cgF1"])  # presence unmeasured on positive images
    table = exemplar_modes_table(res)
    assert [r["mode"] for r in table] == list(EXEMPLAR_MODES)


def test_attribute_phrase_and_reproducibility():
    samples = [_sample(k, ["ripe", "unripe", "unripe", "ripe", "unripe"]) for k in range(3)]
    seg = BoxEcho(samples, {})
    a = evaluate_exemplar_modes(seg, samples, ["unripe apple"], seed=1)
    b = evaluate_exemplar_modes(seg, samples, ["unripe apple"], seed=1)
    assert repr(a["rows"]) == repr(b["rows"])  # NaN included
    for r in a["rows"]:
        assert r["n_instances"] == 3
        assert all(
            samples[0].instances[i].attributes["ripeness"] == "unripe" for i in r["exemplars"]
        )
    summ = {s["mode"]: s for s in a["summary"]}
    assert summ["3 exemplars only"]["recall"] == 1.0 and summ["phrase only"]["recall"] == 0.0
    with pytest.raises(ValueError, match="neither a phrase nor an exemplar"):
        evaluate_exemplar_modes(seg, samples, ["apple"], modes={"nothing": (False, 0)})
