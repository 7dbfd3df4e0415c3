"""Degraded tracks for the temporal metrics: ground-truth tracks from video frames
(`tracks_from_frames`), shifted masks (`shift_mask`), tracks degraded by drift, drops and jitter
(`degrade_track`), the erosion a boundary tolerance cannot see (`invisible_erosion`), and the
identity errors of many tracked objects, for HOTA and IDF1: per-frame track sets
(`frames_of_tracks`), two identities swapped (`swap_identities`), every identity restarted
(`restart_identities`)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from ...data.types import Sample
from ...metrics import (
    as_mask_stack,
    boundary_f1,
    boundary_tolerance,
    iou,
)
from .detections import _JITTER, _check_radius, _rng
from .perturbations import erode


def tracks_from_frames(frames: Sequence[Sample]) -> dict[int, np.ndarray]:
    """Per ``instance_id``, the ``(T, H, W)`` ground-truth masks of the object in every frame
    (empty where it is not visible), from video frames such as
    `samgap_lib.data.synthetic_orchard_video`'s."""
    if not frames:
        raise ValueError("tracks_from_frames: no frames.")
    shape = (frames[0].height, frames[0].width)
    if any((f.height, f.width) != shape for f in frames):
        raise ValueError("tracks_from_frames: every frame must have the same size.")
    ids = sorted({inst.instance_id for f in frames for inst in f.instances})
    out = {k: np.zeros((len(frames), *shape), dtype=bool) for k in ids}
    for t, f in enumerate(frames):
        for inst in f.instances:
            out[inst.instance_id][t] |= inst.mask
    return out


def shift_mask(mask: Any, dx: int, dy: int) -> np.ndarray:
    """Translate an ``(H, W)`` mask by whole pixels (``dx`` right, ``dy`` down), zero fill."""
    m = as_mask_stack(mask, "mask")
    if m.ndim != 2:
        raise ValueError(f"shift_mask expects an (H, W) mask, got shape {m.shape}.")
    dx, dy = int(dx), int(dy)
    h, w = m.shape
    out = np.zeros_like(m)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = m[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def degrade_track(
    masks: Any,
    erosion: int | Sequence[int] = 0,
    jitter: int | Sequence[int] = 0,
    seed: int = 0,
) -> np.ndarray:
    """A controlled, imperfect track: frame ``t`` eroded and shifted at random.

    Parameters
    ----------
    masks
        ``(T, H, W)`` ground-truth track.
    erosion
        Erosion radius per frame (px): one number for every frame, or ``T`` numbers (a radius
        growing with ``t`` is a drifting track).
    jitter
        Maximum shift per frame (px): frame ``t`` moves by ``(dx, dy)`` drawn uniformly from
        ``-jitter[t] .. jitter[t]`` (a jittery, flickering track).
    seed
        Seed of the shifts (draws depend only on ``(seed, t)``, so a larger jitter moves a frame
        at least as far in the same direction pattern).

    Returns
    -------
    numpy.ndarray
        ``(T, H, W)`` bool.
    """
    m = as_mask_stack(masks, "masks")
    if m.ndim != 3 or len(m) == 0:
        raise ValueError(f"degrade_track expects a (T, H, W) track with T >= 1, got {m.shape}.")
    t_len = len(m)

    def per_frame(name: str, v: Any) -> list[int]:
        arr = np.broadcast_to(np.asarray(v), (t_len,)) if np.ndim(v) == 0 else np.asarray(v)
        if arr.shape != (t_len,):
            raise ValueError(
                f"{name} must be one number or {t_len} numbers, got shape {arr.shape}."
            )
        return [_check_radius(x) for x in arr.tolist()]

    er, jit = per_frame("erosion", erosion), per_frame("jitter", jitter)
    out = np.empty_like(m)
    for t in range(t_len):
        frame = erode(m[t], er[t])
        u = _rng(seed, _JITTER, t).uniform(-1, 1, 2)
        dx, dy = (int(np.round(v * jit[t])) for v in u)
        out[t] = shift_mask(frame, dx, dy) if (dx or dy) else frame
    return out


def invisible_erosion(mask: Any, bound_th: float, min_f: float = 0.9) -> tuple[int, float]:
    """How much of an object Boundary F can lose without noticing.

    The mask is eroded by ``r = 1, 2, ...`` pixels while Boundary F of the eroded mask against
    the original, at tolerance ``bound_th`` (see `samgap_lib.metrics.boundary_f1`), stays
    ``>= min_f`` and the eroded mask is not empty.

    Returns
    -------
    radius, iou
        The largest such ``r`` (0 when already ``r = 1`` fails) and the IoU of the mask eroded by
        it (1.0 for ``r = 0``): the share of the object left when Boundary F still reports at
        least ``min_f``.
    """
    m = as_mask_stack(mask, "mask")
    if m.ndim != 2 or not m.any():
        raise ValueError(f"invisible_erosion needs a non-empty (H, W) mask, got shape {m.shape}.")
    if not 0 < min_f <= 1:
        raise ValueError(f"min_f must be in (0, 1], got {min_f!r}.")
    boundary_tolerance(bound_th, m.shape)  # validates bound_th
    best, best_iou = 0, 1.0
    for r in range(1, max(m.shape)):
        e = erode(m, r)
        if not e.any() or boundary_f1(e, m, bound_th) < min_f:
            break
        best, best_iou = r, float(iou(e, m))
    return best, best_iou


def frames_of_tracks(tracks: Mapping[Hashable, Any]) -> list[dict[Hashable, np.ndarray]]:
    """``{id: (T, H, W) masks}`` as a track set: one ``{id: mask}`` dict per frame, holding the
    objects whose mask is not empty there (the form `samgap_lib.metrics.mot_scores` reads)."""
    stacks = {k: as_mask_stack(v, f"tracks[{k!r}]") for k, v in tracks.items()}
    lengths = {len(v) for v in stacks.values()}
    if len(lengths) > 1 or any(v.ndim != 3 for v in stacks.values()):
        raise ValueError("frames_of_tracks: every track must be a (T, H, W) stack of one length T.")
    n = lengths.pop() if lengths else 0
    return [{k: v[t] for k, v in stacks.items() if v[t].any()} for t in range(n)]


def swap_identities(
    frames: Sequence[Mapping[Hashable, np.ndarray]], a: Hashable, b: Hashable, from_frame: int
) -> list[dict[Hashable, np.ndarray]]:
    """The track set with the identities ``a`` and ``b`` exchanged from ``from_frame`` on (masks
    unchanged): a tracker that swaps two objects where they pass close."""
    swap = {a: b, b: a}
    return [
        {(swap.get(k, k) if t >= from_frame else k): m for k, m in f.items()}
        for t, f in enumerate(frames)
    ]


def restart_identities(
    frames: Sequence[Mapping[Hashable, np.ndarray]], from_frame: int
) -> list[dict[Hashable, Any]]:
    """The track set with every identity replaced by a new one from ``from_frame`` on (masks
    unchanged): a tracker that loses every object and picks each up again as a new one."""
    return [
        {((k, "again") if t >= from_frame else k): m for k, m in f.items()}
        for t, f in enumerate(frames)
    ]
