"""transformers backend on tiny checkpoints: shapes, coordinates, batching, caching, round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samgap_lib.data import synthetic_orchard
from samgap_lib.models import (
    ConceptPrediction,
    ConceptSegmenter,
    Exemplars,
    PromptResult,
    PromptSegmenter,
    load_sam2,
    load_sam3,
)
from samgap_lib.models.base import check_prompts
from samgap_lib.models.testing import write_tiny_checkpoints

SIZES = [(90, 140), (140, 90), (64, 200)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-hf")
    return write_tiny_checkpoints(root, seed=0, include=("hf-sam2", "hf-sam3", "hf-sam3-tracker"))


@pytest.fixture(scope="module")
def prompt_models(tiny):
    return {
        "sam2": load_sam2(tiny["hf-sam2"], device="cpu"),
        "sam3-tracker": load_sam3(tiny["hf-sam3-tracker"], role="tracker", device="cpu"),
    }


@pytest.fixture(scope="module")
def concept(tiny):
    return load_sam3(tiny["hf-sam3"], device="cpu", threshold=0.0)


def image(hw=(90, 140), seed=0):
    return synthetic_orchard(1, seed=seed, size=hw)[0].image


def capture_forward(model):
    """Wrap ``model.forward`` and record its keyword arguments."""
    calls = []
    original = model.forward

    def wrapper(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    model.forward = wrapper
    return calls, original


@pytest.mark.parametrize("name", ["sam2", "sam3-tracker"])
def test_prompt_shapes(prompt_models, name):
    seg = prompt_models[name]
    assert isinstance(seg, PromptSegmenter)
    img = image()
    seg.set_image(img)
    r = seg.predict(points=[[[10, 20]], [[50, 60]], [[100, 70]]])
    assert isinstance(r, PromptResult)
    assert r.masks.shape == (3, 3, 90, 140) and r.masks.dtype == bool
    assert r.scores.shape == (3, 3) and r.low_res_logits.shape[:2] == (3, 3)
    one = seg.predict(points=[[10, 20], [30, 40]], point_labels=[1, 0], multimask=False)
    assert one.masks.shape == (1, 90, 140) and one.scores.shape == (1,)
    box = seg.predict(boxes=[5, 5, 60, 50], multimask=False)
    assert box.masks.shape == (1, 90, 140)
    best_m, best_s = r.best()
    assert best_m.shape == (3, 90, 140) and np.allclose(best_s, r.scores.max(1))
    # iterative click: previous low-res logits as mask input
    again = seg.predict(points=[[10, 20]], mask_input=one.low_res_logits[0], multimask=False)
    assert again.masks.shape == (1, 90, 140)
    assert np.isfinite(r.low_res_logits).all()


@pytest.mark.parametrize("name", ["sam2", "sam3-tracker"])
@pytest.mark.parametrize("hw", SIZES)
def test_prompt_coordinates_reach_model_scaled(prompt_models, name, hw):
    seg = prompt_models[name]
    s = seg.input_size
    h, w = hw
    seg.set_image(image(hw))
    pts = np.array([[[w - 1, h - 1], [0, 0]], [[w / 2, h / 4], [3, 7]]], np.float32)
    boxes = np.array([[0, 0, w, h], [w / 4, h / 2, w / 2, h]], np.float32)
    calls, original = capture_forward(seg.model)
    try:
        seg.predict(points=pts, point_labels=[[1, 0], [1, 1]], boxes=boxes)
    finally:
        seg.model.forward = original
    got_pts = calls[0]["input_points"].numpy()[0]
    got_boxes = calls[0]["input_boxes"].numpy()[0]
    scale = np.array([s / w, s / h], np.float32)
    np.testing.assert_allclose(got_pts, pts * scale, rtol=1e-6)
    np.testing.assert_allclose(got_boxes, boxes * np.tile(scale, 2), rtol=1e-6)
    # the same numbers transformers' own processor produces
    proc = seg.processor(
        images=image(hw),
        input_points=[pts.tolist()],
        input_labels=[[[1, 0], [1, 1]]],
        input_boxes=[boxes.tolist()],
        return_tensors="pt",
    )
    np.testing.assert_allclose(got_pts, proc["input_points"].numpy()[0], rtol=1e-5)
    np.testing.assert_allclose(got_boxes, proc["input_boxes"].numpy()[0], rtol=1e-5)


@pytest.mark.parametrize("name", ["sam2", "sam3-tracker"])
def test_prompt_batched_equals_sequential(prompt_models, name):
    seg = prompt_models[name]
    seg.set_image(image((100, 120), seed=1))
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, (6, 2, 2)).astype(np.float32)
    labels = rng.integers(0, 2, (6, 2))
    boxes = np.sort(rng.uniform(0, 100, (6, 2, 2)), axis=1).transpose(0, 2, 1).reshape(6, 4)
    boxes = boxes[:, [0, 2, 1, 3]]
    batched = seg.predict(points=pts, point_labels=labels, boxes=boxes)
    for i in range(6):
        single = seg.predict(points=pts[i], point_labels=labels[i], boxes=boxes[i])
        np.testing.assert_allclose(single.low_res_logits[0], batched.low_res_logits[i], atol=1e-4)
        np.testing.assert_allclose(single.scores[0], batched.scores[i], atol=1e-5)
    # per-object mask inputs go on the batch axis; same as one at a time
    mi = batched.low_res_logits[:, 0]
    with_masks = seg.predict(points=pts, point_labels=labels, mask_input=mi, multimask=False)
    for i in (0, 3):
        single = seg.predict(
            points=pts[i], point_labels=labels[i], mask_input=mi[i], multimask=False
        )
        np.testing.assert_allclose(
            single.low_res_logits[0], with_masks.low_res_logits[i], atol=1e-4
        )


@pytest.mark.parametrize("name", ["sam2", "sam3-tracker"])
def test_cached_embeddings_equal_full_forward(prompt_models, name):
    seg = prompt_models[name]
    img = image((80, 110), seed=2)
    seg.set_image(img)
    cached = seg.predict(points=[[[20, 30]], [[60, 40]]], boxes=[[5, 5, 50, 60], [40, 10, 100, 70]])
    prompts = check_prompts([[[20, 30]], [[60, 40]]], None, [[5, 5, 50, 60], [40, 10, 100, 70]])
    inputs = seg.model_inputs(prompts, img.shape[:2])
    with torch.inference_mode():
        full = seg.model(pixel_values=seg.preprocess([img]), **inputs)
    np.testing.assert_allclose(
        full.pred_masks.numpy().reshape(cached.low_res_logits.shape).clip(-32, 32),
        cached.low_res_logits,
        atol=1e-4,
    )
    # embeddings reused through the public accessors give identical results
    emb, hw = seg.image_embeddings
    seg.set_image(image((80, 110), seed=3))
    seg.set_image_embeddings(emb, hw)
    again = seg.predict(points=[[[20, 30]], [[60, 40]]], boxes=[[5, 5, 50, 60], [40, 10, 100, 70]])
    np.testing.assert_array_equal(again.masks, cached.masks)


@pytest.mark.parametrize("name", ["sam2", "sam3-tracker"])
def test_predict_batch_equals_per_image(prompt_models, name):
    seg = prompt_models[name]
    imgs = [image((90, 140), 4), image((120, 80), 5)]
    prompts = [{"points": [[[10, 20]], [[40, 50]]]}, {"boxes": [[5, 5, 60, 100]]}]
    batch = seg.predict_batch(imgs, prompts)
    for img, pr, res in zip(imgs, prompts, batch, strict=True):
        seg.set_image(img)
        ref = seg.predict(**pr)
        assert res.masks.shape == ref.masks.shape
        np.testing.assert_allclose(res.low_res_logits, ref.low_res_logits, atol=1e-4)


def test_prompt_errors(prompt_models):
    seg = prompt_models["sam2"]
    seg.set_image(image())
    with pytest.raises(ValueError, match="no prompt"):
        seg.predict()
    with pytest.raises(ValueError, match="point_labels"):
        seg.predict(points=[[1, 2]], point_labels=[1, 1])
    with pytest.raises(ValueError, match="one box per object"):
        seg.predict(points=[[[1, 2]], [[3, 4]]], boxes=[[0, 0, 5, 5]])
    with pytest.raises(ValueError, match="xyxy"):
        seg.predict(boxes=[10, 10, 5, 5])
    with pytest.raises(ValueError, match="RGB"):
        seg.set_image(np.zeros((10, 10), np.uint8))


# ----------------------------------------------------------------------------- concept role


def test_concept_shapes_and_scores(concept):
    assert isinstance(concept, ConceptSegmenter)
    img = image((90, 140))
    out = concept.segment(img, phrases=["apple", "ripe apple", "pear"])
    assert list(out) == ["apple", "ripe apple", "pear"]
    for pred in out.values():
        assert isinstance(pred, ConceptPrediction)
        k = len(pred)
        assert pred.masks.shape == (k, 90, 140) and pred.masks.dtype == bool
        assert pred.boxes.shape == (k, 4) and pred.scores.shape == (k,)
        assert 0.0 <= pred.presence <= 1.0
        assert (np.diff(pred.scores) <= 0).all()
        assert (pred.scores <= pred.presence + 1e-6).all()  # sigmoid(logit) x presence
    # threshold: 1.0 keeps nothing, default (0.0 here) keeps every query
    assert len(out["apple"]) == concept.model.config.detr_decoder_config.num_queries
    none = concept.segment(phrases="apple", threshold=1.0)
    assert len(none["apple"]) == 0 and none["apple"].masks.shape == (0, 90, 140)


def test_concept_batched_equals_sequential_and_one_image_encoding(concept):
    img = image((100, 130), seed=6)
    phrases = ["apple", "ripe apple", "green apple", "pear"]
    calls = []
    original = concept.model.get_vision_features

    def counting(*a, **k):
        calls.append(1)
        return original(*a, **k)

    concept.model.get_vision_features = counting
    fwd_calls, fwd_orig = capture_forward(concept.model)
    try:
        batched = concept.segment(img, phrases=phrases)
    finally:
        concept.model.get_vision_features = original
        concept.model.forward = fwd_orig
    assert len(calls) == 1 and len(fwd_calls) == 1  # one image encoding, one batched forward
    assert fwd_calls[0]["input_ids"].shape[0] == len(phrases)
    for p in phrases:
        single = concept.segment(phrases=[p])[p]
        np.testing.assert_allclose(single.scores, batched[p].scores, atol=1e-5)
        np.testing.assert_allclose(single.boxes, batched[p].boxes, atol=1e-3)
        assert (single.masks != batched[p].masks).mean() < 1e-3


@pytest.mark.parametrize("hw", SIZES)
def test_concept_exemplar_coordinates(concept, hw):
    h, w = hw
    img = image(hw)
    ex = Exemplars(boxes=[[0, 0, w, h], [w / 4, h / 2, w / 2, h]], labels=[1, 0])
    calls, original = capture_forward(concept.model)
    try:
        out = concept.segment(img, exemplars=ex)
    finally:
        concept.model.forward = original
    assert list(out) == ["visual"]
    got = calls[0]["input_boxes"].numpy()[0]
    expect = np.array(
        [[0.5, 0.5, 1.0, 1.0], [0.375, 0.75, 0.25, 0.5]], np.float32
    )  # cxcywh / image
    np.testing.assert_allclose(got, expect, atol=1e-6)
    np.testing.assert_array_equal(calls[0]["input_boxes_labels"].numpy()[0], [1, 0])
    # what transformers' Sam3Processor gives for the same pixel boxes
    proc = concept.processor(
        images=img,
        text="visual",
        input_boxes=[ex.boxes.tolist()],
        input_boxes_labels=[[1, 0]],
        return_tensors="pt",
    )
    np.testing.assert_allclose(got, proc["input_boxes"].numpy()[0], atol=1e-6)


def test_concept_exemplars_with_phrases_batched_equals_sequential(concept):
    img = image((90, 140), seed=7)
    ex_a = Exemplars([[10, 10, 40, 50]])
    ex_b = Exemplars([[20, 20, 60, 60], [70, 10, 100, 40]], [1, 0])
    out = concept.segment(img, phrases=["apple"], exemplars={"ripe apple": ex_a, "pear": ex_b})
    assert list(out) == ["apple", "ripe apple", "pear"]
    for p, ex in (("ripe apple", ex_a), ("pear", ex_b)):
        single = concept.segment(phrases=[p], exemplars=ex)[p]
        np.testing.assert_allclose(single.scores, out[p].scores, atol=1e-5)


def test_concept_errors(concept, tiny):
    with pytest.raises(ValueError, match="no concept prompt"):
        concept.segment(image(), phrases=[])
    with pytest.raises(ValueError, match="non-empty"):
        concept.segment(image(), phrases=[""])
    with pytest.raises(ValueError, match="labels"):
        Exemplars([[0, 0, 1, 1]], [2])
    fresh = load_sam3(tiny["hf-sam3"], device="cpu")
    with pytest.raises(RuntimeError, match="set_image"):
        fresh.segment(phrases="apple")


# ----------------------------------------------------------------------------- round trips


def test_save_load_round_trip(tiny, tmp_path, prompt_models, concept):
    img = image((70, 90), seed=8)
    seg = prompt_models["sam2"]
    seg.model.save_pretrained(tmp_path / "sam2")
    seg.processor.save_pretrained(tmp_path / "sam2")
    again = load_sam2(tmp_path / "sam2", device="cpu")
    for s in (seg, again):
        s.set_image(img)
    a, b = seg.predict(points=[[30, 30]]), again.predict(points=[[30, 30]])
    np.testing.assert_array_equal(a.low_res_logits, b.low_res_logits)
    concept.model.save_pretrained(tmp_path / "sam3")
    concept.processor.save_pretrained(tmp_path / "sam3")
    c2 = load_sam3(tmp_path / "sam3", device="cpu", threshold=0.0)
    x, y = concept.segment(img, phrases="apple"), c2.segment(img, phrases="apple")
    np.testing.assert_array_equal(x["apple"].scores, y["apple"].scores)
    # the same seed writes the same weights
    again = write_tiny_checkpoints(tmp_path / "again", seed=0, include=("hf-sam2",))
    s3 = load_sam2(again["hf-sam2"], device="cpu")
    s3.set_image(img)
    np.testing.assert_array_equal(s3.predict(points=[[30, 30]]).low_res_logits, a.low_res_logits)


def test_tiny_models_are_fast(prompt_models, concept):
    import time

    img = image((128, 128))
    for seg in prompt_models.values():
        seg.set_image(img)
        t = time.perf_counter()
        seg.set_image(img)
        seg.predict(points=[[[10, 10]]] * 5)
        assert time.perf_counter() - t < 0.1
    concept.segment(img, phrases=["a"])
    t = time.perf_counter()
    concept.segment(img, phrases=["apple", "pear"])
    assert time.perf_counter() - t < 0.1


@pytest.mark.parametrize("name", ["sam2", "sam3-tracker"])
def test_objects_per_call_groups_give_the_same_result(prompt_models, name):
    seg = prompt_models[name]
    assert seg.objects_per_call == 8  # CPU default
    seg.set_image(image((110, 90), seed=3))
    rng = np.random.default_rng(4)
    pts = rng.uniform(0, 90, (19, 1, 2)).astype(np.float32)
    try:
        seg.objects_per_call = None
        whole = seg.predict(points=pts)
        seg.objects_per_call = 4
        grouped = seg.predict(points=pts)
    finally:
        seg.objects_per_call = 8
    assert grouped.masks.shape == whole.masks.shape == (19, 3, 110, 90)
    np.testing.assert_allclose(grouped.low_res_logits, whole.low_res_logits, atol=1e-4)
    np.testing.assert_allclose(grouped.scores, whole.scores, atol=1e-5)
    assert (grouped.masks != whole.masks).mean() < 1e-4
