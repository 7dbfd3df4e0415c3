"""The evaluation layer agrees with itself: a checkpoint's card numbers (`evaluate_checkpoint`)
are what the finer-grained protocols give on the same images, as chapter 4 relies on.

Untrained orchard-size models (random initialisation, saved as a user saves a checkpoint) answer
badly but deterministically; the identities hold whatever the answers."""

from __future__ import annotations

import numpy as np
import pytest
from _training_helpers import tiny_config

from samgap_lib.evaluation import (
    evaluate_checkpoint,
    first_click_candidates,
    held_out_samples,
    instance_ious,
    predict_concepts,
    score_concepts,
)
from samgap_lib.metrics import candidate_selection, concept_errors
from samgap_lib.models import load_sam2, load_sam3
from samgap_lib.prompts import concept_of
from samgap_lib.training import build_model, load_config

N = 3  # held-out images


def _saved(model_kind: str, tmp_path, **over):
    cfg = load_config(tiny_config(model_kind, tmp_path / "run"))
    model, processor = build_model(cfg)
    for k, v in over.items():
        setattr(model.config, k, v)
    folder = tmp_path / model_kind
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def sam2_folder(tmp_path_factory):
    spec = {"radius": 1.5, "logit": 10.0, "first_radius": 3.0}  # prompts drawn, as orchard-tiny
    return _saved("sam2", tmp_path_factory.mktemp("sam2"), samgap_dense_prompt=spec)


@pytest.fixture(scope="module")
def sam3_folder(tmp_path_factory):
    return _saved("sam3", tmp_path_factory.mktemp("sam3"))


def test_sam2_card_means_are_the_means_of_the_instance_rows(sam2_folder):
    card = evaluate_checkpoint("sam2", sam2_folder, n_images=N)
    per = instance_ious(load_sam2(sam2_folder, device="cpu"), held_out_samples("sam2", N), 3)
    assert per["click"][:, 0].mean() == pytest.approx(card["click_mIoU@1"], abs=1e-12)
    assert per["model"].mean() == pytest.approx(card["box_mIoU"], abs=1e-12)
    assert len(per["model"]) == card["n_instances"]


def test_sam2_first_click_keeps_the_candidate_the_card_scores(sam2_folder):
    """The first RITM click asks for candidates and keeps the one the IoU head rates best:
    `candidate_selection`'s confident mIoU is the card's click mIoU@1."""
    card = evaluate_checkpoint("sam2", sam2_folder, n_images=N)
    seg = load_sam2(sam2_folder, device="cpu")
    first = []
    for s in held_out_samples("sam2", N):
        if s.instances:
            seg.set_image(s.image)
            first.append(first_click_candidates(seg, s.masks))
    sel = candidate_selection(
        np.concatenate([f["ious"] for f in first]), np.concatenate([f["scores"] for f in first])
    )
    assert sel["confident_mIoU"] == pytest.approx(card["click_mIoU@1"], abs=1e-6)


def test_sam3_card_recall_and_precision_from_errors_and_per_image_counts(sam3_folder):
    """Every answer kept at score 0, then counted at the card's 0.5: the error breakdown's
    found share and the per-image counts both give the card's recall and precision."""
    phrases = ["ripe apple", "unripe apple", "apple", "pear"]
    card = evaluate_checkpoint("sam3", sam3_folder, n_images=N)
    samples = held_out_samples("sam3", N)
    preds = predict_concepts(load_sam3(sam3_folder, device="cpu", threshold=0.0), samples, phrases)
    errors = concept_errors(samples, preds, [concept_of(p) for p in phrases])
    scored = score_concepts(preds, samples, phrases)
    for phrase in ("ripe apple", "unripe apple", "apple"):
        e = errors[phrase]["instances"]
        assert e["found"] / sum(e.values()) == pytest.approx(card[f"recall[{phrase}]"], abs=1e-12)
        c = scored["per_image"][phrase]
        assert c["found"].sum() / c["named"].sum() == pytest.approx(
            card[f"recall[{phrase}]"], abs=1e-12
        )
        for what in ("recall", "precision"):
            assert scored["summary"][f"{what}[{phrase}]"] == pytest.approx(
                card[f"{what}[{phrase}]"], abs=1e-12, nan_ok=True
            )
