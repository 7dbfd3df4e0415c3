"""Both video protocols with a profile's models, on one video and its ground truth.

- smoke: the orchard-tiny SAM2 video model (its memory path trained on clips) takes one click per
  apple on frame 0 (`sam2_protocol`); SAM3's protocol runs in miniature: the orchard-tiny SAM3
  detector on every frame, and the same SAM2 video model as the tracker of `detect_then_track`
  (`MaskletTracker`), as SAM 3 hands its detections to a SAM 2-style tracker;
- paper: the released SAM 2.1 video model (transformers' ``Sam2VideoModel``) and SAM 3's own
  video inference (``Sam3VideoModel``: detection, tracking and association inside the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..evaluation import ProtocolOutcome, protocol_outcome, sam2_protocol, sam3_protocol
from ..metrics.tracking import TrackSet
from .config import resolve_checkpoint

__all__ = ["detections_per_frame", "video_protocols", "video_tracker"]


def video_tracker(cfg: dict[str, Any], checkpoint: str | None = None) -> Any:
    """The SAM2 video role: ``checkpoint`` (a video checkpoint: hub id or folder) when given,
    else the profile's: the orchard-tiny SAM2 video model (smoke; a `MemoryTracker`) or the
    released SAM 2.1 (paper: the config's SAM2 source, a video checkpoint on the hub;
    transformers' propagator)."""
    from ..models import load_sam2

    if checkpoint:
        return load_sam2(checkpoint, role="video", device=cfg["device"])
    if cfg["profile"] == "smoke":
        from ..training import ensure_orchard_tiny

        return load_sam2(ensure_orchard_tiny()["sam2_video"], role="video", device=cfg["device"])
    source = resolve_checkpoint(cfg["models"]["sam2"]["source"], "sam2")
    return load_sam2(source, role="video", device=cfg["device"])


def detections_per_frame(
    segmenter: Any, frames: Sequence[np.ndarray], phrase: str, threshold: float = 0.5
) -> list[list[np.ndarray]]:
    """The masks a concept segmenter keeps (score >= ``threshold``) for ``phrase`` per frame."""
    out = []
    for f in frames:
        p = segmenter.segment(f, phrases=[phrase])[phrase]
        out.append([m for m, s in zip(p.masks, p.scores, strict=True) if s >= threshold])
    return out


def video_protocols(
    cfg: dict[str, Any],
    frames: np.ndarray,
    gt: TrackSet,
    phrase: str = "apple",
    detector: Any = None,
    min_area: int = 30,
    sam2_video: str | None = None,
    sam3_video: str | None = None,
) -> dict[str, ProtocolOutcome]:
    """``{"sam2": outcome, "sam3": outcome}`` of the profile's models on ``frames``.

    ``detector``: the chapter's SAM3 concept segmenter (smoke profile); its detections at the
    config's concept threshold feed the miniature detect-then-track. ``sam2_video`` /
    ``sam3_video``: video checkpoints instead of the profile's (`video_tracker`; SAM 3's own
    video inference, in the paper profile the config's SAM3 source)."""
    from ..models import load_sam3
    from ..models.hf.sam2_memory import MaskletTracker

    device = cfg["device"]
    tracker = video_tracker(cfg, sam2_video)
    if cfg["profile"] == "smoke" and not sam3_video:
        if detector is None:
            raise ValueError("the smoke profile's SAM3 protocol needs the chapter's detector.")
        dets = detections_per_frame(detector, frames, phrase, cfg["concepts"]["threshold"])
        masklets = MaskletTracker(tracker.model, tracker.processor, frames, device=device)
        concept = sam3_protocol(dets, masklets, gt)
    else:
        source = sam3_video or resolve_checkpoint(cfg["models"]["sam3"]["source"], "sam3")
        video = load_sam3(source, role="video", device=device)
        concept = protocol_outcome("sam3", 1, gt, video.propagate(frames, phrase).track_set())
    return {"sam2": sam2_protocol(tracker, frames, gt, min_area), "sam3": concept}
