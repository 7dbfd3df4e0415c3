"""Learned models under the two video protocols, and a learned tracker on clips.

- `sam2_protocol` / `sam3_protocol`: the protocols of `video_protocols` with models in place
  of the oracle, on one video and its ground-truth track set: SAM2's first-frame clicks
  propagated by a tracker; SAM3's detections on every frame handed to `detect_then_track` with a
  learned masklet tracker. Same outcome (prompts, coverage, HOTA, DetA, AssA, IDF1).
- `track_clips` / `tracking_summary`: a tracker's J&F per frame on clips, below.

SAM2's semi-supervised protocol with a model in the loop (`video_protocols` holds the oracle
bounds): every apple visible on frame 0 (at least ``min_area`` pixels) gets its RITM first click
there, and the tracker (`samgap_lib.models.hf.sam2_memory.MemoryTracker` or anything with its
``propagate``) carries all of them to the end of the clip. Each apple is then scored on every
frame against its own ground truth (DAVIS J and F; a frame where it has left and nothing is
predicted scores 1), and checked for an identity switch: a frame where its mask covers another
apple (IoU >= 0.5 with that apple) instead of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..metrics import bootstrap_ratio, decay, mask_iou_matrix, per_frame_jf
from ..metrics.tracking import TrackSet
from ..prompts import Clicker
from .video_protocols import (
    ASSOC_IOU,
    KeepAlive,
    ProtocolOutcome,
    appearances,
    detect_then_track,
    protocol_outcome,
)

__all__ = ["jf_per_frame", "sam2_protocol", "sam3_protocol", "track_clips", "tracking_summary"]


def sam2_protocol(
    tracker: Any, frames: np.ndarray, gt: TrackSet, min_area: int = 30
) -> ProtocolOutcome:
    """SAM2's protocol with a model: the RITM first click on each apple visible on frame 0 (at
    least ``min_area`` pixels), propagated by ``tracker`` (`MemoryTracker`) through the video."""
    ids = [k for k in appearances(gt) if k in gt[0] and np.asarray(gt[0][k]).sum() >= min_area]
    if not ids:
        return protocol_outcome("sam2", 0, gt, [{} for _ in gt])
    clicks = [Clicker(np.asarray(gt[0][k], bool)).next_click(None) for k in ids]
    points = np.array([[[c.x, c.y]] for c in clicks], np.float32)
    res = tracker.propagate(
        np.asarray(frames), points, np.ones((len(ids), 1), np.int64), obj_ids=ids
    )
    return protocol_outcome("sam2", len(ids), gt, res.track_set())


def sam3_protocol(
    detections: Sequence[Sequence[np.ndarray]],
    tracker: Any,
    gt: TrackSet,
    iou_threshold: float = ASSOC_IOU,
    keep_alive: KeepAlive | None = None,
) -> ProtocolOutcome:
    """SAM3's protocol with models: one phrase, ``detections[t]`` the detector's masks on frame
    ``t``, identities carried by `detect_then_track` with ``tracker.propagate`` (a
    `MaskletTracker`) as the tracker."""
    pred = detect_then_track(detections, tracker.propagate, iou_threshold, keep_alive)
    return protocol_outcome("sam3", 1, gt, pred)


def track_clips(
    tracker: Any, clips: Sequence[tuple[np.ndarray, np.ndarray]], min_area: int = 30
) -> list[dict[str, Any]]:
    """Run ``tracker`` on each clip ``(frames (T, H, W, 3), tracks (K, T, H, W))``.

    Returns one record per clip: ``objects`` (apples prompted), ``object_frames``, ``jf_sum``,
    ``J`` and ``F`` ``(N, T)``, ``present`` ``(N, T)`` (the apple is in view), ``switched``
    ``(N, T)`` (its mask is on another apple)."""
    out = []
    for frames, tracks in clips:
        tracks = np.asarray(tracks, bool)
        if not len(tracks):  # a clip without apples
            continue
        area0 = tracks[:, 0].reshape(len(tracks), -1).sum(1)
        rows = np.flatnonzero(area0 >= min_area)
        if not len(rows):
            continue
        clicks = [Clicker(tracks[r, 0]).next_click(None) for r in rows]
        points = np.array([[[c.x, c.y]] for c in clicks], np.float32)
        labels = np.ones((len(rows), 1), np.int64)
        res = tracker.propagate(np.asarray(frames), points, labels)
        n, t_frames = len(rows), len(frames)
        j = np.zeros((n, t_frames))
        f = np.zeros((n, t_frames))
        switched = np.zeros((n, t_frames), bool)
        for k, r in enumerate(rows):
            pred = res.masks[:, k]
            j[k], f[k] = per_frame_jf(pred, tracks[r])
            for t in range(t_frames):
                if pred[t].any():
                    ious = mask_iou_matrix(pred[t][None], tracks[:, t])[0]
                    other = np.delete(ious, r)
                    switched[k, t] = bool(other.size and other.max() >= 0.5)
        present = tracks[rows].reshape(n, t_frames, -1).any(-1)
        jf = (j + f) / 2
        out.append(
            {
                "objects": int(n),
                "object_frames": int(n * t_frames),
                "jf_sum": float(jf.sum()),
                "J": j,
                "F": f,
                "present": present,
                "switched": switched,
            }
        )
    return out


def tracking_summary(records: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, float]:
    """Means over every object-frame of the clips: ``J&F``, ``J``, ``F``, the same on frame 0
    and on the last frame, ``decay`` (DAVIS: first quarter minus last quarter of each track,
    averaged over apples), ``switch_rate`` (share of apples whose mask lands on another apple
    on some frame), and a 95 % interval of J&F over clips (``J&F_low``, ``J&F_high``)."""
    if not records:
        raise ValueError("no clip had an apple to prompt on its first frame.")
    j = np.concatenate([r["J"] for r in records])
    f = np.concatenate([r["F"] for r in records])
    jf = (j + f) / 2
    sw = np.concatenate([r["switched"] for r in records])
    ci = bootstrap_ratio(
        np.array([r["jf_sum"] for r in records], float),
        np.array([r["object_frames"] for r in records], float),
        seed=seed,
    )
    return {
        "clips": float(len(records)),
        "objects": float(len(jf)),
        "J&F": float(jf.mean()),
        "J": float(j.mean()),
        "F": float(f.mean()),
        "J&F_first": float(jf[:, 0].mean()),
        "J&F_last": float(jf[:, -1].mean()),
        "decay": float(np.mean([decay(row) for row in jf])),
        "switch_rate": float(sw.any(1).mean()),
        "J&F_low": float(ci.low),
        "J&F_high": float(ci.high),
    }


def jf_per_frame(records: Sequence[dict[str, Any]]) -> list[float]:
    """Mean J&F over the tracked apples on each frame (frame 0: the prompted one)."""
    jf = np.concatenate([(r["J"] + r["F"]) / 2 for r in records])
    return [float(v) for v in jf.mean(0)]
