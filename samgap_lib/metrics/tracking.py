"""Identity metrics of many objects tracked through a video: HOTA (with DetA and AssA) and IDF1.

Computed by TrackEval (Luiten et al., the reference implementation of HOTA, used by SAM 3 for
pHOTA; the ``trackeval`` wheel pinned in ``requirements/``), not by hand: this module only turns
masks into TrackEval's per-sequence input. The similarity of a ground-truth and a predicted
object in a frame is their mask IoU, as TrackEval's mask datasets (and SAM 3's pHOTA) score it.

A track set is a list with one entry per frame: a dict ``{object id: (H, W) bool mask}`` of the
objects present in that frame (an empty mask counts as absent). Ids are any hashable; only their
equality across frames matters.

* `mot_data`: the TrackEval input of one sequence.
* `mot_scores`: HOTA, DetA, AssA, their recall/precision parts, LocA, and IDF1, IDR, IDP
  with their counts, for one sequence.
* `combine_mot_scores`: the scores of several sequences pooled as TrackEval pools them (counts
  summed; AssA weighted by true positives): SAM 3's pHOTA treats each (video, phrase) pair as
  one class-agnostic sequence and pools them so.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from .masks import mask_iou_matrix

__all__ = ["TrackSet", "combine_mot_scores", "mot_data", "mot_scores"]

TrackSet = Sequence[Mapping[Hashable, np.ndarray]]

# HOTA's fields averaged over its 19 localisation thresholds (alpha = 0.05 ... 0.95).
_HOTA_MEANS = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA")
_IDENTITY = ("IDF1", "IDR", "IDP", "IDTP", "IDFN", "IDFP")


def _present(frame: Mapping[Hashable, np.ndarray]) -> tuple[list[Hashable], np.ndarray | None]:
    ids = [k for k, m in frame.items() if np.asarray(m).any()]
    if not ids:
        return [], None
    return ids, np.stack([np.asarray(frame[k], dtype=bool) for k in ids])


def mot_data(gt: TrackSet, pred: TrackSet) -> dict[str, Any]:
    """TrackEval's input for one sequence (the dict its metrics' ``eval_sequence`` reads).

    Ids are renumbered 0..n-1 in order of first appearance; ``similarity_scores[t]`` is the
    ``(n_gt_t, n_pred_t)`` mask IoU matrix of frame ``t``.
    """
    if len(gt) != len(pred):
        raise ValueError(
            f"ground truth has {len(gt)} frames and the prediction {len(pred)}: give one dict "
            "of masks per frame to both (an empty dict for a frame with no object)."
        )
    gt_index: dict[Hashable, int] = {}
    pred_index: dict[Hashable, int] = {}
    gt_ids, pred_ids, sims = [], [], []
    for t, (g, p) in enumerate(zip(gt, pred, strict=True)):
        g_ids, g_masks = _present(g)
        p_ids, p_masks = _present(p)
        if g_masks is not None and p_masks is not None and g_masks.shape[1:] != p_masks.shape[1:]:
            raise ValueError(
                f"frame {t}: ground-truth masks are {g_masks.shape[1:]} and predicted masks "
                f"{p_masks.shape[1:]}; resize the predictions to the frame size."
            )
        gt_ids.append(np.array([gt_index.setdefault(k, len(gt_index)) for k in g_ids], dtype=int))
        pred_ids.append(
            np.array([pred_index.setdefault(k, len(pred_index)) for k in p_ids], dtype=int)
        )
        if g_masks is None or p_masks is None:
            sims.append(np.zeros((len(g_ids), len(p_ids))))
        else:
            sims.append(mask_iou_matrix(p_masks, g_masks).T)
    return {
        "num_timesteps": len(gt),
        "num_gt_ids": len(gt_index),
        "num_tracker_ids": len(pred_index),
        "num_gt_dets": int(sum(len(i) for i in gt_ids)),
        "num_tracker_dets": int(sum(len(i) for i in pred_ids)),
        "gt_ids": gt_ids,
        "tracker_ids": pred_ids,
        "similarity_scores": sims,
    }


def _metrics() -> tuple[Any, Any]:
    from trackeval.metrics import HOTA, Identity

    return HOTA(), Identity({"THRESHOLD": 0.5, "PRINT_CONFIG": False})


def _summary(hota: Mapping[str, Any], ident: Mapping[str, Any]) -> dict[str, float]:
    out = {k: float(np.mean(hota[k])) for k in _HOTA_MEANS}
    out["HOTA(0)"] = float(hota["HOTA(0)"])
    out.update({k: float(ident[k]) for k in _IDENTITY})
    return out


def mot_scores(gt: TrackSet, pred: TrackSet) -> dict[str, Any]:
    """HOTA and IDF1 of a predicted track set against the ground truth, by TrackEval.

    Returns
    -------
    dict
        ``HOTA``, ``DetA``, ``AssA``, ``DetRe``, ``DetPr``, ``AssRe``, ``AssPr``, ``LocA`` (each the
        mean over HOTA's 19 IoU thresholds, as TrackEval reports them), ``HOTA(0)`` (at the lowest
        threshold), ``IDF1``, ``IDR``, ``IDP`` and the counts ``IDTP``, ``IDFN``, ``IDFP`` (an
        identity match needs IoU >= 0.5), and ``raw``: TrackEval's per-sequence results, which
        `combine_mot_scores` pools.
    """
    data = mot_data(gt, pred)
    hota_metric, id_metric = _metrics()
    hota = hota_metric.eval_sequence(data)
    ident = id_metric.eval_sequence(data)
    return {**_summary(hota, ident), "raw": {"hota": hota, "identity": ident}}


def combine_mot_scores(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Pool `mot_scores` of several sequences as TrackEval pools sequences."""
    if not results:
        raise ValueError("no sequences to combine.")
    hota_metric, id_metric = _metrics()
    hota = hota_metric.combine_sequences({i: r["raw"]["hota"] for i, r in enumerate(results)})
    ident = id_metric.combine_sequences({i: r["raw"]["identity"] for i, r in enumerate(results)})
    return {**_summary(hota, ident), "raw": {"hota": hota, "identity": ident}}
