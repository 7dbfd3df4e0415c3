"""The orchard-tiny cards' held-out protocol: which images, which prompts, which metrics.

`evaluate_checkpoint` scores a checkpoint folder, loaded as a user loads it
(`samgap_lib.models.load_sam2` / `load_sam3`), on the synthetic orchard's ``test`` split
(`held_out_samples`): SAM2 on box prompts and RITM clicks (`evaluate_prompted`), SAM3 on the
phrases of `SAM3_EVAL_PHRASES` (`score_concepts`), with and without the post-processing the
checkpoint asks for beyond SAM3's own (`sam3_held_out`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..data import clip_tracks, synthetic_orchard, synthetic_orchard_clips
from ..data.profiles import SPLIT_START
from ..models import load_sam2, load_sam3
from ..models.postprocess import postprocess_prediction
from .concepts import predict_concepts, score_concepts
from .prompted import evaluate_prompted
from .video_tracking import jf_per_frame, track_clips, tracking_summary

__all__ = [
    "HELD_OUT",
    "HELD_OUT_SIZE",
    "SAM3_EVAL_PHRASES",
    "evaluate_checkpoint",
    "held_out_samples",
    "HELD_OUT_CLIPS",
    "held_out_clips",
    "sam2_video_held_out",
    "sam3_held_out",
]

HELD_OUT = {"sam2": 50, "sam3": 50}
HELD_OUT_SIZE = {"sam2": 128, "sam3": 224}  # px
# orchard-tiny SAM2 video: clips of the test split, longer than the training clips
HELD_OUT_CLIPS = {"clips": 24, "frames": 8, "size": 256, "pan": (6, 20), "min_area": 30}
SAM3_EVAL_PHRASES = [
    "ripe apple",
    "unripe apple",
    "turning apple",
    "apple",
    "pear",
    "leaf",
    "orange",
    "lemon",
]


def evaluate_checkpoint(
    model: str,
    folder: str | os.PathLike,
    n_images: int | None = None,
    seed: int = 0,
    postprocess: bool = True,
) -> dict[str, float]:
    """Held-out metrics of a checkpoint folder, loaded through `samgap_lib.models`.

    SAM2: box mIoU and RITM click mIoU@1..3 / NoC on the synthetic orchard's ``test`` split at
    128 px, whatever the model's input size (prompts drawn into the dense input when the
    checkpoint asks for it). SAM3: recall,
    precision, attribute selectivity, detections per image, cgF1 and AP on the ``test`` split at
    224 px for `SAM3_EVAL_PHRASES`; ``postprocess=False`` switches off the post-processing the
    checkpoint asks for beyond SAM3's own (masks cut to their boxes, mask NMS).
    """
    samples = held_out_samples(model, n_images, seed)
    if model == "sam2":
        seg = load_sam2(folder, device="cpu")  # draws prompts into the mask input if trained so
        return evaluate_prompted(seg, samples, clicks=3)
    return sam3_held_out(folder, samples, (postprocess,))[0]


def sam3_held_out(
    folder: str | os.PathLike, samples: list[Any], postprocess: tuple[bool, ...] = (True, False)
) -> list[dict[str, float]]:
    """`evaluate_checkpoint`'s SAM3 metrics on ``samples``, one summary per entry of
    ``postprocess``: with the post-processing the checkpoint asks for (True) or with SAM3's own
    alone (False). The model runs once; the post-processing is applied to its predictions
    (`samgap_lib.models.postprocess.postprocess_prediction`), as `load_sam3`'s segmenter would."""
    seg = load_sam3(folder, device="cpu")
    spec = (seg.mask_in_box, seg.nms_iou)
    seg.mask_in_box, seg.nms_iou = False, None
    raw = predict_concepts(seg, samples, SAM3_EVAL_PHRASES)
    out = []
    for on in postprocess:
        preds = (
            {p: [postprocess_prediction(x, *spec) for x in xs] for p, xs in raw.items()}
            if on
            else raw
        )
        out.append(score_concepts(preds, samples, SAM3_EVAL_PHRASES)["summary"])
    return out


def held_out_samples(model: str, n_images: int | None = None, seed: int = 0) -> list[Any]:
    """The held-out images `evaluate_checkpoint` scores ``model`` on: the synthetic orchard's
    ``test`` split, 128 px for SAM2 and 224 px for SAM3 (``HELD_OUT[model]`` images)."""
    size = HELD_OUT_SIZE[model]
    n = n_images or HELD_OUT[model]
    return synthetic_orchard(n, seed=seed, size=(size, size), start=SPLIT_START["test"])


def held_out_clips(
    n_clips: int | None = None, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The held-out clips ``(frames (T, S, S, 3), tracks (K, T, S, S))`` of `HELD_OUT_CLIPS`:
    the synthetic orchard's ``test`` part, one track per apple in instance-id order."""
    h = HELD_OUT_CLIPS
    size = int(h["size"])
    clips = synthetic_orchard_clips(
        n_clips or int(h["clips"]),
        int(h["frames"]),
        seed=seed,
        size=(size, size),
        pan=h["pan"],
        start=SPLIT_START["test"],
    )
    return [clip_tracks(clip) for clip in clips]


class FirstMaskCopied:
    """A baseline that does not track: the tracker's frame-0 masks, copied to every frame."""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker

    def propagate(self, frames: np.ndarray, points: Any, labels: Any) -> Any:
        res = self.tracker.propagate(frames[:1], points, labels)
        res.masks = np.repeat(res.masks, len(frames), axis=0)
        res.scores = np.repeat(res.scores, len(frames), axis=0)
        res.processed = list(range(len(frames)))
        return res


def sam2_video_held_out(
    folder: str | os.PathLike, n_clips: int | None = None, seed: int = 0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tracking on the held-out clips (`track_clips`, a first click per apple on frame 0) of
    a SAM2 video checkpoint, and of the baseline that copies its frame-0 masks forward: each
    `tracking_summary` plus ``J&F_per_frame`` (`jf_per_frame`)."""
    tracker = load_sam2(folder, role="video", device="cpu")
    clips = held_out_clips(n_clips, seed)
    area = int(HELD_OUT_CLIPS["min_area"])
    out = []
    for t in (tracker, FirstMaskCopied(tracker)):
        records = track_clips(t, clips, area)
        out.append({**tracking_summary(records), "J&F_per_frame": jf_per_frame(records)})
    return out[0], out[1]
