"""Role protocols, result types and prompt checks shared by every backend.

Two roles:

- `PromptSegmenter` (SAM2, SAM3's tracker): geometric prompts (points, boxes, low-res mask
  logits) on one image, encoded once with `set_image`, decoded for many objects in one call.
- `ConceptSegmenter` (SAM3's detector): noun phrases and/or exemplar boxes on an image;
  all instances of each concept.

Everything at this boundary is numpy: images ``(H, W, 3)`` uint8 RGB, coordinates in pixels of
the input image (points ``xy``, boxes ``xyxy``), masks bool at the input image's size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from samgap_lib.data.types import check_image

__all__ = [
    "ConceptPrediction",
    "ConceptSegmenter",
    "Exemplars",
    "PromptResult",
    "PromptSegmenter",
    "VideoResult",
    "assemble_video",
    "check_frames",
    "check_prompts",
    "video_object_ids",
]


@dataclass
class PromptResult:
    """Masks for N objects prompted on one image.

    Attributes
    ----------
    masks
        ``(N, C, H, W)`` bool with ``C`` candidate masks per object (multimask), or
        ``(N, H, W)`` when a single mask was asked for; ``H, W`` are the input image's size.
    scores
        ``(N, C)`` (or ``(N,)``) predicted IoU of each mask.
    low_res_logits
        ``(N, C, h, w)`` (or ``(N, h, w)``) float32 mask logits at the model's mask resolution;
        pass one of them back as ``mask_input`` for the next click.
    object_scores
        ``(N,)`` object-presence logits (SAM2 occlusion head); NaN where a backend has none.
    """

    masks: np.ndarray
    scores: np.ndarray
    low_res_logits: np.ndarray
    object_scores: np.ndarray

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    def best(self) -> tuple[np.ndarray, np.ndarray]:
        """``(N, H, W)`` masks and ``(N,)`` scores of the highest-scoring candidate per object."""
        if self.masks.ndim == 3:
            return self.masks, self.scores
        idx = self.scores.argmax(axis=1)
        rows = np.arange(len(idx))
        return self.masks[rows, idx], self.scores[rows, idx]


@dataclass
class ConceptPrediction:
    """All instances one concept prompt found on an image.

    Attributes
    ----------
    phrase
        The noun phrase ("visual" for an exemplar-only prompt, as in SAM3).
    masks
        ``(K, H, W)`` bool at the input image's size.
    boxes
        ``(K, 4)`` xyxy pixels of the input image.
    scores
        ``(K,)`` ``sigmoid(logit) x presence``, all above the threshold, sorted descending.
    presence
        Image-level presence score of the concept (sigmoid of the presence logit).
    """

    phrase: str
    masks: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    presence: float

    def __len__(self) -> int:
        return int(self.scores.shape[0])


@dataclass
class Exemplars:
    """Exemplar boxes for a concept prompt (SAM3 "image exemplars").

    Attributes
    ----------
    boxes
        ``(E, 4)`` xyxy pixels of the input image.
    labels
        ``(E,)`` 1 for a positive exemplar, 0 for a negative one (default: all positive).
    """

    boxes: np.ndarray
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32)
        if boxes.ndim == 1:
            boxes = boxes[None]
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(
                f"exemplar boxes: expected (E, 4) xyxy pixels, got shape {boxes.shape}."
            )
        labels = np.ones(len(boxes), np.int64) if self.labels is None else np.asarray(self.labels)
        labels = labels.reshape(-1).astype(np.int64)
        if labels.shape != (len(boxes),):
            raise ValueError(f"exemplar labels: expected ({len(boxes)},), got {labels.shape}.")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("exemplar labels must be 1 (positive) or 0 (negative).")
        _check_boxes_order(boxes, "exemplar boxes")
        self.boxes, self.labels = boxes, labels


@dataclass
class VideoResult:
    """Per-frame masks of tracked objects with stable ids.

    Attributes
    ----------
    object_ids
        Sorted ids of every object seen in the video.
    masks
        ``(T, K, H, W)`` bool, ``masks[t, k]`` the mask of ``object_ids[k]`` on frame ``t``
        (all False where the object is absent or the frame was not reached).
    scores
        ``(T, K)`` per-frame object scores (NaN where not available).
    processed
        Sorted indices of the frames the model produced output for.
    """

    object_ids: list[int]
    masks: np.ndarray
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    processed: list[int] = field(default_factory=list)

    def frame(self, t: int) -> dict[int, np.ndarray]:
        """``{object_id: (H, W) mask}`` on frame ``t``."""
        return {oid: self.masks[t, k] for k, oid in enumerate(self.object_ids)}

    def track_set(self) -> list[dict[int, np.ndarray]]:
        """The result as a track set (`samgap_lib.metrics.tracking`): per frame, the objects
        with a non-empty mask."""
        return [{k: m for k, m in self.frame(t).items() if m.any()} for t in range(len(self.masks))]


@runtime_checkable
class PromptSegmenter(Protocol):
    """Geometric prompts on one image at a time (SAM2, SAM3 tracker)."""

    backend: str

    def set_image(self, image: np.ndarray) -> None: ...

    def predict(
        self,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
    ) -> PromptResult: ...

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        prompts: Sequence[Mapping[str, Any]],
        multimask: bool = True,
    ) -> list[PromptResult]: ...


@runtime_checkable
class ConceptSegmenter(Protocol):
    """Concept prompts: all instances of each phrase / exemplar set (SAM3 detector)."""

    backend: str
    threshold: float

    def set_image(self, image: np.ndarray) -> None: ...

    def segment(
        self,
        image: np.ndarray | None = None,
        phrases: Sequence[str] | str | None = None,
        exemplars: Exemplars | Mapping[str, Exemplars] | None = None,
        threshold: float | None = None,
    ) -> dict[str, ConceptPrediction]: ...


# ----------------------------------------------------------------------------- prompt checks


def _check_boxes_order(boxes: np.ndarray, what: str) -> None:
    if not np.isfinite(boxes).all():
        raise ValueError(f"{what}: coordinates must be finite.")
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        raise ValueError(f"{what}: expected xyxy with x1 >= x0 and y1 >= y0 (pixels).")


@dataclass
class CheckedPrompts:
    """Prompts for N objects in a canonical shape (see `check_prompts`)."""

    n: int
    points: np.ndarray | None  # (N, P, 2) float32 xy pixels
    labels: np.ndarray | None  # (N, P) int64
    boxes: np.ndarray | None  # (N, 4) float32 xyxy pixels
    mask_input: np.ndarray | None  # (N, 1, h, w) float32 logits


def split_prompts(prompts: CheckedPrompts, size: int) -> list[CheckedPrompts]:
    """The objects of ``prompts`` in consecutive groups of at most ``size``."""

    def part(a: np.ndarray | None, i: int) -> np.ndarray | None:
        return None if a is None else a[i : i + size]

    return [
        CheckedPrompts(
            min(size, prompts.n - i),
            part(prompts.points, i),
            part(prompts.labels, i),
            part(prompts.boxes, i),
            part(prompts.mask_input, i),
        )
        for i in range(0, prompts.n, size)
    ]


def concat_results(parts: Sequence[PromptResult]) -> PromptResult:
    """One `PromptResult` of the objects of ``parts``, in order."""
    return PromptResult(
        masks=np.concatenate([p.masks for p in parts]),
        scores=np.concatenate([p.scores for p in parts]),
        low_res_logits=np.concatenate([p.low_res_logits for p in parts]),
        object_scores=np.concatenate([p.object_scores for p in parts]),
    )


def prompt_result(
    masks: np.ndarray, scores: Any, low_res_logits: Any, multimask: bool, object_scores: Any = None
) -> PromptResult:
    """A `PromptResult` from a decoder's ``(N, C, ...)`` outputs (torch or numpy); with
    ``multimask=False`` the single candidate axis is dropped. ``object_scores`` None: NaN."""

    def arr(x: Any) -> np.ndarray:
        return x.float().cpu().numpy() if hasattr(x, "cpu") else np.asarray(x, np.float32)

    scores_np, low_np = arr(scores), arr(low_res_logits)
    if not multimask:
        masks, scores_np, low_np = masks[:, 0], scores_np[:, 0], low_np[:, 0]
    n = len(masks)
    obj = np.full(n, np.nan, np.float32) if object_scores is None else arr(object_scores)
    return PromptResult(masks=masks, scores=scores_np, low_res_logits=low_np, object_scores=obj)


def objects_per_call(device: Any) -> int | None:
    """How many objects one mask-decoder call takes: 8 on CPU, where bigger batches spill the
    cache and run slower per object (hiera_t, 50 boxes: 0.98 s in groups of 8 vs 1.50 s in one
    call at 512 px); all at once on accelerators."""
    return 8 if str(device).startswith("cpu") else None


def check_prompts(
    points: Any = None,
    point_labels: Any = None,
    boxes: Any = None,
    mask_input: Any = None,
) -> CheckedPrompts:
    """Validate geometric prompts and bring them to ``(N, ...)`` shapes.

    Parameters
    ----------
    points
        ``(P, 2)`` xy pixels for one object, or ``(N, P, 2)`` for N objects. Pad objects with
        fewer points using label -1 ("not a point").
    point_labels
        ``(P,)`` or ``(N, P)``: 1 foreground, 0 background, -1 padding. Default: all 1.
    boxes
        ``(4,)`` or ``(N, 4)`` xyxy pixels.
    mask_input
        Low-res mask logits from a previous call: ``(h, w)``, ``(N, h, w)`` or ``(N, 1, h, w)``.

    Returns
    -------
    CheckedPrompts
        With the number of objects ``n``; raises ``ValueError`` on inconsistent input.
    """
    n = None
    pts = lab = bxs = msk = None
    if points is not None:
        pts = np.asarray(points, dtype=np.float32)
        if pts.ndim == 2:
            pts = pts[None]
        if pts.ndim != 3 or pts.shape[-1] != 2 or pts.shape[1] == 0:
            raise ValueError(
                f"points: expected (P, 2) or (N, P, 2) xy pixels, got shape {np.shape(points)}."
            )
        if not np.isfinite(pts).all():
            raise ValueError("points: coordinates must be finite.")
        n = pts.shape[0]
        if point_labels is None:
            lab = np.ones(pts.shape[:2], np.int64)
        else:
            lab = np.asarray(point_labels).astype(np.int64)
            if lab.ndim == 1:
                lab = lab[None]
            if lab.shape != pts.shape[:2]:
                raise ValueError(
                    f"point_labels: shape {np.shape(point_labels)} does not match points "
                    f"{np.shape(points)}; expected {pts.shape[:2]}."
                )
            if not np.isin(lab, (-1, 0, 1)).all():
                raise ValueError("point_labels must be 1 (foreground), 0 (background) or -1 (pad).")
    elif point_labels is not None:
        raise ValueError("point_labels given without points.")
    if boxes is not None:
        bxs = np.asarray(boxes, dtype=np.float32)
        if bxs.ndim == 1:
            bxs = bxs[None]
        if bxs.ndim != 2 or bxs.shape[1] != 4:
            raise ValueError(f"boxes: expected (4,) or (N, 4) xyxy pixels, got {np.shape(boxes)}.")
        _check_boxes_order(bxs, "boxes")
        if n is not None and bxs.shape[0] != n:
            raise ValueError(f"{n} point sets but {bxs.shape[0]} boxes: give one box per object.")
        n = bxs.shape[0]
    if mask_input is not None:
        msk = np.asarray(mask_input, dtype=np.float32)
        if msk.ndim == 2:
            msk = msk[None]
        if msk.ndim == 3:
            msk = msk[:, None]
        if msk.ndim != 4 or msk.shape[1] != 1:
            raise ValueError(
                f"mask_input: expected (h, w), (N, h, w) or (N, 1, h, w) logits, got {np.shape(mask_input)}."
            )
        if n is None:
            n = msk.shape[0]
        elif msk.shape[0] != n:
            raise ValueError(f"{n} objects but {msk.shape[0]} mask inputs.")
    if n is None:
        raise ValueError("no prompt: give points, boxes or mask_input.")
    if n == 0:
        raise ValueError("empty prompt: zero objects.")
    return CheckedPrompts(n=n, points=pts, labels=lab, boxes=bxs, mask_input=msk)


def check_phrases(phrases: Sequence[str] | str | None) -> list[str]:
    """A list of non-empty phrases without duplicates (order kept)."""
    if phrases is None:
        return []
    if isinstance(phrases, str):
        phrases = [phrases]
    out: list[str] = []
    for p in phrases:
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"phrases must be non-empty strings, got {p!r}.")
        if p not in out:
            out.append(p)
    return out


def concept_prompts(
    phrases: Sequence[str] | str | None,
    exemplars: Exemplars | Mapping[str, Exemplars] | None,
) -> list[tuple[str, Exemplars | None]]:
    """Pair each phrase with its exemplars.

    A single `Exemplars` applies to every phrase, or alone (phrase "visual", as SAM3 does)
    when no phrase is given; a mapping gives exemplars per phrase (its keys are added to the
    phrases).
    """
    names = check_phrases(phrases)
    if exemplars is None:
        if not names:
            raise ValueError("no concept prompt: give phrases and/or exemplars.")
        return [(p, None) for p in names]
    if isinstance(exemplars, Exemplars):
        if not names:
            return [("visual", exemplars)]
        return [(p, exemplars) for p in names]
    if isinstance(exemplars, Mapping):
        for key, ex in exemplars.items():
            if not isinstance(ex, Exemplars):
                raise TypeError(
                    f"exemplars[{key!r}] must be an Exemplars, got {type(ex).__name__}."
                )
            if key not in names:
                names.append(key)
        return [(p, exemplars.get(p)) for p in names]
    raise TypeError(f"exemplars must be Exemplars or a mapping, got {type(exemplars).__name__}.")


def check_frames(frames: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Video frames as a list of equally sized ``(H, W, 3)`` uint8 arrays."""
    out = [check_image(f, what=f"frame {i}") for i, f in enumerate(frames)]
    if not out:
        raise ValueError("empty video: no frames.")
    if any(f.shape != out[0].shape for f in out):
        raise ValueError("all frames must have the same size.")
    return out


def assemble_video(
    per_frame: dict[int, dict[int, tuple[np.ndarray, float]]], n_frames: int, hw: tuple[int, int]
) -> VideoResult:
    """A `VideoResult` from ``per_frame[t][object_id] = (mask, score)`` (objects in id order;
    frames or objects without an answer stay empty, their scores NaN)."""
    ids = sorted({oid for frame in per_frame.values() for oid in frame})
    masks = np.zeros((n_frames, len(ids), *hw), bool)
    scores = np.full((n_frames, len(ids)), np.nan, np.float32)
    col = {oid: k for k, oid in enumerate(ids)}
    for t, frame in per_frame.items():
        for oid, (m, s) in frame.items():
            masks[t, col[oid]] = m
            scores[t, col[oid]] = s
    return VideoResult(object_ids=ids, masks=masks, scores=scores, processed=sorted(per_frame))


def video_object_ids(obj_ids: Sequence[int] | None, n: int) -> list[int]:
    """``obj_ids`` checked to be ``n`` distinct ids (None: 1..n)."""
    ids = list(range(1, n + 1)) if obj_ids is None else [int(i) for i in obj_ids]
    if len(ids) != n or len(set(ids)) != n:
        raise ValueError(f"need {n} distinct object ids, got {obj_ids}.")
    return ids
