"""Losses and matching of samgap_lib.training against torchvision / hand-computed values."""

import numpy as np
import pytest
import torch
from torchvision.ops import generalized_box_iou as tv_giou
from torchvision.ops import sigmoid_focal_loss as tv_focal

from samgap_lib.models.archs import orchard_sam3_config as sam3_config
from samgap_lib.models.dense import draw_dense_prompts
from samgap_lib.training.config import load_config
from samgap_lib.training.init import init_box_rpb_locality
from samgap_lib.training.losses import (
    box_iou_pairs,
    detr_losses,
    detr_terms,
    dice_loss,
    generalized_box_iou,
    generalized_box_iou_pairs,
    hungarian_match,
    hungarian_match_many,
    iabce_loss,
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


def test_best_of_k_leaves_other_candidates_without_gradient_unless_all_candidates():
    g = torch.Generator().manual_seed(0)
    t = (torch.rand(4, 8, 8, generator=g) > 0.6).float()
    logits = torch.randn(4, 3, 8, 8, generator=g)
    logits[:, 1] = torch.where(t > 0, 4.0, -4.0)  # candidate 2 is every object's best
    iou_pred = torch.full((4, 3), 0.5)

    def mask_grads(weights):
        x = logits.clone().requires_grad_(True)
        out = sam2_mask_loss(x, iou_pred, t, weights)
        (out["loss"] - weights["iou"] * out["iou"]).backward()  # the mask terms alone
        return x.grad.flatten(2).abs().sum(-1), out

    best_only, out = mask_grads(W)
    assert (best_only[:, [0, 2]] == 0).all() and (best_only[:, 1] > 0).all()
    assert "all_candidates" not in out
    every, out = mask_grads({**W, "all_candidates": 0.2})
    assert (every > 0).all()
    manual = (
        20 * sigmoid_focal_loss(logits, t[:, None].expand_as(logits), 0.25, 2.0).mean((2, 3))
        + dice_loss(logits, t[:, None].expand_as(logits))
    ).mean()
    torch.testing.assert_close(out["all_candidates"], manual)
    torch.testing.assert_close(
        out["loss"], sam2_mask_loss(logits, iou_pred, t, W)["loss"] + 0.2 * manual
    )


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
    # a caller with its own classification loss (SAM3's IoU-aware BCE) skips the focal term
    boxes_only = detr_losses(logits, boxes.flip(0), gt, qi, gi, with_class=False)
    assert "class" not in boxes_only
    full = detr_losses(logits, boxes.flip(0), gt, qi, gi)
    assert float(boxes_only["bbox"]) > 0.1
    assert all(torch.equal(boxes_only[k], full[k]) for k in ("bbox", "giou"))


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


def test_dense_first_click_radius():
    """first_radius widens only each object's first click; corrections keep ``radius``."""
    pts = np.array([[[18.0, 18.0], [46.0, 46.0]]])  # at 1/4 scale: centres 4.625 and 11.625
    lab = np.array([[1, 0]])
    args = (pts, lab, None, None, (64, 64), (16, 16))
    same = draw_dense_prompts(*args, radius=1.0, logit=5.0)
    wide = draw_dense_prompts(*args, radius=1.0, logit=5.0, first_radius=3.0)
    yy, xx = np.mgrid[:16, :16] + 0.5
    d0 = np.hypot(xx - 4.625, yy - 4.625)
    np.testing.assert_array_equal(same[0, 0] == 5.0, d0 <= 1.0)
    np.testing.assert_array_equal(wide[0, 0] == 5.0, d0 <= 3.0)
    np.testing.assert_array_equal(wide[0, 0] == -5.0, same[0, 0] == -5.0)
    assert (wide[0, 0] == -5.0).sum() == 3
    np.testing.assert_array_equal(
        draw_dense_prompts(*args, radius=1.0, first_radius=1.0),
        draw_dense_prompts(*args, radius=1.0),
    )


def test_warmup_cosine():
    f = lr_lambda(100, 10, 0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(100) == pytest.approx(0.1)
    assert f(55) == pytest.approx(0.55)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_iabce_matches_sam3_iabcemdetr(seed, monkeypatch):
    """Our IoU-aware BCE equals the released SAM3 loss (sam3.train.loss.loss_fns.IABCEMdetr)."""
    import importlib
    import sys
    import types

    if importlib.util.find_spec("torchmetrics") is None:
        # loss_fns imports torchmetrics only to log an F1 score beside the loss
        fake = types.ModuleType("torchmetrics")
        fake.functional = types.SimpleNamespace(f1_score=lambda *a, **k: torch.zeros(()))
        monkeypatch.setitem(sys.modules, "torchmetrics", fake)
        monkeypatch.delitem(sys.modules, "sam3.train.loss.loss_fns", raising=False)
    loss_fns = importlib.import_module("sam3.train.loss.loss_fns")
    g = torch.Generator().manual_seed(seed)
    q, n_gt = 12, 4
    logits = torch.randn(q, generator=g) * 2
    xy = torch.rand(q, 2, generator=g) * 0.6
    boxes = torch.cat([xy, xy + 0.05 + torch.rand(q, 2, generator=g) * 0.3], 1)
    gxy = torch.rand(n_gt, 2, generator=g) * 0.6
    gt = torch.cat([gxy, gxy + 0.05 + torch.rand(n_gt, 2, generator=g) * 0.3], 1)
    qi = torch.randperm(q, generator=g)[:n_gt]
    gi = torch.randperm(n_gt, generator=g)
    ref_loss = loss_fns.IABCEMdetr(pos_weight=10.0, weak_loss=False, alpha=0.25, gamma=2)
    ref = ref_loss.get_loss(
        {"pred_logits": logits[None, :, None], "pred_boxes_xyxy": boxes[None]},
        {"boxes_xyxy": gt},
        (torch.zeros(n_gt, dtype=torch.long), qi, gi),
        num_boxes=n_gt,
    )["loss_ce"]
    ours = iabce_loss(logits, boxes, gt, qi, gi, pos_weight=10.0, alpha=0.25, gamma=2.0)
    torch.testing.assert_close(ours, ref)


def test_iabce_rewards_confident_well_placed_queries():
    gt = torch.tensor([[0.1, 0.1, 0.3, 0.3]])
    boxes = torch.tensor([[0.1, 0.1, 0.3, 0.3], [0.6, 0.6, 0.9, 0.9]])
    qi, gi = torch.tensor([0]), torch.tensor([0])
    good = iabce_loss(torch.tensor([4.0, -4.0]), boxes, gt, qi, gi)
    unsure = iabce_loss(torch.tensor([0.0, 0.0]), boxes, gt, qi, gi)
    assert float(good) < float(unsure)
    torch.testing.assert_close(box_iou_pairs(boxes, boxes), torch.ones(2))


def test_rpb_locality_prior_biases_attention_to_the_reference_box():
    """After init_box_rpb_locality the decoder's relative-position bias is 0 inside a query's
    reference box and falls with the distance outside, more steeply for later heads."""
    from transformers import Sam3Model

    torch.manual_seed(0)
    model = Sam3Model(sam3_config("orchard-xs", 224))
    init_box_rpb_locality(model)
    dec = model.detr_decoder
    box = torch.tensor([[[0.5, 0.5, 0.25, 0.25]]])  # cxcywh: x, y in [0.375, 0.625]
    rpb = dec._get_rpb_matrix(box, (torch.tensor(16), torch.tensor(16)))[0, :, 0]  # (heads, 256)
    rpb = rpb.reshape(-1, 16, 16)
    inside = rpb[:, 7, 7]
    assert torch.allclose(inside, torch.zeros_like(inside), atol=1e-6)
    near, far = rpb[:, 7, 11], rpb[:, 7, 15]
    assert torch.all(far < near) and torch.all(near < 0)
    assert torch.all(far[1:] < far[:-1])  # heads from broad to sharp


def test_rpb_locality_prior_makes_queries_look_inside_their_boxes():
    """The mechanism behind the prior: at initialisation, with it each query's first-layer
    vision attention falls mostly inside its reference box; with the random bias it does not."""
    from samgap_lib.training.init import _from_scratch

    def mass_inside(model) -> float:
        model.config._attn_implementation = "eager"
        for m in model.modules():
            if hasattr(m, "config") and hasattr(m.config, "_attn_implementation"):
                m.config._attn_implementation = "eager"
        enc = torch.randn(1, 256, 64)
        pos = torch.randn(1, 256, 64) * 0.1
        text = torch.randn(1, 4, 64)
        dec = model.detr_decoder(
            vision_features=enc,
            text_features=text,
            vision_pos_encoding=pos,
            text_mask=torch.ones(1, 4, dtype=torch.bool),
            spatial_shapes=torch.tensor([[16, 16]]),
            output_attentions=True,
        )
        att = [a for a in dec.attentions if a is not None and a.shape[-1] == 256][0]
        att = att[0, :, 1:].mean(0).reshape(-1, 16, 16)  # (queries, 16, 16), heads averaged
        ref = model.detr_decoder.reference_points.weight.sigmoid()
        inside = []
        for q in range(att.shape[0]):
            cx, cy, w, h = (float(v) for v in ref[q])
            c0, c1 = int((cx - w / 2) * 16), int(np.ceil((cx + w / 2) * 16))
            r0, r1 = int((cy - h / 2) * 16), int(np.ceil((cy + h / 2) * 16))
            inside.append(float(att[q, max(r0, 0) : r1, max(c0, 0) : c1].sum()))
        return float(np.mean(inside))

    with torch.no_grad():
        model, _ = _from_scratch("sam3", "orchard-xs", 224, seed=0)
        with_prior = mass_inside(model.eval())
        for mlp in (model.detr_decoder.box_rpb_embed_x, model.detr_decoder.box_rpb_embed_y):
            for layer in (mlp.layer1, mlp.layer2):
                layer.reset_parameters()
        without = mass_inside(model)
    assert with_prior > 0.4 and with_prior > 5 * without  # measured: 0.52 vs 0.05


def test_sincos_position_grid_gives_every_token_its_own_smooth_code():
    from samgap_lib.training.init import sincos_position_grid

    g = sincos_position_grid(16, 64)
    assert g.shape == (256, 64) and g.abs().max() <= 1.0
    assert 0.5 < float(g.std()) < 0.8  # comparable to the patch embedding's output (~0.6)
    d = torch.cdist(g, g) + torch.eye(256) * 1e9
    assert float(d.min()) > 1.0  # no two tokens share a code
    # neighbours are closer than far tokens: the code is smooth in both axes
    grid = g.reshape(16, 16, 64)
    near = (grid[5, 5] - grid[5, 6]).norm()
    far = (grid[5, 5] - grid[5, 13]).norm()
    assert near < far and (grid[5, 5] - grid[6, 5]).norm() < (grid[5, 5] - grid[13, 5]).norm()
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_position_grid(16, 30)


def test_from_scratch_sam3_starts_with_sincos_positions():
    from samgap_lib.training.init import _from_scratch, sincos_position_grid

    model, _ = _from_scratch("sam3", "orchard-xs", 224, seed=0)
    emb = model.vision_encoder.backbone.embeddings.position_embeddings
    assert emb.requires_grad
    torch.testing.assert_close(emb.detach()[0], sincos_position_grid(16, emb.shape[-1]))


def test_from_scratch_sam3_num_queries_sets_the_reference_grid():
    from samgap_lib.models.archs import SAM3_QUERIES
    from samgap_lib.training.init import _from_scratch, build_model

    cfg = load_config({"model": "sam3", "init": {"arch": "orchard-xs", "num_queries": 64}})
    model, _ = build_model(cfg)
    dec = model.detr_decoder
    assert dec.reference_points.num_embeddings == 64 == model.config.detr_decoder_config.num_queries
    ref = dec.reference_points.weight.detach().sigmoid()
    centres = sorted({round(float(v), 4) for v in ref[:, 0]})
    assert centres == [round((i + 0.5) / 8, 4) for i in range(8)]  # an 8 x 8 grid
    torch.testing.assert_close(ref[:, 2:], torch.full((64, 2), 1 / 8))
    default, _ = _from_scratch("sam3", "orchard-xs", 224, seed=0)
    assert default.detr_decoder.reference_points.num_embeddings == SAM3_QUERIES == 36


def _rand_boxes(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    xy = torch.rand(*shape, 2, generator=g) * 0.6
    return torch.cat([xy, xy + 0.05 + torch.rand(*shape, 2, generator=g) * 0.3], -1)


def test_giou_pairs_is_the_diagonal():
    g = torch.Generator().manual_seed(0)
    a, b = _rand_boxes((9,), g), _rand_boxes((9,), g)
    torch.testing.assert_close(generalized_box_iou_pairs(a, b), torch.diag(tv_giou(a, b)))
    torch.testing.assert_close(box_iou_pairs(a, a), torch.ones(9))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_matching_and_terms_equal_the_per_pair_functions(seed):
    """hungarian_match_many, detr_terms and iabce_loss over rows (two decoder layers of three
    pairs sharing their instances, one pair without any, the mask cost on the last layer's
    rows) give what the one-pair functions give row by row."""
    g = torch.Generator().manual_seed(seed)
    q, counts, n_layers = 6, [3, 0, 2], 2
    starts = np.concatenate([[0], np.cumsum(counts)])
    gt = _rand_boxes((int(starts[-1]),), g)
    gt_masks = (torch.rand(len(gt), 8, 8, generator=g) > 0.5).float()
    spans = [(int(starts[p]), int(starts[p + 1])) for _ in range(n_layers) for p in range(3)]
    logits = torch.randn(len(spans), q, generator=g) * 2
    boxes = _rand_boxes((len(spans), q), g)
    mask_rows = [3, 5]
    mask_logits = torch.randn(len(mask_rows), q, 8, 8, generator=g)
    w = {"class": 2.0, "bbox": 5.0, "giou": 2.0, "mask": 1.0}
    many = hungarian_match_many(logits, boxes, gt, spans, w, mask_logits, gt_masks, mask_rows)
    row, qs, gs = [], [], []
    for r, (s, e) in enumerate(spans):
        ml = mask_logits[mask_rows.index(r)] if r in mask_rows else None
        qi, gi = hungarian_match(
            logits[r], boxes[r], gt[s:e], w, ml, gt_masks[s:e] if ml is not None else None
        )
        assert torch.equal(many[r][0], qi) and torch.equal(many[r][1], gi)
        assert len(qi) == e - s
        row.append(torch.full((len(qi),), r))
        qs.append(qi)
        gs.append(gi + s)
    row, qs, gs = torch.cat(row), torch.cat(qs), torch.cat(gs)
    terms = detr_terms(logits, boxes, gt, row, qs, gs)
    iabce = iabce_loss(logits, boxes, gt, qs, gs, pos_weight=10.0, query_row=row)
    assert terms["class"].shape == iabce.shape == (len(spans),)
    for r, (s, e) in enumerate(spans):
        qi, gi = many[r]
        one = detr_losses(logits[r], boxes[r], gt[s:e], qi, gi)
        torch.testing.assert_close(terms["class"][r], one["class"])
        torch.testing.assert_close(terms["bbox"][row == r].sum(), one["bbox"])
        torch.testing.assert_close(terms["giou"][row == r].sum(), one["giou"])
        torch.testing.assert_close(
            iabce[r], iabce_loss(logits[r], boxes[r], gt[s:e], qi, gi, pos_weight=10.0)
        )
    # the mask cost changes the matching of the rows it is given for, and only theirs
    plain = hungarian_match_many(logits, boxes, gt, spans, {**w, "mask": 0.0})
    for r in range(len(spans)):
        if r not in mask_rows:
            assert all(torch.equal(a, b) for a, b in zip(plain[r], many[r], strict=True))
