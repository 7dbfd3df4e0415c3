"""SAM2 video training: the batched memory path against transformers' own video inference,
objects decoded together against one at a time, the clip loss against a per-frame reference,
clip sampling, and the tracking evaluation on tracks whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _training_helpers import tiny_config

from samgap_lib.data import synthetic_orchard_clips
from samgap_lib.evaluation import track_clips, tracking_summary
from samgap_lib.models.archs import orchard_sam2_config, orchard_sam2_video_config
from samgap_lib.models.base import VideoResult
from samgap_lib.models.hf.sam2_memory import MemoryTracker
from samgap_lib.training import load_config
from samgap_lib.training.init import build_model
from samgap_lib.training.trainer import make_task

torch.set_num_threads(1)


def _video_model(seed: int = 0, cfg=None):
    import transformers as tf

    from samgap_lib.models.archs import image_processor, reset_parameters

    torch.manual_seed(seed)
    cfg = cfg or orchard_sam2_video_config(orchard_sam2_config("orchard-m", 64), memory_layers=1)
    model = tf.Sam2VideoModel(cfg)
    reset_parameters(model)
    with torch.no_grad():  # objects present, so the masks are not all -1024
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(3.0)
    proc = tf.Sam2Processor(image_processor=image_processor("sam2", 64, 16))
    return model.eval(), proc


def _clip():
    clip = synthetic_orchard_clips(1, 4, seed=2, size=(64, 64), pan=(6, 6))[0]
    frames = np.stack([f.image for f in clip])
    first = [i for i in clip[0].instances if i.mask.sum() >= 30][:3]
    pts = np.array(
        [
            [[float(np.nonzero(i.mask)[1].mean()), float(np.nonzero(i.mask)[0].mean())]]
            for i in first
        ],
        np.float32,
    )
    return frames, pts, np.ones((len(first), 1), np.int64)


def test_memory_path_matches_transformers_video_inference():
    """One object: MemoryTracker's mask logits on every frame equal those of Sam2VideoModel's
    own inference session, prompted by the same click on frame 0 (transformers keeps memories
    in bfloat16, MemoryTracker in float32: equal to 1e-4 here). The model is 128 wide:
    transformers' inference stacks object pointers wrongly when the width equals the memory's
    64 channels (orchard-m), a case MemoryTracker handles (next test)."""
    import transformers as tf

    from samgap_lib.models.archs import test_sam2_video_config

    model, proc = _video_model(cfg=test_sam2_video_config(64))
    frames, pts, lab = _clip()
    tracker = MemoryTracker(model, proc, device="cpu")
    tracker.propagate(frames, pts[:1], lab[:1])
    vproc = tf.Sam2VideoProcessor(
        image_processor=proc.image_processor,
        video_processor=tf.Sam2VideoVideoProcessor(size={"height": 64, "width": 64}),
    )
    session = vproc.init_video_session(
        video=list(frames), inference_device="cpu", dtype=torch.float32
    )
    vproc.add_inputs_to_inference_session(
        session,
        frame_idx=0,
        obj_ids=[1],
        input_points=[pts[:1].tolist()],
        input_labels=[lab[:1].tolist()],
    )
    with torch.inference_mode():
        ref = torch.stack(
            [
                o.pred_masks.float().reshape(*o.pred_masks.shape[-2:])
                for o in model.propagate_in_video_iterator(session, start_frame_idx=0)
            ]
        )
    ours = tracker.logits[:, 0]
    assert ref.shape == ours.shape == (len(frames), 16, 16)
    assert ref.abs().max() < 100  # the object is present: real logits, not the -1024 of absence
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)
    assert (ours[1:] - ours[:1]).abs().max() > 1e-3  # the memory changes the later frames


def test_objects_tracked_together_equal_one_at_a_time():
    model, proc = _video_model()
    frames, pts, lab = _clip()
    tracker = MemoryTracker(model, proc, device="cpu")
    together = tracker.propagate(frames, pts, lab)
    for k in range(len(pts)):
        alone = tracker.propagate(frames, pts[k : k + 1], lab[k : k + 1])
        np.testing.assert_array_equal(together.masks[:, k], alone.masks[:, 0])
        np.testing.assert_allclose(together.scores[:, k], alone.scores[:, 0], atol=1e-4)


def test_clip_loss_equals_per_frame_reference(tmp_path):
    """The clip loss (no corrections, eval mode) is the mean over frames of SAM2's mask loss of
    the present objects plus the object-score BCE, each frame computed here from the tracker's
    own decoding of the same clip."""
    from samgap_lib.models.hf.sam2_memory import (
        MemoryBank,
        clip_features,
        encode_memory,
        frame_maps,
        head,
        memory_maps,
        object_pointer,
    )
    from samgap_lib.training.tasks.sam2 import grouped_mask_loss

    cfg = load_config(
        tiny_config("sam2_video", tmp_path, prompts={"p_correction": 0.0, "dense": False}),
        model="sam2",
    )
    model, proc = build_model(cfg)
    task = make_task(cfg, model, proc)
    pool = task.filter_pool(task.load_pool("train", 4, 64))
    model.eval()
    cfg["video"]["p_correct_frame"] = 0.0
    pixel, clips = task.batch(pool, np.array([0]), np.random.default_rng(0), torch.device("cpu"))
    clip = clips[0]
    with torch.no_grad():
        loss, terms = task.loss_module(model)(pixel, clips)
        feats, pos = clip_features(model, pixel)
        n, t_frames = len(clip.objs), pixel.shape[0]
        bank, frame_losses = MemoryBank(t_frames), []
        for t in range(t_frames):
            if t == 0:
                o = clip.objs
                maps = frame_maps(model, feats, 0, n)
                outs = []
                for r, obj in enumerate(o):  # one object at a time, its own prompt
                    one = [m[r : r + 1] for m in maps]
                    if obj.box is not None:
                        kw = {"input_boxes": torch.tensor(obj.box, dtype=torch.float32)[None, None]}
                    else:
                        kw = {
                            "input_points": torch.tensor([obj.points], dtype=torch.float32)[None],
                            "input_labels": torch.tensor([obj.labels])[None],
                        }
                    mm = obj.box is None and len(obj.points) == 1
                    outs.append(head(model, one, mm, **kw))
                rows = [(x.logits[0], x.ious[0]) for x in outs]
                best = [int(x.ious[0].argmax()) for x in outs]
                low = torch.stack([x.logits[0, b] for x, b in zip(outs, best, strict=True)])
                tok = torch.stack([x.tokens[0, b] for x, b in zip(outs, best, strict=True)])
                obj_logits = torch.cat([x.obj for x in outs])
            else:
                x = head(model, memory_maps(model, bank, feats, pos, t, n), True)
                rows = [(x.logits[i], x.ious[i]) for i in range(n)]
                low, tok = x.chosen()
                obj_logits = x.obj
            tgt = clip.targets[:, t]
            present = tgt.reshape(n, -1).any(1)
            bce = torch.nn.functional.binary_cross_entropy_with_logits(
                obj_logits[:, 0], torch.tensor(present, dtype=torch.float32)
            )
            idx = np.flatnonzero(present)
            mask = grouped_mask_loss([rows[i] for i in idx], [tgt[i] for i in idx], cfg, 64)[0]
            frame_losses.append(float(cfg["loss"]["object_score"] * bce + mask))
            bank.store(
                t,
                t == 0,
                encode_memory(model, feats, t, low, obj_logits, binarize=False),
                object_pointer(model, tok, obj_logits),
            )
    assert float(loss) == pytest.approx(np.mean(frame_losses), rel=1e-4)
    assert terms["loss"] == pytest.approx(np.mean(frame_losses), rel=1e-4)


def test_clip_sampling_prompts_objects_visible_on_frame_zero(tmp_path):
    cfg = load_config(tiny_config("sam2_video", tmp_path), model="sam2")
    model, proc = build_model(cfg)
    task = make_task(cfg, model, proc)
    pool = task.filter_pool(task.load_pool("train", 6, 64))
    assert len(pool) and all(tr[:, 0].any() for tr in pool.tracks)
    a = task.batch(pool, np.array([0, 1]), np.random.default_rng(5), torch.device("cpu"))
    b = task.batch(pool, np.array([0, 1]), np.random.default_rng(5), torch.device("cpu"))
    assert a[0].shape == (2 * 3, 3, 64, 64)
    for ca, cb in zip(a[1], b[1], strict=True):
        assert ca.correct_at == cb.correct_at and ca.correct_clicks == cb.correct_clicks
        assert [o.points for o in ca.objs] == [o.points for o in cb.objs]
        assert len(ca.objs) <= cfg["data"]["max_objects"]
        for o, tr in zip(ca.objs, ca.targets, strict=True):
            assert tr[0].sum() >= cfg["video"]["min_area"]
            np.testing.assert_array_equal(o.target, tr[0])
        assert ca.correct_at is None or 1 <= ca.correct_at < 3


class _Scripted:
    """A tracker that returns fixed masks (answers known)."""

    def __init__(self, masks):
        self.masks = masks

    def propagate(self, frames, points, labels):
        n = len(points)
        return VideoResult(list(range(1, n + 1)), self.masks[:, :n], np.zeros(self.masks.shape[:2]))


def _box(y, x, s=6, size=32):
    m = np.zeros((size, size), bool)
    m[y : y + s, x : x + s] = True
    return m


def test_tracking_evaluation_on_known_tracks():
    """Two apples; the first is tracked perfectly, the second jumps onto the first apple on
    the last two frames (an identity switch), so its J there is 0."""
    t_frames = 4
    tracks = np.stack(
        [
            np.stack([_box(4, 4 + 2 * t) for t in range(t_frames)]),
            np.stack([_box(20, 20 - 2 * t) for t in range(t_frames)]),
        ]
    )
    pred = tracks.transpose(1, 0, 2, 3).copy()
    pred[2:, 1] = tracks[0, 2:]
    frames = np.zeros((t_frames, 32, 32, 3), np.uint8)
    rec = track_clips(_Scripted(pred), [(frames, tracks)], min_area=4)
    assert len(rec) == 1 and rec[0]["objects"] == 2
    np.testing.assert_array_equal(rec[0]["J"][0], 1.0)
    np.testing.assert_array_equal(rec[0]["J"][1], [1, 1, 0, 0])
    np.testing.assert_array_equal(rec[0]["switched"][1], [False, False, True, True])
    assert not rec[0]["switched"][0].any()
    s = tracking_summary(rec)
    assert s["switch_rate"] == 0.5
    assert s["J"] == pytest.approx(6 / 8)
    assert s["J&F_first"] == pytest.approx(1.0)
    assert s["decay"] > 0


def test_memory_route_traces_each_frame():
    """Frame 0 runs no memory attention; frame t reads the t memories before it (4 x 4 tokens
    each at 64 px) and their t object pointers."""
    from samgap_lib.studies.diagram import memory_route

    model, proc = _video_model()
    frames, pts, lab = _clip()
    rows = memory_route(MemoryTracker(model, proc, device="cpu"), frames, pts[:1], lab[:1])
    assert [r["frame"] for r in rows] == [0, 1, 2, 3]
    assert "memory attention" not in rows[0]["ran"] and rows[0]["memory tokens"] == 0
    assert rows[0]["ran"][0] == "image encoder"
    for r in rows[1:]:
        assert r["ran"][0] == "memory attention"
        assert {"mask decoder", "memory encoder", "object pointers"} <= set(r["ran"])
        assert r["memory tokens"] == 16 * r["frame"] and r["pointer tokens"] == r["frame"]


def test_masklet_tracker_keeps_one_memory_per_masklet():
    from samgap_lib.models.hf.sam2_memory import MaskletTracker

    model, proc = _video_model()
    frames, _, _ = _clip()
    tracker = MaskletTracker(model, proc, frames, device="cpu")
    mask = np.zeros(frames.shape[1:3], bool)
    mask[20:30, 20:30] = True
    a = tracker.propagate(1, mask, 1)
    assert a.shape == mask.shape and a.dtype == bool
    outs = tracker.banks[1].output_dict_per_obj[0]
    assert list(outs["cond_frame_outputs"]) == [0] and list(outs["non_cond_frame_outputs"]) == [1]
    b = tracker.propagate(1, a, 2)  # its own prediction: no new conditioning frame
    assert list(outs["cond_frame_outputs"]) == [0] and list(outs["non_cond_frame_outputs"]) == [
        1,
        2,
    ]
    tracker.propagate(1, mask, 3)  # re-prompted (a detection): frame 2 becomes a conditioning frame
    assert list(outs["cond_frame_outputs"]) == [0, 2]
    tracker.propagate(2, mask, 1)  # another masklet, another memory
    assert set(tracker.banks) == {1, 2}
    assert b.shape == mask.shape


def test_learned_protocols_with_perfect_models_meet_the_oracle():
    """A tracker that returns the truth gives sam2_protocol the oracle's outcome; detections
    that are the truth with a tracker that follows it give sam3_protocol SAM3's oracle."""
    from samgap_lib.evaluation import sam2_oracle, sam2_protocol, sam3_oracle, sam3_protocol

    t_frames, size = 5, 32
    gt = []
    for t in range(t_frames):
        frame = {1: _box(4, 2 + 3 * t, 6, size)}
        if t >= 2:
            frame[2] = _box(18, 2 + 3 * (t - 2), 6, size)  # enters on frame 2
        gt.append(frame)

    class Perfect:
        def propagate(self, frames, points, labels, obj_ids):
            masks = np.stack(
                [
                    [gt[t].get(k, np.zeros((size, size), bool)) for k in obj_ids]
                    for t in range(t_frames)
                ]
            )
            return VideoResult(list(obj_ids), masks, np.zeros(masks.shape[:2]))

    frames = np.zeros((t_frames, size, size, 3), np.uint8)
    got = sam2_protocol(Perfect(), frames, gt, min_area=4)
    want = sam2_oracle(gt)
    assert got.prompts == want.prompts == 1
    assert got.coverage == pytest.approx(want.coverage)
    assert got.scores["HOTA"] == pytest.approx(want.scores["HOTA"])

    class Follow:
        def propagate(self, key, mask, t):
            owner = next(k for k, m in gt[t - 1].items() if np.array_equal(m, mask))
            return gt[t][owner]

    dets = [list(frame.values()) for frame in gt]
    got3 = sam3_protocol(dets, Follow(), gt)
    want3 = sam3_oracle(gt)
    assert got3.prompts == 1 and got3.coverage == pytest.approx(want3.coverage) == 1.0
    assert got3.scores["IDF1"] == pytest.approx(1.0)


def test_video_training_validates_and_saves_a_tracker(tmp_path):
    """`samgap train sam2` with ``video.frames``: a Sam2VideoModel whose validation is tracking
    J&F on held-out clips, saved as a folder `load_sam2(role="video")` turns into the tracker
    (prompts drawn into the mask input, as trained)."""
    from samgap_lib.models import load_sam2
    from samgap_lib.training import train

    cfg = load_config(tiny_config("sam2_video", tmp_path / "run", train={"steps": 2}), model="sam2")
    res = train(cfg)
    assert {"J&F", "J&F_low", "J&F_high", "decay", "switch_rate"} <= set(res.metrics)
    assert 0.0 <= res.metrics["J&F"] <= 1.0
    tracker = load_sam2(res.final, role="video", device="cpu")
    assert isinstance(tracker, MemoryTracker) and tracker.spec
    frames, pts, lab = _clip()
    out = tracker.propagate(frames, pts, lab)
    assert out.masks.shape == (len(frames), len(pts), *frames.shape[1:3])


def test_recorded_video_seeds_match_the_current_recipe():
    """The appendix's two seeds were trained with today's sam2_video recipe; after a recipe
    change, rerun ``samgap study video-seeds`` and record it again."""
    import json

    from samgap_lib.evaluation import HELD_OUT_CLIPS
    from samgap_lib.studies.video_seeds import METRICS, recorded_runs
    from samgap_lib.training import ORCHARD_TINY

    rec = recorded_runs()
    assert rec["recipe"] == json.loads(json.dumps(ORCHARD_TINY["sam2_video"]))
    assert rec["held_out"] == json.loads(json.dumps(HELD_OUT_CLIPS))
    assert set(rec["seeds"]) == {"0", "1"}
    for r in rec["seeds"].values():
        assert set(METRICS) <= set(r) and set(METRICS) <= set(r["first_mask_copied"])
        assert r["J&F_low"] <= r["J&F"] <= r["J&F_high"]
    assert {"commit", "date"} <= set(rec["provenance"]["recorded_at"])
