"""Video propagation on tiny checkpoints: shapes, stable object ids, both directions."""

from __future__ import annotations

import numpy as np
import pytest

from samgap_lib.data import synthetic_orchard_video
from samgap_lib.models import VideoResult, load_sam2, load_sam3
from samgap_lib.models.testing import write_tiny_checkpoints


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-video")
    names = ("hf-sam2-video", "hf-sam3-video", "meta-sam2")
    return write_tiny_checkpoints(root, seed=0, include=names)


@pytest.fixture(scope="module")
def frames():
    return np.stack([s.image for s in synthetic_orchard_video(n_frames=4, seed=0, size=(72, 96))])


@pytest.mark.parametrize("backend", ["transformers", "meta"])
def test_sam2_video_stable_ids_both_directions(tiny, frames, backend):
    src = tiny["hf-sam2-video"] if backend == "transformers" else tiny["meta-sam2"]
    prop = load_sam2(src, backend=backend, role="video", device="cpu")
    res = prop.propagate(frames, points=[[[20, 30]], [[60, 40]]], frame_idx=2, obj_ids=[7, 3])
    assert isinstance(res, VideoResult)
    assert res.object_ids == [3, 7]
    assert res.masks.shape == (4, 2, 72, 96) and res.masks.dtype == bool
    assert set(res.frame(0)) == {3, 7}
    # every frame was reached: forward 2..3, then backward 2..0
    assert res.processed == [0, 1, 2, 3]
    boxes = prop.propagate(frames, boxes=[[5, 5, 40, 40]], frame_idx=0)
    assert boxes.object_ids == [1] and boxes.masks.shape == (4, 1, 72, 96)


def test_sam2_video_mask_prompt(tiny, frames):
    prop = load_sam2(tiny["hf-sam2-video"], role="video", device="cpu")
    m = np.zeros((72, 96), bool)
    m[10:30, 20:50] = True
    res = prop.propagate(frames, masks=m[None], frame_idx=1)
    assert res.object_ids == [1] and res.masks.shape == (4, 1, 72, 96)


def test_sam3_video_phrase(tiny, frames):
    prop = load_sam3(tiny["hf-sam3-video"], role="video", device="cpu", threshold=0.0)
    res = prop.propagate(frames, "apple", frame_idx=0)
    k = len(res.object_ids)
    assert k > 0 and res.processed == [0, 1, 2, 3] and res.object_ids == sorted(res.object_ids)
    assert res.masks.shape == (4, k, 72, 96) and res.scores.shape == (4, k)
    again = prop.propagate(frames, "apple", frame_idx=0)
    assert again.object_ids == res.object_ids  # deterministic ids
    with pytest.raises(ValueError, match="phrase"):
        prop.propagate(frames, "")


def test_video_input_errors(tiny, frames):
    prop = load_sam2(tiny["hf-sam2-video"], role="video", device="cpu")
    with pytest.raises(ValueError, match="frame_idx"):
        prop.propagate(frames, points=[[1, 1]], frame_idx=9)
    with pytest.raises(ValueError, match="no frames"):
        prop.propagate([], points=[[1, 1]])
    with pytest.raises(ValueError, match="same size"):
        prop.propagate([frames[0], frames[1][:50]], points=[[1, 1]])
    with pytest.raises(ValueError, match="distinct"):
        prop.propagate(frames, points=[[[1, 1]], [[2, 2]]], obj_ids=[1, 1])
