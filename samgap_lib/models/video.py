"""Video propagation with stable object ids.

- SAM2 (geometric prompts on one frame): transformers ``Sam2VideoModel`` and Meta's
  ``SAM2VideoPredictor``.
- SAM3 (a phrase): transformers ``Sam3VideoModel``. Meta's SAM3 video predictor is CUDA-bound
  (``load_sam3(backend="meta", role="video")`` raises ``NotImplementedError`` saying why).

``propagate`` runs forward from the prompted frame to the end, then backward to the start, and
returns a `VideoResult` (``masks[t, k]`` for ``object_ids[k]``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from .base import VideoResult, check_frames, check_prompts
from .loading import autocast, autocast_dtype, resolve_device

__all__ = ["HFSam2VideoPropagator", "HFSam3VideoPropagator", "MetaSam2VideoPropagator"]


def _assemble(
    per_frame: dict[int, dict[int, tuple[np.ndarray, float]]], n_frames: int, hw: tuple[int, int]
) -> VideoResult:
    ids = sorted({oid for frame in per_frame.values() for oid in frame})
    masks = np.zeros((n_frames, len(ids), *hw), bool)
    scores = np.full((n_frames, len(ids)), np.nan, np.float32)
    col = {oid: k for k, oid in enumerate(ids)}
    for t, frame in per_frame.items():
        for oid, (m, s) in frame.items():
            masks[t, col[oid]] = m
            scores[t, col[oid]] = s
    return VideoResult(object_ids=ids, masks=masks, scores=scores, processed=sorted(per_frame))


def _object_ids(obj_ids: Sequence[int] | None, n: int) -> list[int]:
    ids = list(range(1, n + 1)) if obj_ids is None else [int(i) for i in obj_ids]
    if len(ids) != n or len(set(ids)) != n:
        raise ValueError(f"need {n} distinct object ids, got {obj_ids}.")
    return ids


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
            ids = _object_ids(obj_ids, len(m))
            self.processor.add_inputs_to_inference_session(
                session,
                frame_idx=frame_idx,
                obj_ids=ids,
                input_masks=[x.astype(np.float32) for x in m],
            )
        else:
            p = check_prompts(points, point_labels, boxes)
            ids = _object_ids(obj_ids, p.n)
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
        return _assemble(per_frame, len(frames), hw)


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
        return _assemble(per_frame, len(frames), hw)


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
            ids = _object_ids(obj_ids, len(m))
            for oid, mk in zip(ids, m, strict=True):
                pred.add_new_mask(state, frame_idx, oid, torch.from_numpy(mk))
        else:
            p = check_prompts(points, point_labels, boxes)
            ids = _object_ids(obj_ids, p.n)
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
        return _assemble(per_frame, len(frames), hw)
