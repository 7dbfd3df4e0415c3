"""Temporal metrics for one tracked object across video frames.

* `per_frame_jf`: J (IoU) and F (DAVIS boundary F) of every frame of a track.
* `davis_statistics` / `decay`: DAVIS 2017's mean, recall and decay of per-frame values
  (davis2017-evaluation ``davis2017/utils.py`` ``db_statistics``).
* `track_scores`: J, F and J&F mean / recall / decay for a track.
* `temporal_stability`: motion-compensated IoU of consecutive predictions (defined below).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .masks import _pair, as_mask_stack, boundary_f1, iou

__all__ = [
    "consecutive_iou",
    "davis_statistics",
    "decay",
    "per_frame_jf",
    "temporal_stability",
    "track_scores",
]


def _track_pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    p, g = _pair(pred, gt)
    if p.ndim != 3:
        raise ValueError(f"a track is a (T, H, W) stack of frames, got shape {p.shape}.")
    if len(p) == 0:
        raise ValueError("the track has no frames (T = 0).")
    return p, g


def per_frame_jf(pred: Any, gt: Any, bound_th: float = 0.008) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame J (IoU) and F (boundary F) of one object's track.

    Parameters
    ----------
    pred, gt
        ``(T, H, W)`` predicted and ground-truth masks of the object in each frame. A frame where
        the object is absent has an empty ground truth; predicting nothing there scores 1.
    bound_th
        Boundary tolerance (see `samgap_lib.metrics.boundary_f1`).

    Returns
    -------
    J, F
        Two ``(T,)`` float64 arrays.
    """
    p, g = _track_pair(pred, gt)
    return np.asarray(iou(p, g)), np.asarray(boundary_f1(p, g, bound_th))


def _bins(n: int, n_bins: int = 4) -> list[slice]:
    # db_statistics: ids = round(linspace(1, n, 5) + 1e-10) - 1; bin i = ids[i] .. ids[i+1]
    # inclusive (neighbouring bins share their edge frame). DAVIS casts ids to uint8, which wraps
    # for sequences over 256 frames; int64 is used here, so long tracks get the intended bins.
    ids = (np.round(np.linspace(1, n, n_bins + 1) + 1e-10) - 1).astype(np.int64)
    return [slice(int(ids[i]), int(ids[i + 1]) + 1) for i in range(n_bins)]


def decay(values: Sequence[float] | np.ndarray) -> float:
    """DAVIS 2017 decay: mean of the first quarter of frames minus mean of the last quarter.

    The quarters are DAVIS's bins (``db_statistics``): 5 edges ``round(linspace(1, T, 5)) - 1``,
    bin ``i`` spanning edges ``i`` to ``i + 1`` inclusive. NaN frames are ignored (``nanmean``).
    Positive decay means the track got worse over time.

    Parameters
    ----------
    values
        ``(T,)`` per-frame scores, ``T >= 1``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("decay: no frames.")
    b = _bins(len(v))
    first, last = v[b[0]], v[b[3]]
    if np.isnan(first).all() or np.isnan(last).all():
        return float("nan")
    return float(np.nanmean(first) - np.nanmean(last))


def davis_statistics(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """DAVIS ``db_statistics``: ``mean``, ``recall`` (fraction of frames > 0.5) and ``decay``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("davis_statistics: no frames.")
    valid = ~np.isnan(v)
    mean = float(v[valid].mean()) if valid.any() else float("nan")
    # DAVIS: nanmean(v > 0.5); NaN > 0.5 is False, so NaN frames count as misses there
    recall = float(np.mean(v > 0.5))
    return {"mean": mean, "recall": recall, "decay": decay(v)}


def track_scores(pred: Any, gt: Any, bound_th: float = 0.008) -> dict[str, float]:
    """J, F and J&F statistics of one object's track (DAVIS 2017 semi-supervised protocol).

    DAVIS's own evaluation leaves out the first frame (given as the prompt) and the last; pass
    ``pred[1:-1], gt[1:-1]`` to reproduce that.

    Returns
    -------
    dict
        ``J_mean``, ``J_recall``, ``J_decay``, ``F_mean``, ``F_recall``, ``F_decay``,
        ``JF_mean`` (average of J_mean and F_mean, as DAVIS's J&F) and ``JF_decay``.
    """
    j, f = per_frame_jf(pred, gt, bound_th)
    sj, sf = davis_statistics(j), davis_statistics(f)
    return {
        "J_mean": sj["mean"],
        "J_recall": sj["recall"],
        "J_decay": sj["decay"],
        "F_mean": sf["mean"],
        "F_recall": sf["recall"],
        "F_decay": sf["decay"],
        "JF_mean": (sj["mean"] + sf["mean"]) / 2,
        "JF_decay": (sj["decay"] + sf["decay"]) / 2,
    }


def _offsets(offsets: Any, n: int) -> np.ndarray:
    off = np.asarray(offsets, dtype=np.float64)
    if off.shape != (n, 2):
        raise ValueError(
            f"offsets must be ({n}, 2) (x, y of each frame's window), got {off.shape}."
        )
    if not np.isfinite(off).all() or (off != np.round(off)).any():
        raise ValueError("offsets must be finite whole pixels (camera shift in pixels).")
    return off.astype(np.int64)


def consecutive_iou(masks: Any, offsets: Any | None = None) -> np.ndarray:
    """Motion-compensated IoU of each pair of consecutive masks of one object.

    Frame ``t`` shows the window of a static scene whose top-left corner is at ``offsets[t]``
    (``(x, y)`` in scene pixels; `samgap_lib.data.synthetic_orchard_video` stores it in
    ``meta["offset"]``). Both masks are placed in scene coordinates and compared only on the part
    of the scene that both frames see, so objects entering or leaving the view are not penalised.

    Parameters
    ----------
    masks
        ``(T, H, W)`` masks of one object (predicted, or ground truth as a baseline).
    offsets
        ``(T, 2)`` integer camera offsets; ``None`` means a static camera.

    Returns
    -------
    numpy.ndarray
        ``(T - 1,)`` float64; pair ``t`` compares frames ``t`` and ``t + 1``; 1.0 when the object
        is absent from the shared view in both, NaN when the frames share no view at all.
    """
    m = as_mask_stack(masks, "masks")
    if m.ndim != 3:
        raise ValueError(f"masks must be a (T, H, W) stack, got shape {m.shape}.")
    t_len, h, w = m.shape
    off = np.zeros((t_len, 2), np.int64) if offsets is None else _offsets(offsets, t_len)
    out = np.empty(max(t_len - 1, 0), dtype=np.float64)
    for t in range(t_len - 1):
        (ax, ay), (bx, by) = off[t], off[t + 1]
        # shared scene window
        sx0, sx1 = max(ax, bx), min(ax, bx) + w
        sy0, sy1 = max(ay, by), min(ay, by) + h
        if sx1 <= sx0 or sy1 <= sy0:
            out[t] = np.nan
            continue
        a = m[t, sy0 - ay : sy1 - ay, sx0 - ax : sx1 - ax]
        b = m[t + 1, sy0 - by : sy1 - by, sx0 - bx : sx1 - bx]
        inter = np.count_nonzero(a & b)
        union = np.count_nonzero(a | b)
        out[t] = inter / union if union else 1.0
    return out


def temporal_stability(masks: Any, offsets: Any | None = None) -> float:
    """Temporal stability of a track: the mean of `consecutive_iou` over frame pairs.

    Definition: ``TS = mean_t IoU(S_t(M_t), S_{t+1}(M_{t+1}))`` over consecutive frames whose
    views overlap, where ``S_t`` maps frame ``t`` into scene coordinates using the known camera
    offset and IoU is taken on the region both frames see. A perfectly stable prediction of a
    rigid, static object scores 1; flicker, jitter and drift lower it. This is the temporal
    consistency ("TC") measure of Liu et al., "Efficient Semantic Video Segmentation with
    Per-frame Inference" (ECCV 2020), which warps frame t's prediction to frame t+1 with optical
    flow, with the flow replaced by the known camera shift; it stands in for DAVIS 2016's T
    (shape-context matching of contours), which needs the original Matlab code. Compare a
    prediction's TS with the ground truth's (occlusion changes lower both).

    Parameters
    ----------
    masks
        ``(T, H, W)`` masks, ``T >= 2``.
    offsets
        ``(T, 2)`` integer camera offsets (x, y); ``None`` for a static camera.

    Returns
    -------
    float
        In [0, 1]; NaN pairs (no shared view) are skipped, NaN if all are.
    """
    m = np.asarray(masks)
    if m.ndim != 3 or len(m) < 2:
        raise ValueError(f"temporal_stability needs a (T, H, W) track with T >= 2, got {m.shape}.")
    v = consecutive_iou(masks, offsets)
    return float(np.nanmean(v)) if (~np.isnan(v)).any() else float("nan")
