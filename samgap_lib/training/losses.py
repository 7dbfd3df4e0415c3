"""Training losses of the official SAM2 and SAM3 recipes, in plain torch.

SAM2 (``sam2/training/loss_fns.py``, ``MultiStepMultiMasksAndIous``): sigmoid focal loss
(alpha 0.25, gamma 2) x 20 + dice x 1 on the masks, L1 between the predicted and the actual
IoU x 1; with several candidate masks the mask loss is that of the best candidate (lowest
focal x w + dice x w), the IoU loss covers every candidate.

SAM3 (DETR style): Hungarian matching of queries to ground-truth instances on a cost of
class + L1 + GIoU (+ optional mask dice), then classification over every query (SAM3's
IoU-aware BCE, ``sam3/train/loss/loss_fns.py`` ``IABCEMdetr``, or the sigmoid focal loss of
DETR-family detectors), L1 and GIoU on matched boxes, BCE on the image-level presence logit,
and, with segmentation on, focal + dice on the matched masks. SAM3's decoder also trains a
second copy of its queries that skips self-attention (DAC-DETR's one-to-many queries): they
are matched by `one_to_many_match_many` (``BinaryOneToManyMatcher``), several queries per
instance, and scored with the same terms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

__all__ = [
    "sigmoid_focal_loss",
    "dice_loss",
    "mask_iou",
    "sam2_mask_loss",
    "box_area",
    "generalized_box_iou",
    "hungarian_match",
    "detr_losses",
    "detr_terms",
    "generalized_box_iou_pairs",
    "hungarian_match_many",
    "box_iou_pairs",
    "iabce_loss",
    "box_iou",
    "one_to_many_match_many",
]


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Per-element sigmoid focal loss (Lin et al. 2017), same shape as ``logits``.

    ``alpha < 0`` disables the class weighting, as in the official implementations.
    """
    return _focal_and_bce(logits, targets, alpha, gamma)[0]


def _focal_and_bce(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The focal loss and the plain BCE it starts from, per element."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss, ce


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Dice loss per mask over the last two dims: ``1 - (2|P.T| + 1) / (|P| + |T| + 1)``."""
    prob = logits.sigmoid().flatten(-2)
    t = targets.flatten(-2)
    num = 2 * (prob * t).sum(-1)
    den = prob.sum(-1) + t.sum(-1)
    return 1 - (num + eps) / (den + eps)


def mask_iou(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """IoU of ``logits > 0`` with binary targets over the last two dims (no gradient)."""
    with torch.no_grad():
        p = (logits > 0).flatten(-2)
        t = targets.flatten(-2) > 0.5
        inter = (p & t).sum(-1).float()
        union = (p | t).sum(-1).float()
        return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))


def sam2_mask_loss(
    logits: torch.Tensor,
    iou_pred: torch.Tensor,
    targets: torch.Tensor,
    weights: Mapping[str, float],
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> dict[str, torch.Tensor]:
    """SAM2's loss for ``N`` objects with ``C`` candidate masks each.

    Parameters
    ----------
    logits
        ``(N, C, H, W)`` mask logits at the target resolution.
    iou_pred
        ``(N, C)`` predicted IoUs.
    targets
        ``(N, H, W)`` float ground truth in [0, 1]: 0/1, or area-averaged to a smaller size.
    weights
        ``focal``, ``dice``, ``iou`` and optional ``bce`` and ``all_candidates`` weights.

    Returns
    -------
    dict
        ``loss`` (weighted total, mean over objects) and the unweighted terms ``focal``,
        ``dice``, ``iou``, ``bce``. With ``C > 1`` the mask terms come from the candidate with
        the lowest weighted mask loss (the official best-of-k), the IoU term from all. A nonzero
        ``all_candidates`` weight adds that weight times the weighted mask loss averaged over
        every candidate (term ``all_candidates``; not in the official loss): best-of-k alone
        gives a candidate that is never the best no mask gradient at all.
    """
    n, c = logits.shape[:2]
    t = targets[:, None].expand_as(logits).to(logits.dtype)
    hw = logits.shape[-1] * logits.shape[-2]
    focal_px, bce_px = _focal_and_bce(logits, t, alpha, gamma)
    focal = focal_px.flatten(-2).sum(-1) / hw  # (N, C)
    dice = dice_loss(logits, t)
    w_bce = float(weights.get("bce", 0.0))
    # without its weight the BCE is only logged: no gradient through it
    bce = (bce_px if w_bce else bce_px.detach()).flatten(-2).mean(-1)
    combo = weights["focal"] * focal + weights["dice"] * dice
    if w_bce:
        combo = combo + w_bce * bce
    best = combo.argmin(dim=1) if c > 1 else torch.zeros(n, dtype=torch.long, device=logits.device)
    rows = torch.arange(n, device=logits.device)
    actual = mask_iou(logits, t)
    iou_l1 = (iou_pred.float() - actual).abs().mean(-1)
    terms = {
        "focal": focal[rows, best].mean(),
        "dice": dice[rows, best].mean(),
        "bce": bce[rows, best].mean(),
        "iou": iou_l1.mean(),
    }
    terms["loss"] = (
        weights["focal"] * terms["focal"]
        + weights["dice"] * terms["dice"]
        + weights["iou"] * terms["iou"]
    )
    if w_bce:
        terms["loss"] = terms["loss"] + w_bce * terms["bce"]
    w_all = float(weights.get("all_candidates", 0.0))
    if w_all and c > 1:  # every candidate's mask loss, so none is left untrained
        terms["all_candidates"] = combo.mean()
        terms["loss"] = terms["loss"] + w_all * terms["all_candidates"]
    return terms


# ----------------------------------------------------------------------------- boxes


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of xyxy boxes (``(..., 4)``)."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(
        min=0
    )


def _inter_union(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    return inter, box_area(a)[:, None] + box_area(b)[None] - inter


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of xyxy boxes ``(N, 4)`` x ``(M, 4)`` -> ``(N, M)``."""
    inter, union = _inter_union(a, b)
    return inter / union.clamp(min=1e-7)


def generalized_box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise GIoU of xyxy boxes ``(N, 4)`` x ``(M, 4)`` -> ``(N, M)``."""
    inter, union = _inter_union(a, b)
    iou = inter / union.clamp(min=1e-7)
    lt_c = torch.min(a[:, None, :2], b[None, :, :2])
    rb_c = torch.max(a[:, None, 2:], b[None, :, 2:])
    hull = (rb_c - lt_c).clamp(min=0).prod(-1)
    return iou - (hull - union) / hull.clamp(min=1e-7)


def _inter_union_pairs(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lt = torch.max(a[:, :2], b[:, :2])
    rb = torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    return inter, box_area(a) + box_area(b) - inter


def box_iou_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of xyxy boxes ``a[i]`` and ``b[i]`` (``(N, 4)`` each) -> ``(N,)``."""
    inter, union = _inter_union_pairs(a, b)
    return inter / union.clamp(min=1e-7)


def generalized_box_iou_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GIoU of xyxy boxes ``a[i]`` and ``b[i]`` (``(N, 4)`` each) -> ``(N,)``: the diagonal of
    `generalized_box_iou` without the ``N x N`` matrix."""
    inter, union = _inter_union_pairs(a, b)
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    return inter / union.clamp(min=1e-7) - (hull - union) / hull.clamp(min=1e-7)


def iabce_loss(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    gt_boxes: torch.Tensor,
    query_idx: torch.Tensor,
    gt_idx: torch.Tensor,
    pos_weight: float = 10.0,
    alpha: float = 0.25,
    gamma: float = 2.0,
    query_row: torch.Tensor | None = None,
) -> torch.Tensor:
    """SAM3's IoU-aware classification loss of one (image, phrase) pair, mean over queries.

    As ``IABCEMdetr`` (``sam3/train/loss/loss_fns.py``, released config: ``pos_weight`` 10,
    ``alpha`` 0.25, ``gamma`` 2): a matched query's target is the soft score
    ``max(0.01, p^alpha x IoU^(1 - alpha))`` (its own detached probability and the IoU of its
    box with its instance), its BCE weighted by ``pos_weight``; an unmatched query's target is 0,
    its BCE weighted by ``p^gamma``. The positive weight is what lets scores of found
    instances rise above 0.5 while most queries are negatives.

    Several pairs at once: ``logits`` ``(B, Q)``, ``boxes`` ``(B, Q, 4)`` and ``query_row``
    the row of each match (``query_idx[m]`` of row ``query_row[m]`` matches instance
    ``gt_boxes[gt_idx[m]]``); the result is then the ``(B,)`` per-pair losses.
    """
    prob = logits.sigmoid()
    target = torch.zeros_like(logits)
    soft = torch.zeros_like(logits)
    if len(query_idx):
        q = query_idx.to(logits.device)
        q = q if query_row is None else (query_row.to(logits.device), q)
        with torch.no_grad():
            iou = box_iou_pairs(boxes[q].float(), gt_boxes[gt_idx.to(boxes.device)].float())
            soft[q] = (prob[q].detach() ** alpha * iou ** (1 - alpha)).clamp(min=0.01).to(soft)
        target[q] = 1.0
    pos = F.binary_cross_entropy_with_logits(logits, soft, reduction="none") * target * pos_weight
    neg = (
        F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        * (1 - target)
        * prob**gamma
    )
    return (pos + neg).mean(-1)


# ----------------------------------------------------------------------------- matching


@torch.no_grad()
def hungarian_match(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    gt_boxes: torch.Tensor,
    weights: Mapping[str, float],
    mask_logits: torch.Tensor | None = None,
    gt_masks: torch.Tensor | None = None,
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Match ``Q`` queries to ``G`` ground-truth instances (scipy's Hungarian solver).

    Cost = ``class`` x focal cost + ``bbox`` x L1 + ``giou`` x (-GIoU) [+ ``mask`` x dice cost
    on ``mask_logits`` vs ``gt_masks`` at the same resolution], as DETR / SAM3's matcher.

    Returns
    -------
    query_idx, gt_idx
        int64 tensors of equal length ``min(Q, G)``.
    """
    masked = mask_logits is not None
    return hungarian_match_many(
        logits[None],
        boxes[None],
        gt_boxes,
        [(0, gt_boxes.shape[0])],
        weights,
        mask_logits[None] if masked else None,
        gt_masks,
        None,
        alpha,
        gamma,
    )[0]


@torch.no_grad()
def hungarian_match_many(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    gt_boxes: torch.Tensor,
    spans: Sequence[tuple[int, int]],
    weights: Mapping[str, float],
    mask_logits: torch.Tensor | None = None,
    gt_masks: torch.Tensor | None = None,
    mask_rows: Sequence[int] | None = None,
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`hungarian_match` for ``B`` rows at once: the costs in one pass, one scipy call per row.

    Row ``b`` (``logits[b]`` ``(Q,)``, ``boxes[b]`` ``(Q, 4)``) is matched to the instances
    ``gt_boxes[s:e]`` of its span ``spans[b] = (s, e)``; rows may share instances (the decoder
    layers of one pair). ``mask_logits`` ``(R, Q, h, w)`` adds the dice cost to the rows
    ``mask_rows`` (default: the first ``R``), against ``gt_masks`` (aligned with ``gt_boxes``).

    Returns
    -------
    list of (query_idx, gt_idx)
        Per row; ``gt_idx`` counts from the row's span start.
    """
    b, q = logits.shape
    g = gt_boxes.shape[0]
    empty = torch.zeros(0, dtype=torch.long)
    if g == 0 or q == 0:
        return [(empty, empty)] * b
    prob = logits.float().sigmoid()
    neg = (1 - alpha) * prob**gamma * -(1 - prob + 1e-8).log()
    pos = alpha * (1 - prob) ** gamma * -(prob + 1e-8).log()
    flat, gtf = boxes.float().reshape(b * q, 4), gt_boxes.float()
    cost = weights.get("class", 0.0) * (pos - neg)[:, :, None]
    cost = cost + weights.get("bbox", 0.0) * torch.cdist(flat, gtf, p=1).reshape(b, q, g)
    cost = cost - weights.get("giou", 0.0) * generalized_box_iou(flat, gtf).reshape(b, q, g)
    if weights.get("mask", 0.0) and mask_logits is not None and gt_masks is not None:
        p = mask_logits.float().sigmoid().flatten(2)  # (R, Q, hw)
        t = gt_masks.float().flatten(1)  # (G, hw)
        num = 2 * p @ t.T
        den = p.sum(-1)[..., None] + t.sum(-1)
        rows = torch.as_tensor(
            list(range(len(p)) if mask_rows is None else mask_rows),
            dtype=torch.long,
            device=cost.device,
        )
        cost[rows] += weights["mask"] * (1 - (num + 1) / (den + 1))
    c = cost.cpu().numpy()
    out = []
    for r, (s, e) in enumerate(spans):
        if e == s:
            out.append((empty, empty))
            continue
        qi, gi = linear_sum_assignment(c[r, :, s:e])
        out.append((torch.as_tensor(qi, dtype=torch.long), torch.as_tensor(gi, dtype=torch.long)))
    return out


@torch.no_grad()
def one_to_many_match_many(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    gt_boxes: torch.Tensor,
    spans: Sequence[tuple[int, int]],
    alpha: float = 0.3,
    threshold: float = 0.4,
    topk: int = 4,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One-to-many matching of SAM3's DAC queries (``sam3/train/matcher.py``
    ``BinaryOneToManyMatcher``; released config: ``alpha`` 0.3, ``threshold`` 0.4, ``topk`` 4).

    For row ``b`` and each instance ``g`` of its span ``spans[b] = (s, e)``, the score of query
    ``q`` is ``alpha x sigmoid(logits[b, q]) + (1 - alpha) x IoU(boxes[b, q], gt_boxes[g])``;
    ``q`` matches ``g`` when its score exceeds the ``1 - topk / Q`` quantile of that
    instance's scores over the ``Q`` queries (about the ``topk`` best) and ``threshold``. A
    query may match several instances, as in SAM3. ``topk >= Q`` keeps every query but the
    lowest-scored one.

    Returns
    -------
    list of (query_idx, gt_idx)
        Per row, ordered by query then instance; ``gt_idx`` counts from the row's span start.
    """
    b, q = logits.shape
    empty = torch.zeros(0, dtype=torch.long)
    if gt_boxes.shape[0] == 0 or q == 0:
        return [(empty, empty)] * b
    prob = logits.float().sigmoid()
    level = max(0.0, 1.0 - topk / q)
    out = []
    for r, (s, e) in enumerate(spans):
        if e == s:
            out.append((empty, empty))
            continue
        score = alpha * prob[r][:, None] + (1 - alpha) * box_iou(
            boxes[r].float(), gt_boxes[s:e].float()
        )
        cut = torch.quantile(score, level, dim=0, keepdim=True)
        qi, gi = torch.nonzero((score > cut) & (score > threshold), as_tuple=True)
        out.append((qi.cpu(), gi.cpu()))
    return out


def detr_losses(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    gt_boxes: torch.Tensor,
    query_idx: torch.Tensor,
    gt_idx: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    supervise_class: bool = True,
    with_class: bool = True,
) -> dict[str, torch.Tensor]:
    """Classification, L1 and GIoU losses of one (image, phrase) pair given a matching.

    Classification is the sigmoid focal loss over all ``Q`` queries (matched ones target 1),
    summed; box terms are summed over matched pairs. Normalise by the number of instances
    outside. ``supervise_class=False`` zeroes the classification term (SAM3 leaves query
    scores of absent concepts to the presence head when asked); ``with_class=False`` leaves it
    out (``"class"`` is then absent: the caller scores queries with another loss).
    """
    row = torch.zeros_like(query_idx)
    terms = detr_terms(
        logits[None], boxes[None], gt_boxes, row, query_idx, gt_idx, alpha, gamma, with_class
    )
    out = {"class": terms["class"][0] * float(supervise_class)} if with_class else {}
    return {**out, "bbox": terms["bbox"].sum(), "giou": terms["giou"].sum()}


def detr_terms(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    gt_boxes: torch.Tensor,
    query_row: torch.Tensor,
    query_idx: torch.Tensor,
    gt_idx: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    with_class: bool = True,
) -> dict[str, torch.Tensor]:
    """`detr_losses`' terms for ``B`` rows at once, unreduced: ``"class"`` ``(B,)`` (focal loss
    summed over each row's ``Q`` queries; absent with ``with_class=False``), ``"bbox"`` and
    ``"giou"`` ``(M,)`` for the matches (query ``query_idx[m]`` of row ``query_row[m]`` with
    instance ``gt_boxes[gt_idx[m]]``)."""
    dev = logits.device
    qr, qi = query_row.to(dev), query_idx.to(dev)
    pb = boxes[qr, qi]
    gb = gt_boxes[gt_idx.to(dev)]
    out = {"bbox": (pb - gb).abs().sum(-1), "giou": 1 - generalized_box_iou_pairs(pb, gb)}
    if with_class:
        target = torch.zeros_like(logits)
        target[qr, qi] = 1.0
        out["class"] = sigmoid_focal_loss(logits, target, alpha, gamma).sum(-1)
    return out
