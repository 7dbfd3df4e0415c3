"""Video propagation with stable object ids on transformers' models.

- SAM2 (geometric prompts on one frame): ``Sam2VideoModel``; Meta's ``SAM2VideoPredictor`` is in
  `samgap_lib.models.meta.video`.
- SAM3 (a phrase): ``Sam3VideoModel``. Meta's SAM3 video predictor is CUDA-bound
  (``load_sam3(backend="meta", role="video")`` raises ``NotImplementedError`` saying why).

``propagate`` runs forward from the prompted frame to the end, then backward to the start, and
returns a `VideoResult` (``masks[t, k]`` for ``object_ids[k]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ...devices import autocast, autocast_dtype, resolve_device
from ..base import VideoResult, assemble_video, check_frames, check_prompts, video_object_ids

__all__ = ["HFSam2VideoPropagator", "HFSam3VideoPropagator"]


class HFSam2VideoPropagator:
    """Geometric prompts on one frame, propagated with transformers' ``Sam2VideoModel``."""

    backend = "transformers"

    def __init__(
        self,
        model: Any,
        processor: Any,
        device: str | torch.device = "auto",
        use_autocast: bool = True,
    ):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.amp_dtype = autocast_dtype(self.device, use_autocast)

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
        """Track N objects prompted on frame ``frame_idx`` through the video.

        Parameters
        ----------
        frames
            ``(T, H, W, 3)`` uint8 RGB frames.
        points, point_labels, boxes
            Prompts for N objects in pixels of the frames (as in `PromptSegmenter.predict`).
        masks
            ``(N, H, W)`` bool masks instead of points/boxes.
        frame_idx
            The prompted frame.
        obj_ids
            Ids for the N objects (default 1..N).
        """
        frames = check_frames(frames)
        if not 0 <= frame_idx < len(frames):
            raise ValueError(f"frame_idx {frame_idx} outside a {len(frames)}-frame video.")
        hw = frames[0].shape[:2]
        session = self.processor.init_video_session(
            video=frames, inference_device=self.device, dtype=torch.float32
        )
        if masks is not None:
            m = np.asarray(masks, bool)
            m = m[None] if m.ndim == 2 else m
            ids = video_object_ids(obj_ids, len(m))
            self.processor.add_inputs_to_inference_session(
                session,
                frame_idx=frame_idx,
                obj_ids=ids,
                input_masks=[x.astype(np.float32) for x in m],
            )
        else:
            p = check_prompts(points, point_labels, boxes)
            ids = video_object_ids(obj_ids, p.n)
            self.processor.add_inputs_to_inference_session(
                session,
                frame_idx=frame_idx,
                obj_ids=ids,
                input_points=None if p.points is None else [p.points.tolist()],
                input_labels=None if p.labels is None else [p.labels.tolist()],
                input_boxes=None if p.boxes is None else [p.boxes.tolist()],
            )
        per_frame: dict[int, dict[int, tuple[np.ndarray, float]]] = {}
        with autocast(self.device, self.amp_dtype):
            for reverse in (False, True):
                if reverse and frame_idx == 0:
                    continue
                it = self.model.propagate_in_video_iterator(
                    session, start_frame_idx=frame_idx, reverse=reverse
                )
                for out in it:
                    up = self.processor.post_process_masks(
                        [out.pred_masks.float()], original_sizes=[hw], binarize=True
                    )[0]
                    up = up.reshape(len(out.object_ids), *hw).cpu().numpy()
                    sc = (
                        out.object_score_logits.float().reshape(-1).cpu().numpy()
                        if out.object_score_logits is not None
                        else None
                    )
                    per_frame[int(out.frame_idx)] = {
                        int(oid): (up[k], float(sc[k]) if sc is not None else np.nan)
                        for k, oid in enumerate(out.object_ids)
                    }
        return assemble_video(per_frame, len(frames), hw)


class HFSam3VideoPropagator:
    """A phrase detected and tracked through a video with transformers' ``Sam3VideoModel``."""

    backend = "transformers"

    def __init__(
        self,
        model: Any,
        processor: Any,
        device: str | torch.device = "auto",
        threshold: float = 0.5,
        use_autocast: bool = True,
    ):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.threshold = float(threshold)
        self.amp_dtype = autocast_dtype(self.device, use_autocast)

    @torch.inference_mode()
    def propagate(
        self, frames: Sequence[np.ndarray] | np.ndarray, phrase: str, frame_idx: int = 0
    ) -> VideoResult:
        """Every instance of ``phrase``, from frame ``frame_idx`` to the end, then back to 0."""
        frames = check_frames(frames)
        if not isinstance(phrase, str) or not phrase.strip():
            raise ValueError("phrase must be a non-empty string.")
        if not 0 <= frame_idx < len(frames):
            raise ValueError(f"frame_idx {frame_idx} outside a {len(frames)}-frame video.")
        hw = frames[0].shape[:2]
        per_frame: dict[int, dict[int, tuple[np.ndarray, float]]] = {}
        self.model.score_threshold_detection = self.threshold
        session = self.processor.init_video_session(
            video=frames, inference_device=self.device, dtype=torch.float32
        )
        self.processor.add_text_prompt(session, phrase)
        with autocast(self.device, self.amp_dtype):
            for reverse in (False, True):
                if reverse and frame_idx == 0:
                    continue
                for out in self.model.propagate_in_video_iterator(
                    session, start_frame_idx=frame_idx, reverse=reverse
                ):
                    res = self.processor.postprocess_outputs(session, out)
                    ids = [int(i) for i in res["object_ids"].tolist()]
                    m = res["masks"].cpu().numpy().astype(bool)
                    s = res["scores"].float().cpu().numpy()
                    per_frame[int(out.frame_idx)] = {
                        oid: (m[k], float(s[k])) for k, oid in enumerate(ids)
                    }
        return assemble_video(per_frame, len(frames), hw)
