"""Meta backends (sam2, sam3) on tiny checkpoints, and the scoped SAM3 CPU compatibility layer."""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest
import torch

from samgap_lib.data import synthetic_orchard
from samgap_lib.models import (
    CheckpointMismatchError,
    Exemplars,
    PromptSegmenter,
    load_sam2,
    load_sam3,
)
from samgap_lib.models.meta.sam3_cpu import PATCHED_ATTRIBUTES, patched, sam3_cpu_compat
from samgap_lib.models.testing import write_tiny_checkpoints

sam2_pkg = pytest.importorskip("sam2")
sam3_pkg = pytest.importorskip("sam3")

SIZES = [(90, 140), (140, 90), (64, 200)]


def image(hw=(90, 140), seed=0):
    return synthetic_orchard(1, seed=seed, size=hw)[0].image


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-meta")
    return write_tiny_checkpoints(root, seed=0, include=("meta-sam2", "meta-sam3", "hf-sam2"))


@pytest.fixture(scope="module")
def meta2(tiny):
    return load_sam2(tiny["meta-sam2"], backend="meta", device="cpu")


@pytest.fixture(scope="module")
def meta3(tiny):
    return load_sam3(tiny["meta-sam3"], backend="meta", device="cpu", threshold=0.0)


@pytest.fixture(scope="module")
def meta3t(tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no scikit-image: Meta's hole filling is skipped
        return load_sam3(tiny["meta-sam3"], backend="meta", role="tracker", device="cpu")


# ----------------------------------------------------------------------------- compat layer


def _current():
    import importlib

    out = {}
    for mod, cls, attr in PATCHED_ATTRIBUTES:
        owner = getattr(importlib.import_module(mod), cls)
        out[(mod, cls, attr)] = vars(owner).get(attr, "<inherited>")
    return out


def test_compat_layer_restores_everything():
    before = _current()
    assert before[("torch", "Tensor", "pin_memory")] == "<inherited>"
    with sam3_cpu_compat():
        inside = _current()
        assert all(inside[k] is not before[k] for k in before)
        with sam3_cpu_compat():  # nested use keeps the patches until the outer block ends
            pass
        assert _current() == inside
        if not torch.cuda.is_available():
            t = torch.zeros(2)
            assert t.pin_memory() is t
    assert _current() == before
    with pytest.raises(ZeroDivisionError), sam3_cpu_compat():
        raise ZeroDivisionError
    assert _current() == before


def test_patched_helper_restores():
    import types

    ns = types.SimpleNamespace(a=1)
    with patched(ns, a=2, b=3):
        assert (ns.a, ns.b) == (2, 3)
    assert ns.a == 1 and not hasattr(ns, "b")


@pytest.mark.skipif(torch.cuda.is_available(), reason="shows the CPU failure the layer fixes")
def test_meta_sam3_fails_on_cpu_without_the_layer():
    import sam3.model_builder as mb

    from samgap_lib.models.meta.reduced import reduced_factories
    from samgap_lib.models.meta.sam3 import default_bpe_path
    from samgap_lib.models.testing import META_SAM3_TEST_DIMS

    factories = reduced_factories(META_SAM3_TEST_DIMS)
    with pytest.raises((RuntimeError, AssertionError)), patched(mb, **factories):
        mb.build_sam3_image_model(
            bpe_path=default_bpe_path(), device="cpu", checkpoint_path=None, load_from_HF=False
        )


def test_tiny_meta_sam3_runs_on_cpu_with_finite_outputs(meta3):
    before = _current()
    img = image()
    meta3.set_image(img)
    out = meta3.segment(phrases=["apple", "pear"])
    assert _current() == before  # nothing stays patched after the calls
    for pred in out.values():
        assert len(pred) == 10 and np.isfinite(pred.scores).all() and np.isfinite(pred.boxes).all()
        assert pred.masks.shape == (10, 90, 140)
    assert all(torch.isfinite(p).all() for p in meta3.model.parameters())


# ----------------------------------------------------------------------------- SAM3 concept


def test_meta_sam3_batched_equals_official_sequential(meta3):
    img = image((100, 130), seed=3)
    meta3.set_image(img)
    phrases = ["apple", "ripe apple", "green apple", "pear", "leaf"]
    calls = []
    original = meta3.model.forward_grounding

    def counting(*a, **k):
        calls.append(k["find_input"].text_ids.numel())
        return original(*a, **k)

    meta3.model.forward_grounding = counting
    try:
        batched = meta3.segment(phrases=phrases)
    finally:
        meta3.model.forward_grounding = original
    assert calls == [len(phrases)]  # one batched grounding pass for all phrases
    for p in phrases:
        ref = meta3.segment_sequential(p)  # Meta's Sam3Processor.set_text_prompt
        order = torch.argsort(ref["scores"], descending=True)
        np.testing.assert_allclose(batched[p].scores, ref["scores"][order].numpy(), atol=1e-5)
        np.testing.assert_allclose(batched[p].boxes, ref["boxes"][order].numpy(), atol=1e-3)
        assert (batched[p].masks != ref["masks"][order][:, 0].numpy()).mean() < 1e-3


def test_meta_sam3_splits_phrases_on_a_cpu_by_the_pixel_decoders_map(meta3, monkeypatch):
    """The tiny model's map (32 channels x 32 x 32) takes every phrase in one pass; at 336 px with
    256 channels (96 x 96: 9 MiB a phrase) a pass takes two; a GPU or ``max_batch`` decides
    otherwise. Split or not, the predictions are the same."""
    assert meta3.phrases_per_pass(8) == 8
    monkeypatch.setattr(meta3, "resolution", 336)
    monkeypatch.setattr(meta3.model.segmentation_head.pixel_decoder, "hidden_dim", 256)
    assert meta3.phrases_per_pass(8) == 2
    monkeypatch.setattr(meta3, "device", torch.device("cuda"))
    assert meta3.phrases_per_pass(8) == 8
    monkeypatch.undo()
    img = image((100, 130), seed=4)
    meta3.set_image(img)
    phrases = ["apple", "ripe apple", "pear"]
    whole = meta3.segment(phrases=phrases)
    calls = []
    original = meta3.model.forward_grounding

    def counting(*a, **k):
        calls.append(k["find_input"].text_ids.numel())
        return original(*a, **k)

    meta3.model.forward_grounding = counting
    meta3.max_batch = 2
    try:
        split = meta3.segment(phrases=phrases)
    finally:
        meta3.model.forward_grounding = original
        meta3.max_batch = None
    assert calls == [2, 1]
    for p in phrases:
        np.testing.assert_allclose(split[p].scores, whole[p].scores, atol=1e-6)
        np.testing.assert_array_equal(split[p].masks, whole[p].masks)


@pytest.mark.parametrize("hw", SIZES)
def test_meta_sam3_exemplar_coordinates(meta3, hw):
    h, w = hw
    meta3.set_image(image(hw))
    seen = []
    original = meta3.model.forward_grounding

    def capture(*a, **k):
        g = k["geometric_prompt"]
        seen.append((g.box_embeddings.clone(), g.box_labels.clone(), g.box_mask.clone()))
        return original(*a, **k)

    meta3.model.forward_grounding = capture
    try:
        meta3.segment(exemplars=Exemplars([[0, 0, w, h], [w / 4, h / 2, w / 2, h]], [1, 0]))
    finally:
        meta3.model.forward_grounding = original
    boxes, labels, mask = seen[0]
    expect = np.array([[0.5, 0.5, 1.0, 1.0], [0.375, 0.75, 0.25, 0.5]], np.float32)
    np.testing.assert_allclose(boxes[:, 0].numpy(), expect, atol=1e-6)
    assert labels[:, 0].tolist() == [1, 0] and not mask.any()


def test_meta_sam3_exemplars_match_official_add_geometric_prompt(meta3):
    img = image((90, 140), seed=4)
    meta3.set_image(img)
    ours = meta3.segment(exemplars=Exemplars([[14, 9, 70, 45]]))["visual"]
    with sam3_cpu_compat():
        proc, state = meta3.processor, meta3._state
        proc.reset_all_prompts(state)
        ref = proc.add_geometric_prompt([42 / 140, 27 / 90, 56 / 140, 36 / 90], True, state)
    order = torch.argsort(ref["scores"], descending=True)
    np.testing.assert_allclose(ours.scores, ref["scores"][order].numpy(), atol=1e-5)


def test_meta_sam3_video_raises_clearly(tiny):
    with pytest.raises(NotImplementedError, match="CUDA-bound"):
        load_sam3(tiny["meta-sam3"], backend="meta", role="video", device="cpu")


# ----------------------------------------------------------------------------- SAM3 tracker


def official(seg, img, **kwargs):
    """Meta's own path on ``img``: ``Sam3Processor.set_image`` + ``Sam3Image.predict_inst``."""
    from PIL import Image

    with warnings.catch_warnings(), sam3_cpu_compat():
        warnings.simplefilter("ignore")  # Meta warns on every call it cannot fill holes on CPU
        state = seg.processor.set_image(Image.fromarray(img))
        return seg.model.predict_inst(state, **kwargs)


def _scipy_components(values):
    """Stand-in for Meta's scikit-image labelling (``connected_components_cpu_single``)."""
    from scipy import ndimage

    labels, num = ndimage.label(values.cpu().numpy())
    labels = torch.from_numpy(labels).long()
    sizes = torch.from_numpy(np.bincount(labels.reshape(-1).numpy(), minlength=num + 1))
    return labels, torch.where(labels > 0, sizes[labels], 0)


@pytest.fixture
def hole_filling(meta3t, monkeypatch):
    """Returns a setter: hole filling (Meta's max_hole_area) on or off for both paths."""
    import sam3.perflib.connected_components as cc

    if importlib.util.find_spec("skimage") is None:
        pytest.importorskip("scipy.ndimage")
        monkeypatch.setattr(cc, "connected_components_cpu_single", _scipy_components)
    post = meta3t.predictor._transforms

    def set_to(area):
        monkeypatch.setattr(post, "max_hole_area", float(area))
        monkeypatch.setattr(meta3t, "fill_holes", area > 0)

    return set_to


def test_meta_sam3_tracker_shapes(meta3t):
    assert isinstance(meta3t, PromptSegmenter) and meta3t.input_size == 112
    with warnings.catch_warnings(), pytest.raises(RuntimeError, match="set_image"):
        warnings.simplefilter("ignore")
        type(meta3t)(meta3t.model).predict(points=[[1, 1]])
    meta3t.set_image(image())
    r = meta3t.predict(points=[[[10, 20]], [[50, 60]]], boxes=[[0, 0, 50, 50], [10, 10, 80, 80]])
    assert r.masks.shape == (2, 3, 90, 140) and r.masks.dtype == bool
    assert r.scores.shape == (2, 3) and r.low_res_logits.shape == (2, 3, 32, 32)
    assert r.object_scores.shape == (2,) and np.isfinite(r.object_scores).all()
    assert 0 < r.masks.mean() < 1
    one = meta3t.predict(boxes=[0, 0, 50, 50], multimask=False)
    assert one.masks.shape == (1, 90, 140) and one.scores.shape == (1,)
    assert one.low_res_logits.shape == (1, 32, 32) and one.object_scores.shape == (1,)
    again = meta3t.predict(points=[[10, 20]], mask_input=one.low_res_logits[0], multimask=False)
    assert again.masks.shape == (1, 90, 140)
    masks_only = meta3t.predict(mask_input=r.low_res_logits[:, 0])
    assert masks_only.masks.shape == (2, 3, 90, 140)


@pytest.mark.parametrize("area", [0, 256])
def test_meta_sam3_tracker_matches_official_predict_inst(meta3t, hole_filling, area):
    hole_filling(area)  # 256: Meta's default, on both paths
    img = image((100, 130), seed=3)
    meta3t.set_image(img)
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, (4, 2, 2)).astype(np.float32)
    lab = np.array([[1, 0], [1, 1], [1, -1], [0, 1]])
    xy = rng.uniform(0, 60, (4, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 60, (4, 2))], 1).astype(np.float32)
    cases = [
        {"points": pts, "point_labels": lab},
        {"boxes": boxes},
        {"points": pts[:, :1], "boxes": boxes},
    ]
    for kw in cases:
        for multimask in (True, False):
            ours = meta3t.predict(**kw, multimask=multimask)
            for i in range(4):
                ref = official(
                    meta3t,
                    img,
                    point_coords=kw["points"][i] if "points" in kw else None,
                    point_labels=kw.get("point_labels", np.ones((4, 1), int))[i]
                    if "points" in kw
                    else None,
                    box=kw["boxes"][i] if "boxes" in kw else None,
                    multimask_output=multimask,
                )
                masks, scores, low = (x if multimask else x[0] for x in ref)
                np.testing.assert_allclose(ours.scores[i], scores, atol=1e-5)
                np.testing.assert_allclose(ours.low_res_logits[i], low, atol=1e-4)
                # crop-by-crop resize == Meta's interpolate-then-threshold, up to rounding
                assert (ours.masks[i] != masks.astype(bool)).sum() <= 2
    # a mask prompt from the previous call
    prev = meta3t.predict(points=pts[0, :1], multimask=False)
    ours = meta3t.predict(points=pts[0, :1], mask_input=prev.low_res_logits, multimask=False)
    ref = official(
        meta3t,
        img,
        point_coords=pts[0, :1],
        point_labels=np.array([1]),
        mask_input=prev.low_res_logits,
        multimask_output=False,
    )
    np.testing.assert_allclose(ours.low_res_logits[0], ref[2][0], atol=1e-4)
    assert (ours.masks[0] != ref[0][0].astype(bool)).sum() <= 2


def test_meta_sam3_tracker_batched_equals_one_at_a_time(meta3t):
    img = image((130, 70), seed=8)
    meta3t.set_image(img)
    rng = np.random.default_rng(2)
    xy = rng.uniform(5, 60, (11, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (11, 2))], 1).astype(np.float32)
    pts = rng.uniform(0, 70, (11, 1, 2)).astype(np.float32)
    calls = []
    hook = meta3t.predictor.model.sam_mask_decoder.register_forward_hook(
        lambda m, i, o: calls.append(o[0].shape[0])
    )
    meta3t.objects_per_call = 3
    try:
        res = meta3t.predict(points=pts, boxes=boxes)
    finally:
        meta3t.objects_per_call = 8
        hook.remove()
    assert calls == [3, 3, 3, 2]  # grouped decoder calls
    for i in range(11):
        one = meta3t.predict(points=pts[i], boxes=boxes[i])
        np.testing.assert_allclose(res.scores[i], one.scores[0], atol=1e-5)
        np.testing.assert_allclose(res.low_res_logits[i], one.low_res_logits[0], atol=1e-4)
        np.testing.assert_allclose(res.object_scores[i], one.object_scores[0], atol=1e-4)
        assert (res.masks[i] != one.masks[0]).sum() <= 2


@pytest.mark.parametrize("hw", SIZES)
def test_meta_sam3_tracker_coordinates_reach_model_scaled(meta3t, hw):
    h, w = hw
    s = meta3t.input_size
    img = image(hw)
    meta3t.set_image(img)
    seen = []
    enc = meta3t.predictor.model.sam_prompt_encoder
    original = enc.forward

    def capture(points=None, boxes=None, masks=None):
        seen.append(points[0].clone())
        return original(points=points, boxes=boxes, masks=masks)

    points = np.array([[[w - 1, h - 1]], [[w / 2, h / 4]]], np.float32)
    boxes = np.array([[0, 0, w, h], [w / 4, h / 2, w / 2, h]], np.float32)
    enc.forward = capture
    try:
        meta3t.predict(points=points, boxes=boxes)
        for i in range(2):  # what Meta's own predictor hands to the prompt encoder
            official(meta3t, img, point_coords=points[i], point_labels=np.array([1]), box=boxes[i])
    finally:
        enc.forward = original
    coords = seen[0].numpy()  # Meta puts the two box corners first, then the points
    scale = np.array([s / w, s / h], np.float32)
    np.testing.assert_allclose(coords[:, 0], np.array([[0, 0], [w / 4, h / 2]]) * scale, rtol=1e-5)
    np.testing.assert_allclose(coords[:, 1], np.array([[w, h], [w / 2, h]]) * scale, rtol=1e-5)
    np.testing.assert_allclose(coords[:, 2], points[:, 0] * scale, rtol=1e-5)
    np.testing.assert_allclose(np.concatenate([x.numpy() for x in seen[1:]]), coords, rtol=1e-6)


def test_meta_sam3_tracker_predict_batch_and_cache(meta3t):
    imgs = [image((90, 140), 6), image((120, 80), 7)]
    prompts = [{"points": [[[10, 20]], [[40, 50]]]}, {"boxes": [[5, 5, 60, 100]]}]
    meta3t.set_image(imgs[1])
    before = meta3t.predict(boxes=[[5, 5, 60, 100]])
    batch = meta3t.predict_batch(imgs, prompts)
    # the image set before stays set, and one encoding serves repeated calls identically
    after = meta3t.predict(boxes=[[5, 5, 60, 100]])
    np.testing.assert_array_equal(before.masks, after.masks)
    np.testing.assert_array_equal(before.low_res_logits, after.low_res_logits)
    for img, pr, res in zip(imgs, prompts, batch, strict=True):
        meta3t.set_image(img)
        ref = meta3t.predict(**pr)
        assert res.masks.shape == ref.masks.shape
        np.testing.assert_allclose(res.low_res_logits, ref.low_res_logits, atol=1e-4)
        np.testing.assert_allclose(res.scores, ref.scores, atol=1e-5)
    assert meta3t.predict_batch([], []) == []
    with pytest.raises(ValueError, match="prompt sets"):
        meta3t.predict_batch(imgs, prompts[:1])


def test_meta_sam3_tracker_round_trip(meta3t, tmp_path):
    again = write_tiny_checkpoints(tmp_path, seed=0, include=("meta-sam3",))["meta-sam3"]
    keys = torch.load(again, weights_only=True)["model"].keys()
    assert any(k.startswith("tracker.sam_mask_decoder.") for k in keys)  # Meta's sam3.pt layout
    assert any(k.startswith("detector.backbone.vision_backbone.sam2_convs.") for k in keys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m2 = load_sam3(again.parent, backend="meta", role="tracker", device="cpu")
    img = image((70, 90), 8)
    for s in (meta3t, m2):
        s.set_image(img)
    a, b = meta3t.predict(points=[[30, 30]]), m2.predict(points=[[30, 30]])
    np.testing.assert_array_equal(a.low_res_logits, b.low_res_logits)
    np.testing.assert_array_equal(a.masks, b.masks)


def test_meta_sam3_tracker_needs_tracker_weights(tiny, tmp_path):
    src = tiny["meta-sam3"]
    sd = torch.load(src, weights_only=True)["model"]
    folder = tmp_path / "no-tracker"
    folder.mkdir()
    kept = {k: v for k, v in sd.items() if not k.startswith("tracker.")}
    torch.save({"model": kept}, folder / "sam3_tiny.pt")
    side = json.loads(src.with_name("sam3_tiny.samgap.json").read_text())
    (folder / "sam3_tiny.samgap.json").write_text(json.dumps(side))
    with pytest.raises(CheckpointMismatchError, match="no SAM3 tracker weights.*role='concept'"):
        load_sam3(folder, backend="meta", role="tracker", device="cpu")
    # the same file still serves the concept role
    seg = load_sam3(folder, backend="meta", role="concept", device="cpu")
    assert seg.model.inst_interactive_predictor is None


@pytest.mark.parametrize("resolution", [84, 168])
def test_meta_sam3_tracker_any_resolution(resolution):
    from samgap_lib.models.archs import reset_parameters
    from samgap_lib.models.meta.sam3 import (
        MetaSam3TrackerSegmenter,
        build_meta_sam3,
        tracker_feat_sizes,
    )
    from samgap_lib.models.testing import META_SAM3_TEST_DIMS as TINY_DIMS

    torch.manual_seed(0)
    model = build_meta_sam3("cpu", dims={**TINY_DIMS, "resolution": resolution}, tracker=True)
    assert not torch.is_autocast_enabled("cuda")  # Meta's tracker leaves no autocast on
    reset_parameters(model, embeddings=False)
    grid = resolution // 14
    sizes = tracker_feat_sizes(resolution)
    assert sizes == [(4 * grid,) * 2, (2 * grid,) * 2, (grid,) * 2]
    assert model.inst_interactive_predictor._bb_feat_sizes == sizes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = MetaSam3TrackerSegmenter(model, {"resolution": resolution})
    img = image((90, 140), seed=2)
    seg.set_image(img)
    assert [tuple(f.shape[-2:]) for f in seg._features["high_res_feats"]] == sizes[:2]
    assert tuple(seg._features["image_embed"].shape[-2:]) == sizes[2]
    ours = seg.predict(points=[[40, 30]])
    assert ours.low_res_logits.shape == (1, 3, 4 * grid, 4 * grid)
    masks, scores, low = official(
        seg, img, point_coords=np.array([[40, 30]]), point_labels=np.array([1])
    )
    np.testing.assert_allclose(ours.low_res_logits[0], low, atol=1e-4)
    assert (ours.masks[0] != masks.astype(bool)).sum() <= 2
    with pytest.raises(ValueError, match="tracker was built for"):
        MetaSam3TrackerSegmenter(model, {"resolution": 1008})


# ----------------------------------------------------------------------------- SAM2 prompt


def test_meta_sam2_shapes_match_hf_kind(meta2, tiny):
    assert isinstance(meta2, PromptSegmenter)
    hf = load_sam2(tiny["hf-sam2"], device="cpu")
    img = image()
    for seg in (meta2, hf):
        seg.set_image(img)
        r = seg.predict(points=[[[10, 20]], [[50, 60]]], boxes=[[0, 0, 50, 50], [10, 10, 80, 80]])
        assert r.masks.shape == (2, 3, 90, 140) and r.masks.dtype == bool
        assert r.scores.shape == (2, 3) and r.low_res_logits.shape == (2, 3, 32, 32)
        one = seg.predict(boxes=[0, 0, 50, 50], multimask=False)
        assert one.masks.shape == (1, 90, 140) and one.scores.shape == (1,)
        again = seg.predict(points=[[10, 20]], mask_input=one.low_res_logits[0], multimask=False)
        assert again.masks.shape == (1, 90, 140)


@pytest.mark.parametrize("hw", SIZES)
def test_meta_sam2_coordinates_reach_model_scaled(meta2, hw):
    h, w = hw
    s = meta2.input_size
    meta2.set_image(image(hw))
    seen = []
    enc = meta2.model.sam_prompt_encoder
    original = enc.forward

    def capture(points=None, boxes=None, masks=None):
        seen.append(points[0].clone())
        return original(points=points, boxes=boxes, masks=masks)

    enc.forward = capture
    try:
        meta2.predict(
            points=[[[w - 1, h - 1]], [[w / 2, h / 4]]],
            boxes=[[0, 0, w, h], [w / 4, h / 2, w / 2, h]],
        )
    finally:
        enc.forward = original
    coords = seen[0].numpy()  # Meta puts the two box corners first, then the points
    scale = np.array([s / w, s / h], np.float32)
    np.testing.assert_allclose(coords[:, 0], np.array([[0, 0], [w / 4, h / 2]]) * scale, rtol=1e-5)
    np.testing.assert_allclose(coords[:, 1], np.array([[w, h], [w / 2, h]]) * scale, rtol=1e-5)
    np.testing.assert_allclose(
        coords[:, 2], np.array([[w - 1, h - 1], [w / 2, h / 4]]) * scale, rtol=1e-5
    )


def test_meta_sam2_batched_equals_official_sequential(meta2):
    img = image((100, 120), seed=5)
    meta2.set_image(img)
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 100, (5, 1, 2)).astype(np.float32)
    batched = meta2.predict(points=pts)
    for i in range(5):
        masks, scores, low = meta2.predictor.predict(
            point_coords=pts[i], point_labels=np.array([1])
        )
        np.testing.assert_allclose(batched.scores[i], scores, atol=1e-5)
        np.testing.assert_allclose(batched.low_res_logits[i], low, atol=1e-4)
        assert (batched.masks[i] != masks.astype(bool)).mean() < 1e-3


def test_meta_sam2_predict_batch_and_cache(meta2):
    imgs = [image((90, 140), 6), image((120, 80), 7)]
    prompts = [{"points": [[[10, 20]], [[40, 50]]]}, {"boxes": [[5, 5, 60, 100]]}]
    batch = meta2.predict_batch(imgs, prompts)
    for img, pr, res in zip(imgs, prompts, batch, strict=True):
        meta2.set_image(img)
        ref = meta2.predict(**pr)
        np.testing.assert_allclose(res.low_res_logits, ref.low_res_logits, atol=1e-4)
    # one encoding serves repeated calls with identical results
    a = meta2.predict(boxes=[[5, 5, 60, 100]])
    b = meta2.predict(boxes=[[5, 5, 60, 100]])
    np.testing.assert_array_equal(a.masks, b.masks)


def test_meta_sam2_round_trip(tiny, tmp_path, meta2):
    again = write_tiny_checkpoints(tmp_path, seed=0, include=("meta-sam2",))
    m2 = load_sam2(again["meta-sam2"], backend="meta", device="cpu")
    img = image((70, 90), 8)
    for s in (meta2, m2):
        s.set_image(img)
    np.testing.assert_array_equal(
        meta2.predict(points=[[30, 30]]).low_res_logits,
        m2.predict(points=[[30, 30]]).low_res_logits,
    )


def test_meta_sam2_groups_and_fast_resize_match_the_official_masks(meta2):
    img = image((130, 70), seed=8)
    meta2.set_image(img)
    rng = np.random.default_rng(2)
    xy = rng.uniform(5, 60, (11, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (11, 2))], 1).astype(np.float32)
    meta2.objects_per_call = 3
    try:
        res = meta2.predict(boxes=boxes, multimask=True)
    finally:
        meta2.objects_per_call = 8
    for i in range(11):
        masks, scores, _ = meta2.predictor.predict(box=boxes[i], multimask_output=True)
        np.testing.assert_allclose(res.scores[i], scores, atol=1e-5)
        # the crop-by-crop resize gives the official interpolate-then-threshold masks
        assert (res.masks[i] != masks.astype(bool)).sum() <= 2
