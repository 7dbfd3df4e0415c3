"""The two video protocols, exactly, with an oracle in place of the model.

SAM 2 and SAM 3 are asked different things of a video, and each protocol has a ceiling that no
model can pass. With oracle masks (every mask SAM 2 propagates, every detection SAM 3 makes, is
the ground truth's) the ceiling is what the protocol itself allows:

* **SAM 2, semi-supervised** (`sam2_oracle`): one prompt per object visible on the prompted frame
  (SAM 2's VOS protocol: prompts on one frame, then propagation forward). An object that enters
  later is never segmented unless someone prompts it when it appears, which costs one more prompt.
  `sam2_effort_curve` spends those prompts one at a time, each on the late object that gains most
  object-frames: the video form of chapter 1's effort equivalence (prompts against coverage).
* **SAM 3, concept** (`sam3_oracle`): one phrase; the detector finds every instance on every
  frame and `detect_then_track` carries identities: masklets propagated by the tracker are
  matched to detections by mask IoU (SAM 3's ``assoc_iou_thresh`` 0.1, Hungarian matching), an
  unmatched detection starts a masklet, and a masklet unmatched too long is suppressed
  (``trk_keep_alive``, `KeepAlive`). Read from ``sam3/model/sam3_video_base.py`` and the
  released settings in ``sam3/model_builder.py`` (sam3 0.1.4).

Each outcome reports the prompts spent, the coverage (the share of object-frames segmented:
object-frames where the prediction of the object's identity overlaps it with IoU >= 0.5) and the
identity metrics of `samgap_lib.metrics.tracking` (HOTA with DetA/AssA, IDF1), by TrackEval.

Track sets are lists of ``{object id: (H, W) bool mask}``, one dict per frame.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..data.types import Sample
from ..metrics.masks import mask_iou_matrix
from ..metrics.tracking import TrackSet, mot_scores

__all__ = [
    "KeepAlive",
    "ProtocolOutcome",
    "appearances",
    "associate",
    "detect_then_track",
    "ground_truth_tracks",
    "sam2_effort_curve",
    "sam2_oracle",
    "protocol_outcome",
    "sam3_oracle",
    "video_coverage",
]

# SAM 3's released association threshold (model_builder.py: assoc_iou_thresh=0.1).
ASSOC_IOU = 0.1
# An object-frame counts as segmented when its identity's mask overlaps it this much.
COVERED_IOU = 0.5


def ground_truth_tracks(frames: Sequence[Sample]) -> list[dict[int, np.ndarray]]:
    """The ground-truth track set of a video (`synthetic_orchard_video`'s stable instance ids)."""
    tracks = []
    for t, s in enumerate(frames):
        frame: dict[int, np.ndarray] = {}
        for inst in s.instances:
            if inst.instance_id is None:
                raise ValueError(
                    f"frame {t}: an instance has no instance_id; a video's ground truth needs "
                    "ids that are stable across frames."
                )
            frame[int(inst.instance_id)] = np.asarray(inst.mask, dtype=bool)
        tracks.append(frame)
    return tracks


def appearances(tracks: TrackSet) -> dict[Hashable, list[int]]:
    """For each object id, the frames where its mask is not empty, in order of first appearance."""
    seen: dict[Hashable, list[int]] = {}
    for t, frame in enumerate(tracks):
        for k, m in frame.items():
            if np.asarray(m).any():
                seen.setdefault(k, []).append(t)
    return seen


def video_coverage(gt: TrackSet, pred: TrackSet) -> float:
    """Share of ground-truth object-frames segmented: the predicted identity best matched to the
    object over the video (by summed IoU, one to one) overlaps it with IoU >= 0.5 in that frame.

    NaN when the ground truth has no object-frame.
    """
    gt_ids = list(appearances(gt))
    pred_ids = list(appearances(pred))
    total = sum(len(v) for v in appearances(gt).values())
    if total == 0:
        return float("nan")
    if not pred_ids:
        return 0.0
    # per-frame IoU of every (gt id, pred id) pair
    ious = np.zeros((len(gt), len(gt_ids), len(pred_ids)))
    gi = {k: i for i, k in enumerate(gt_ids)}
    pi = {k: i for i, k in enumerate(pred_ids)}
    for t, (g, p) in enumerate(zip(gt, pred, strict=True)):
        gk = [k for k, m in g.items() if np.asarray(m).any()]
        pk = [k for k, m in p.items() if np.asarray(m).any()]
        if gk and pk:
            m = mask_iou_matrix(np.stack([p[k] for k in pk]), np.stack([g[k] for k in gk])).T
            for a, ka in enumerate(gk):
                for b, kb in enumerate(pk):
                    ious[t, gi[ka], pi[kb]] = m[a, b]
    rows, cols = linear_sum_assignment(-ious.sum(axis=0))
    hit = sum(int((ious[:, r, c] >= COVERED_IOU).sum()) for r, c in zip(rows, cols, strict=True))
    return hit / total


@dataclass(frozen=True)
class ProtocolOutcome:
    """What a protocol spent and got on one video."""

    protocol: str
    prompts: int
    coverage: float
    scores: dict[str, float]
    tracks: list[dict[Hashable, np.ndarray]] = field(repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """The outcome as JSON-ready data (without the masks)."""
        return {
            "protocol": self.protocol,
            "prompts": self.prompts,
            "coverage": self.coverage,
            **self.scores,
        }


def protocol_outcome(
    protocol: str, prompts: int, gt: TrackSet, pred: list[dict]
) -> ProtocolOutcome:
    """The outcome of a protocol that spent ``prompts`` and predicted the track set ``pred``."""
    scores = mot_scores(gt, pred)
    scores.pop("raw")
    return ProtocolOutcome(protocol, prompts, video_coverage(gt, pred), scores, pred)


def _sam2_plan(gt: TrackSet, prompt_frame: int) -> tuple[list[Hashable], list[Hashable]]:
    """Objects prompted on ``prompt_frame``, and the late ones in the order extra prompts buy
    them (most object-frames gained first; ties by first appearance, then by id order)."""
    if not 0 <= prompt_frame < len(gt):
        raise ValueError(f"prompt_frame {prompt_frame} is outside the video's {len(gt)} frames.")
    seen = appearances(gt)
    first = [k for k, ts in seen.items() if prompt_frame in ts]
    order = list(seen)
    # objects seen after the prompted frame and not on it; those gone before it cannot be
    # reached by forward propagation
    late = [k for k, ts in seen.items() if k not in first and max(ts) > prompt_frame]
    gain = {k: sum(1 for t in seen[k] if t > prompt_frame) for k in late}
    late.sort(key=lambda k: (-gain[k], _entry(seen[k], prompt_frame), order.index(k)))
    return first, late


def _entry(frames: list[int], prompt_frame: int) -> int:
    """The first frame after ``prompt_frame`` where an object is visible."""
    return min(t for t in frames if t > prompt_frame)


def sam2_oracle(gt: TrackSet, prompt_frame: int = 0, extra_prompts: int = 0) -> ProtocolOutcome:
    """SAM 2's semi-supervised protocol with a perfect model.

    One prompt per object visible on ``prompt_frame``; propagation forward from each object's
    prompt (a perfect memory: the object's true mask in every later frame where it is visible,
    through occlusions). ``extra_prompts`` more prompts (at most the number of objects that enter
    after ``prompt_frame``) each start one late object on the first frame it is visible after
    ``prompt_frame``, choosing the objects that gain most object-frames first.
    """
    first, late = _sam2_plan(gt, prompt_frame)
    if not 0 <= extra_prompts <= len(late):
        raise ValueError(
            f"extra_prompts must be between 0 and {len(late)} (objects that enter after frame "
            f"{prompt_frame}), got {extra_prompts}."
        )
    seen = appearances(gt)
    start = {k: prompt_frame for k in first}
    for k in late[:extra_prompts]:
        start[k] = _entry(seen[k], prompt_frame)
    pred = [
        {k: m for k, m in frame.items() if k in start and t >= start[k] and np.asarray(m).any()}
        for t, frame in enumerate(gt)
    ]
    return protocol_outcome("sam2", len(start), gt, pred)


def sam2_effort_curve(gt: TrackSet, prompt_frame: int = 0) -> list[ProtocolOutcome]:
    """`sam2_oracle` with 0, 1, ... extra prompts, until every object that enters is prompted."""
    _, late = _sam2_plan(gt, prompt_frame)
    return [sam2_oracle(gt, prompt_frame, k) for k in range(len(late) + 1)]


def associate(
    propagated: Mapping[Hashable, np.ndarray],
    detections: Sequence[np.ndarray],
    iou_threshold: float = ASSOC_IOU,
) -> tuple[dict[int, Hashable], list[int]]:
    """Match a frame's detections to the tracker's propagated masklets, as SAM 3 does.

    Hungarian matching on mask IoU; a pair counts only with IoU >= ``iou_threshold`` (SAM 3:
    0.1). Empty propagated masks take no part (SAM 3 leaves masklets the tracker lost out).

    Returns
    -------
    matches, new
        ``{detection index: masklet id}`` and the indices of unmatched detections, which start
        masklets.
    """
    ids = [k for k, m in propagated.items() if np.asarray(m).any()]
    dets = [i for i, d in enumerate(detections) if np.asarray(d).any()]
    matches: dict[int, Hashable] = {}
    if ids and dets:
        iou = mask_iou_matrix(
            np.stack([detections[i] for i in dets]), np.stack([propagated[k] for k in ids])
        )
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols, strict=True):
            if iou[r, c] >= iou_threshold:
                matches[dets[r]] = ids[c]
    new = [i for i in dets if i not in matches]
    return matches, new


@dataclass(frozen=True)
class KeepAlive:
    """SAM 3's ``trk_keep_alive`` counter (sam3_video_base.py): +1 when a masklet is matched (at
    most ``maximum``), -1 when it is not (at least ``minimum``); a masklet at or below 0 is
    suppressed from the output. Released settings (model_builder.py): start 30, maximum 30,
    minimum -1."""

    start: int = 30
    maximum: int = 30
    minimum: int = -1


def detect_then_track(
    detections: Sequence[Sequence[np.ndarray]],
    propagate: Callable[[Hashable, np.ndarray, int], np.ndarray],
    iou_threshold: float = ASSOC_IOU,
    keep_alive: KeepAlive | None = None,
) -> list[dict[int, np.ndarray]]:
    """SAM 3's video procedure over per-frame detections.

    On each frame ``t``: every live masklet is propagated by the tracker,
    ``propagate(masklet id, its mask on frame t-1, t)``; detections are matched to the
    propagated masks (`associate`); a matched masklet takes its detection's mask (the tracker is
    re-prompted from the detection), an unmatched detection starts a masklet with the next id,
    an unmatched masklet keeps its propagated mask. Masklets whose keep-alive count fell to 0 or
    below are left out of that frame's output (SAM 3 suppresses them).

    Returns the predicted track set (ids 1, 2, ... in order of birth).
    """
    rules = keep_alive or KeepAlive()
    live: dict[int, np.ndarray] = {}
    alive: dict[int, int] = {}
    out: list[dict[int, np.ndarray]] = []
    for t, dets in enumerate(detections):
        propagated = {k: np.asarray(propagate(k, m, t), dtype=bool) for k, m in live.items()}
        matches, new = associate(propagated, dets, iou_threshold)
        matched = set(matches.values())
        frame: dict[int, np.ndarray] = {}
        for k, m in propagated.items():
            if k in matched:
                alive[k] = min(rules.maximum, alive[k] + 1)
            elif m.any():
                alive[k] = max(rules.minimum, alive[k] - 1)
            live[k] = m
        for i, k in matches.items():
            live[k] = np.asarray(dets[i], dtype=bool)
        for i in new:
            k = len(alive) + 1
            live[k] = np.asarray(dets[i], dtype=bool)
            alive[k] = rules.start
        for k, m in live.items():
            if alive[k] > 0 and m.any():
                frame[k] = m
        out.append(frame)
    return out


def sam3_oracle(gt: TrackSet, keep_alive: KeepAlive | None = None) -> ProtocolOutcome:
    """SAM 3's concept protocol with a perfect detector and a perfect tracker: one phrase, every
    instance detected on every frame, each masklet propagated to its object's true mask."""

    def follow(k: Hashable, mask: np.ndarray, t: int) -> np.ndarray:
        # the object this masklet follows: the ground-truth object its last mask is
        if mask.any():
            owner[k] = next((g for g, m in gt[t - 1].items() if np.array_equal(m, mask)), None)
        m = gt[t].get(owner[k]) if owner.get(k) is not None else None
        return np.zeros_like(mask) if m is None else np.asarray(m, dtype=bool)

    owner: dict[Hashable, Hashable] = {}
    detections = [[np.asarray(m, dtype=bool) for m in frame.values()] for frame in gt]
    pred = detect_then_track(detections, follow, keep_alive=keep_alive)
    return protocol_outcome("sam3", 1, gt, pred)
