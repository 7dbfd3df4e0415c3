"""Losses and matching of samgap_lib.training against torchvision / hand-computed values."""

import numpy as np
import pytest
import torch
from torchvision.ops import generalized_box_iou as tv_giou
from torchvision.ops import sigmoid_focal_loss as tv_focal

from samgap_lib.models.dense import draw_dense_prompts
from samgap_lib.training.losses import (
    detr_losses,
    dice_loss,
    generalized_box_iou,
    hungarian_match,
    sam2_mask_loss,
    sigmoid_focal_loss,
)
from samgap_lib.training.optim import lr_lambda

W = {"focal": 20.0, "dice": 1.0, "iou": 1.0}


def test_focal_matches_torchvision():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, 8, generator=g)
    t = (torch.rand(3, 8, 8, generator=g) > 0.5).float()
    ours = sigmoid_focal_loss(x, t, 0.25, 2.0)
    torch.testing.assert_close(ours, tv_focal(x, t, alpha=0.25, gamma=2.0, reduction="none"))


def test_dice_perfect_and_empty():
    t = torch.zeros(1, 4, 4)
    t[0, 1:3, 1:3] = 1
    perfect = torch.where(t > 0, 20.0, -20.0)
    assert float(dice_loss(perfect, t)) < 1e-6
    assert float(dice_loss(-perfect, t)) > 0.7


def test_giou_matches_torchvision():
    a = torch.tensor([[0.1, 0.1, 0.5, 0.6], [0.2, 0.3, 0.9, 0.8]])
    b = torch.tensor([[0.1, 0.1, 0.5, 0.6], [0.0, 0.0, 0.2, 0.2], [0.3, 0.2, 0.7, 0.9]])
    torch.testing.assert_close(generalized_box_iou(a, b), tv_giou(a, b))


def test_sam2_loss_best_of_k_and_iou_target():
    t = torch.zeros(2, 8, 8)
    t[:, 2:6, 2:6] = 1
    good = torch.where(t > 0, 10.0, -10.0)
    bad = -good
    logits = torch.stack(
        [torch.stack([bad[0], good[0], bad[0]]), torch.stack([good[1], bad[1], bad[1]])]
    )
    iou_pred = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    out = sam2_mask_loss(logits, iou_pred, t, W)
    assert float(out["dice"]) < 1e-3 and float(out["focal"]) < 1e-3  # the good candidate is chosen
    assert float(out["iou"]) < 1e-6  # predicted IoUs equal the actual ones
    single = sam2_mask_loss(logits[:, :1], iou_pred[:, :1], t, W)
    assert float(single["dice"]) > 0.4  # object 0's only candidate is the bad one


def test_hungarian_recovers_permutation_and_zero_loss():
    gt = torch.tensor([[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.8], [0.6, 0.1, 0.8, 0.3]])
    perm = torch.tensor([2, 0, 1])
    boxes = torch.cat([gt[perm], torch.tensor([[0.0, 0.0, 1.0, 1.0]])])
    logits = torch.tensor([9.0, 9.0, 9.0, -9.0])
    qi, gi = hungarian_match(logits, boxes, gt, {"class": 2, "bbox": 5, "giou": 2})
    assert sorted(zip(qi.tolist(), gi.tolist(), strict=True)) == [(0, 2), (1, 0), (2, 1)]
    terms = detr_losses(logits, boxes, gt, qi, gi)
    assert float(terms["bbox"]) < 1e-6 and float(terms["giou"]) < 1e-5
    assert float(terms["class"]) < 1e-3


def test_hungarian_empty_gt():
    qi, gi = hungarian_match(torch.zeros(4), torch.rand(4, 4), torch.zeros(0, 4), {"class": 1})
    assert len(qi) == len(gi) == 0


def test_dense_prompt_drawing():
    pts = np.array([[[16.0, 16.0], [0.0, 0.0]]])
    lab = np.array([[1, -1]])
    m = draw_dense_prompts(pts, lab, None, None, (64, 64), (16, 16), radius=1.0, logit=5.0)
    assert m.shape == (1, 1, 16, 16)
    assert m[0, 0, 4, 4] == 5.0 and m[0, 0, 0, 0] == 0.0  # padding point not drawn
    box = draw_dense_prompts(None, None, np.array([[0, 0, 32, 32]]), None, (64, 64), (16, 16))
    assert box[0, 0, 2, 2] == 10.0 and box[0, 0, 12, 12] == -10.0


def test_warmup_cosine():
    f = lr_lambda(100, 10, 0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(100) == pytest.approx(0.1)
    assert f(55) == pytest.approx(0.55)
