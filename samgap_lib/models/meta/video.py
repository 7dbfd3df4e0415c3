"""Video propagation with stable object ids on Meta's ``SAM2VideoPredictor`` (frames from memory).

``propagate`` runs forward from the prompted frame to the end, then backward to the start, and
returns a `VideoResult` (``masks[t, k]`` for ``object_ids[k]``), as the transformers propagators
of `samgap_lib.models.hf.video` do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..base import VideoResult, assemble_video, check_frames, check_prompts, video_object_ids

__all__ = ["MetaSam2VideoPropagator", "meta_preprocess_frames"]


@contextlib.contextmanager
def _meta_frames(images: torch.Tensor, hw: tuple[int, int]) -> Iterator[None]:
    """Scoped replacement of sam2's frame loader, so frames come from memory, not JPEG files."""
    import sam2.sam2_video_predictor as vp

    original = vp.load_video_frames

    def from_memory(
        video_path: Any, image_size: int, offload_video_to_cpu: bool, **kwargs: Any
    ) -> Any:
        device = kwargs.get("compute_device", torch.device("cpu"))
        return (images if offload_video_to_cpu else images.to(device)), hw[0], hw[1]

    vp.load_video_frames = from_memory
    try:
        yield
    finally:
        vp.load_video_frames = original


def meta_preprocess_frames(frames: list[np.ndarray], image_size: int) -> torch.Tensor:
    """Frames as Meta's loader makes them: PIL resize to a square, /255, ImageNet normalise."""
    from PIL import Image

    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    out = torch.zeros(len(frames), 3, image_size, image_size)
    for i, f in enumerate(frames):
        arr = np.asarray(Image.fromarray(f).resize((image_size, image_size)), np.float32) / 255.0
        out[i] = torch.from_numpy(arr).permute(2, 0, 1)
    return (out - mean) / std


class MetaSam2VideoPropagator:
    """Geometric prompts on one frame, propagated with Meta's ``SAM2VideoPredictor``."""

    backend = "meta"

    def __init__(self, predictor: Any):
        self.predictor = predictor

    @torch.inference_mode()
    def propagate(
        self,
        frames: Sequence[np.ndarray] | np.ndarray,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        masks: np.ndarray | None = None,
        frame_idx: int = 0,
        obj_ids: Sequence[int] | None = None,
    ) -> VideoResult:
        """Same contract as `HFSam2VideoPropagator.propagate`."""
        frames = check_frames(frames)
        if not 0 <= frame_idx < len(frames):
            raise ValueError(f"frame_idx {frame_idx} outside a {len(frames)}-frame video.")
        hw = frames[0].shape[:2]
        pred = self.predictor
        images = meta_preprocess_frames(frames, pred.image_size)
        with _meta_frames(images, hw):
            state = pred.init_state(video_path="<in-memory>", offload_video_to_cpu=True)
        if masks is not None:
            m = np.asarray(masks, bool)
            m = m[None] if m.ndim == 2 else m
            ids = video_object_ids(obj_ids, len(m))
            for oid, mk in zip(ids, m, strict=True):
                pred.add_new_mask(state, frame_idx, oid, torch.from_numpy(mk))
        else:
            p = check_prompts(points, point_labels, boxes)
            ids = video_object_ids(obj_ids, p.n)
            for k, oid in enumerate(ids):
                pred.add_new_points_or_box(
                    state,
                    frame_idx,
                    oid,
                    points=None if p.points is None else p.points[k],
                    labels=None if p.labels is None else p.labels[k].astype(np.int32),
                    box=None if p.boxes is None else p.boxes[k],
                )
        per_frame: dict[int, dict[int, tuple[np.ndarray, float]]] = {}
        for reverse in (False, True):
            if reverse and frame_idx == 0:
                continue
            for t, out_ids, logits in pred.propagate_in_video(
                state, start_frame_idx=frame_idx, reverse=reverse
            ):
                m = (logits[:, 0] > 0).cpu().numpy()
                per_frame[int(t)] = {int(oid): (m[k], np.nan) for k, oid in enumerate(out_ids)}
        return assemble_video(per_frame, len(frames), hw)
