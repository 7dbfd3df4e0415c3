"""The seed paper's claims: every claim has a judge, and computed verdicts follow their numbers."""

import pytest

from samgap_lib.studies import claims as C


def test_every_claim_is_quoted_with_its_place():
    ids = [c.id for c in C.CLAIMS]
    assert len(ids) == len(set(ids)) >= 10
    assert all(c.quote and c.where for c in C.CLAIMS)
    assert {m["seed metric"] for m in C.METRIC_NAMES} >= {
        "Concept Recall",
        "Semantic Localization Error",
        "Open-Vocabulary F1",
        "Grounding Accuracy",
    }


def test_a_verdict_is_one_of_three():
    with pytest.raises(ValueError, match="verdict must be one of"):
        C.Verdict("probably", "no")


def test_one_phrase_follows_the_clicks_to_match():
    assert C.judge_one_phrase(6.0, 1).verdict == "supported"
    assert C.judge_one_phrase(None, 1).verdict == "supported"  # never matched within the budget
    assert C.judge_one_phrase(1.0, 1).verdict == "contradicted"


def test_attribute_split_follows_selectivity_and_recall():
    good = {"ripe apple": 1.0, "unripe apple": 0.95}
    assert (
        C.judge_attribute_split(good, {"ripe apple": 0.6, "unripe apple": 0.4}).verdict
        == "supported"
    )
    assert (
        C.judge_attribute_split(
            {**good, "unripe apple": 0.7}, {"ripe apple": 0.6, "unripe apple": 0.4}
        ).verdict
        == "contradicted"
    )
    assert (
        C.judge_attribute_split(good, {"ripe apple": 0.6, "unripe apple": 0.1}).verdict
        == "contradicted"
    )
    assert C.judge_attribute_split(good, good, labelled=False).verdict == "not testable here"


def test_zero_shot_follows_the_recall_gap():
    assert C.judge_zero_shot(0.6, 0.55).verdict == "supported"
    v = C.judge_zero_shot(0.6, 0.2)
    assert v.verdict == "contradicted" and v.would_test and "miniature" in v.because


def test_ambiguity_follows_touching_against_isolated():
    assert C.judge_ambiguity(0.55, 0.70).verdict == "supported"
    assert C.judge_ambiguity(0.70, 0.70).verdict == "contradicted"


def test_expected_finetuning_needs_the_paper_profile():
    assert C.judge_expected_finetuning(None).verdict == "not testable here"
    assert C.judge_expected_finetuning({"miou": 0.9, "boundary_f1": 0.9}).verdict == "supported"
    assert C.judge_expected_finetuning({"miou": 0.7, "boundary_f1": 0.9}).verdict == "contradicted"


def test_memory_and_mixed_precision_follow_their_measurements():
    assert C.judge_memory(22.6, 11.4).verdict == "contradicted"
    assert C.judge_memory(18.5, 11.4).verdict == "supported"
    assert C.judge_mixed_precision(None, 2.0).verdict == "not testable here"
    assert C.judge_mixed_precision(1.0, 2.1).verdict == "supported"
    assert C.judge_mixed_precision(1.0, 1.3).verdict == "contradicted"


def test_losses_and_dataset_follow_their_sources():
    assert C.judge_losses("class 20, box L1 5, GIoU 2, presence 20").verdict == "contradicted"
    assert C.judge_losses("mask 1, grounding 0.5, attribute 0.3").verdict == "supported"
    assert C.judge_dataset(1000, labelled_attributes=False).verdict == "contradicted"
    assert C.judge_dataset(1200, labelled_attributes=True).verdict == "supported"
