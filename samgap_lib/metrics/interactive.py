"""Interactive segmentation metrics: NoC, NoF and mIoU@k (RITM protocol), and candidate selection.

RITM (SamsungLabs/ritm_interactive_segmentation, ``isegm/inference/evaluation.py`` and
``utils.py``): for each instance a simulated user clicks up to ``max_clicks`` times (see
`samgap_lib.prompts.Clicker`); after each click the prediction ``probs > 0.49`` is scored by IoU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["MIOU_CLICKS", "candidate_selection", "noc"]

MIOU_CLICKS = (1, 2, 3, 5, 10, 20)


def _thr_key(t: float) -> str:
    return f"{t:g}"


def noc(
    ious: Sequence[Sequence[float]] | np.ndarray,
    thresholds: Sequence[float] = (0.8, 0.85, 0.9),
    max_clicks: int = 20,
    miou_clicks: Sequence[int] = MIOU_CLICKS,
) -> dict[str, float]:
    """Number of clicks (NoC), number of failures (NoF) and mean IoU after k clicks.

    Parameters
    ----------
    ious
        Per instance, the IoU after click 1, 2, ... : an ``(N, K)`` array or a list of 1-D
        sequences (RITM stops an instance early once it reaches its target IoU, so lengths may
        differ). Each needs at least one value and at most ``max_clicks``.
    thresholds
        IoU targets ``t`` (RITM reports 0.8, 0.85, 0.9).
    max_clicks
        Click budget (RITM: 20).
    miou_clicks
        Click counts ``k`` for mIoU@k; those above ``max_clicks`` are skipped.

    Returns
    -------
    dict
        ``"NoC@t"``: mean over instances of the first click index (1-based) with IoU >= t, or
        ``max_clicks`` when never reached (RITM ``compute_noc_metric``);
        ``"NoF@t"``: RITM's failure count, instances whose NoC equals ``max_clicks`` (RITM's
        ">=20@85%" column: this also counts an instance that reaches t exactly at the last
        click); ``"NoF_never@t"``: instances that never reach t within ``max_clicks``;
        ``"mIoU@k"``: mean IoU after k clicks, where an instance stopped early keeps its last
        IoU (its mask no longer changes); ``"n_instances"``. Keys format ``t`` with ``%g``
        (``"NoC@0.85"``).

    Raises
    ------
    ValueError
        No instances, an empty IoU list, NaN/out-of-range IoUs, or more clicks than
        ``max_clicks``.
    """
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be >= 1, got {max_clicks}.")
    rows = [np.asarray(r, dtype=np.float64).ravel() for r in ious]
    if not rows:
        raise ValueError("noc: no instances; pass one IoU sequence per instance.")
    lengths = np.array([len(r) for r in rows])
    if (lengths == 0).any():
        raise ValueError(f"noc: instance {int(np.argmin(lengths))} has no IoU values (no click).")
    if (lengths > max_clicks).any():
        raise ValueError(
            f"noc: an instance has {lengths.max()} IoU values but max_clicks={max_clicks}; "
            "pass ious[:, :max_clicks] or a larger max_clicks."
        )
    k_max = int(lengths.max())
    arr = np.empty((len(rows), k_max), dtype=np.float64)
    for i, r in enumerate(rows):
        arr[i, : len(r)] = r
        arr[i, len(r) :] = r[-1]  # carry the last IoU forward (padding never adds a crossing:
        # a padded value equals an earlier one, which was already tested)
    if np.isnan(arr).any() or (arr < 0).any() or (arr > 1).any():
        raise ValueError("noc: IoUs must be in [0, 1] without NaN.")
    out: dict[str, float] = {"n_instances": float(len(rows))}
    for t in thresholds:
        hit = arr >= t
        reached = hit.any(axis=1)
        first = np.where(reached, hit.argmax(axis=1) + 1, max_clicks)
        out[f"NoC@{_thr_key(t)}"] = float(first.mean())
        out[f"NoF@{_thr_key(t)}"] = float((first == max_clicks).sum())
        out[f"NoF_never@{_thr_key(t)}"] = float((~reached).sum())
    for k in miou_clicks:
        if k <= max_clicks:
            out[f"mIoU@{k}"] = float(arr[:, min(k, k_max) - 1].mean())
    return out


def candidate_selection(
    ious: np.ndarray | Sequence[Sequence[float]],
    scores: np.ndarray | Sequence[Sequence[float]],
) -> dict[str, Any]:
    """How well a model's own scores choose among its candidate masks for one prompt.

    SAM answers an ambiguous prompt (one click) with ``C`` candidate masks and a predicted IoU
    for each. Its protocol keeps the candidate with the highest predicted IoU ("most
    confident"); the SAM paper also reports the *oracle*, the candidate closest to the ground
    truth (Kirillov et al. 2023, Fig. 9). The gap between the two is what the IoU head's choice
    costs; the per-candidate numbers show whether every candidate was trained.

    Parameters
    ----------
    ious
        ``(N, C)``: IoU of each of the ``C`` candidates of ``N`` prompts with their ground truth,
        in [0, 1].
    scores
        ``(N, C)``: the model's score (predicted IoU) of each candidate. The first of tied
        maxima is the one kept, as ``numpy.argmax`` (and SAM's ``argmax``) keeps it.

    Returns
    -------
    dict
        ``confident_mIoU`` (mean IoU of the highest-scoring candidate), ``oracle_mIoU`` (mean of
        each prompt's best IoU), ``selection_loss`` (their difference, >= 0),
        ``candidate_mIoU`` ``(C,)`` (mean IoU of candidate ``c`` alone), ``picked_share``
        ``(C,)`` (how often the scores keep candidate ``c``), ``best_share`` ``(C,)`` (how
        often ``c`` is the oracle's; first of tied IoUs), ``score_mae`` (mean absolute gap
        between the scores and the IoUs, over all candidates) and ``n_instances``.

    Raises
    ------
    ValueError
        Shapes that differ or are not ``(N, C)`` with ``N, C >= 1``; IoUs outside [0, 1];
        NaN anywhere.
    """
    iou_arr = np.asarray(ious, dtype=np.float64)
    score_arr = np.asarray(scores, dtype=np.float64)
    if iou_arr.ndim != 2 or iou_arr.shape[0] < 1 or iou_arr.shape[1] < 1:
        raise ValueError(
            f"candidate_selection: ious must be (N, C) with N, C >= 1, got shape {iou_arr.shape}; "
            "for one candidate per prompt pass ious[:, None]."
        )
    if score_arr.shape != iou_arr.shape:
        raise ValueError(
            f"candidate_selection: scores {score_arr.shape} and ious {iou_arr.shape} must have "
            "the same shape (one score per candidate)."
        )
    if np.isnan(iou_arr).any() or np.isnan(score_arr).any():
        raise ValueError("candidate_selection: NaN in ious or scores.")
    if (iou_arr < 0).any() or (iou_arr > 1).any():
        raise ValueError("candidate_selection: IoUs must be in [0, 1].")
    n, c = iou_arr.shape
    rows = np.arange(n)
    picked = score_arr.argmax(axis=1)
    best = iou_arr.argmax(axis=1)
    confident = iou_arr[rows, picked].mean()
    oracle = iou_arr.max(axis=1).mean()
    return {
        "confident_mIoU": float(confident),
        "oracle_mIoU": float(oracle),
        "selection_loss": float(oracle - confident),
        "candidate_mIoU": iou_arr.mean(axis=0),
        "picked_share": np.bincount(picked, minlength=c) / n,
        "best_share": np.bincount(best, minlength=c) / n,
        "score_mae": float(np.abs(score_arr - iou_arr).mean()),
        "n_instances": n,
    }
