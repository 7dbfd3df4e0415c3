"""The training loop on tiny models: freezing, accumulation, checkpointing, round trip through
samgap_lib.models, in-process resume after a crash (SAM3)."""

import numpy as np
import pytest
import torch
from _training_helpers import tiny_config
from safetensors.torch import load_file

from samgap_lib.data import synthetic_orchard
from samgap_lib.models import DensePromptSegmenter, load_sam2, load_sam3
from samgap_lib.models.dense import dense_spec
from samgap_lib.studies.token_only import load_tokens_only
from samgap_lib.training import load_config, start_validation, train
from samgap_lib.training.init import build_model
from samgap_lib.training.logs import RunLogger, read_jsonl
from samgap_lib.training.optim import freeze, param_groups


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_sam2_freeze_accumulate_and_round_trip(tmp_path):
    cfg = load_config(
        tiny_config(
            "sam2",
            tmp_path / "run",
            optim={"freeze": ["image_encoder"]},
            train={"steps": 3, "grad_accum": 2, "eval_every": 3},
        )
    )
    init, _ = build_model(cfg)
    before = {k: v.clone() for k, v in init.state_dict().items()}
    res = train(cfg)
    after = _weights(res.final)
    enc = [k for k in after if k.startswith("vision_encoder.")]
    dec = [k for k in after if k.startswith("mask_decoder.") and after[k].dtype.is_floating_point]
    assert all(torch.equal(after[k], before[k]) for k in enc)
    assert any(not torch.equal(after[k], before[k]) for k in dec)
    log = read_jsonl(res.out_dir / "log.jsonl")
    steps = [r for r in log if "loss/loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    assert {"loss/focal", "loss/dice", "loss/iou", "lr", "grad_norm", "peak_mem_mb"} <= set(
        steps[0]
    )
    assert any("val/click_mIoU@1" in r for r in log)
    assert list((res.out_dir / "tb").glob("events.out.tfevents.*"))
    assert (res.out_dir / "best" / "config.json").is_file()
    # the checkpoint loads through the models layer and is prompted with drawn prompts
    seg = load_sam2(res.final, device="cpu")
    assert isinstance(seg, DensePromptSegmenter)
    assert dense_spec(seg.model) == {"radius": 1.5, "logit": 10.0}
    s = synthetic_orchard(1, seed=3, size=(64, 64))[0]
    seg.set_image(s.image)
    out = seg.predict(
        points=np.array([[[20.0, 20.0]]]), point_labels=np.array([[1]]), multimask=True
    )
    assert out.masks.shape == (1, 3, 64, 64)
    box = np.array([[4.0, 4.0, 30.0, 30.0]])
    out = seg.predict(boxes=box, multimask=False)
    assert out.masks.shape == (1, 64, 64)
    # the token-only experiment's loader leaves the dense input alone
    plain = load_tokens_only(res.final)
    assert not isinstance(plain, DensePromptSegmenter)
    plain.set_image(s.image)
    tokens = plain.predict(boxes=box, multimask=False)
    undrawn = seg.inner.predict(boxes=box, mask_input=None, multimask=False)
    np.testing.assert_array_equal(tokens.low_res_logits, undrawn.low_res_logits)
    assert not np.array_equal(tokens.low_res_logits, out.low_res_logits)


def test_layer_decay_and_partial_freeze():
    cfg = load_config(tiny_config("sam3", "/tmp/unused", optim={"layer_decay": 0.5}))
    model, _ = build_model(cfg)
    frozen = freeze(model, "sam3", ["text"], vision_layers=1)
    assert frozen > 0
    assert not model.vision_encoder.backbone.layers[0].attention.q_proj.weight.requires_grad
    assert model.vision_encoder.backbone.layers[1].attention.q_proj.weight.requires_grad
    groups = param_groups(model, "sam3", cfg["optim"])
    lrs = {g["name"].split("@")[0]: [] for g in groups}
    for g in groups:
        lrs[g["name"].split("@")[0]].append(g["lr"])
    assert "text" not in lrs
    base = cfg["optim"]["lr"]
    assert min(lrs["vision"]) == pytest.approx(base * cfg["optim"]["lr_mult"]["vision"] * 0.5)
    with pytest.raises(ValueError, match="unknown component"):
        freeze(model, "sam3", ["decoder"])


class _Crash(Exception):
    pass


def test_sam3_crash_resume_equals_uninterrupted(tmp_path, monkeypatch):
    over = {
        "train": {"steps": 4, "checkpoint_every": 2, "grad_checkpointing": True},
        "optim": {"freeze_vision_layers": 1},
    }
    ref = train(load_config(tiny_config("sam3", tmp_path / "a", **over)))

    def crash(step, record):
        if step == 3:
            raise _Crash

    cfg = load_config(tiny_config("sam3", tmp_path / "b", **over))
    closed, close = [], RunLogger.close
    monkeypatch.setattr(RunLogger, "close", lambda self: closed.append(close(self)))
    with pytest.raises(_Crash):
        train(cfg, on_step=crash)
    assert closed  # the crash still closed the JSONL file and TensorBoard's writer thread
    assert not (tmp_path / "b" / "final").exists()
    res = train(cfg, resume=True)
    a, b = _weights(ref.final), _weights(res.final)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    la = [r for r in read_jsonl(ref.out_dir / "log.jsonl") if "loss/loss" in r]
    lb = [r for r in read_jsonl(res.out_dir / "log.jsonl") if "loss/loss" in r]
    keys = [k for k in la[0] if k.startswith("loss/") or k in ("step", "lr", "grad_norm")]
    assert [[r[k] for k in keys] for r in la] == [[r[k] for k in keys] for r in lb]
    seg = load_sam3(res.final, device="cpu")
    s = synthetic_orchard(1, seed=1, size=(112, 112))[0]
    out = seg.segment(s.image, phrases=["ripe apple", "pear"])
    assert set(out) == {"ripe apple", "pear"}


def test_ensure_orchard_tiny_trains_once_and_caches(tmp_path, monkeypatch):
    from samgap_lib.evaluation import held_out
    from samgap_lib.training import orchard_tiny as recipes

    tiny = {
        m: {k: v for k, v in tiny_config(m, "unused").items() if k != "model"}
        for m in ("sam2", "sam3", "sam2_video")
    }
    tiny["sam2"]["init"] = {"arch": "orchard-m"}  # the video model needs its width
    tiny["sam2_video"].pop("init")  # starts from the sam2 checkpoint
    for m in tiny:
        tiny[m]["train"] = {**tiny[m]["train"], "steps": 2, "checkpoint_every": 0}
        tiny[m]["data"] = {**tiny[m]["data"], "n_val": 0}
    monkeypatch.setattr(recipes, "ORCHARD_TINY", tiny)
    monkeypatch.setattr(held_out, "HELD_OUT", {"sam2": 2, "sam3": 2})
    monkeypatch.setattr(
        held_out,
        "HELD_OUT_CLIPS",
        {"clips": 3, "frames": 3, "size": 64, "pan": (4, 6), "min_area": 4},
    )
    # asking for the video model alone brings the image model it starts from, first
    only = recipes.ensure_orchard_tiny(tmp_path, models=("sam2_video",), verbose=False)
    assert (
        list(only) == ["sam2_video"]
        and (only["sam2_video"].parent / "sam2" / "card.json").is_file()
    )
    paths = recipes.ensure_orchard_tiny(tmp_path, verbose=False)
    assert list(paths) == ["sam2", "sam3", "sam2_video"]
    assert paths["sam2"].parent.parent == tmp_path / "orchard-tiny"
    video = recipes.read_card(paths["sam2_video"])
    assert video["starts_from"] == str(paths["sam2"])
    assert {"J&F", "J&F_low", "J&F_high", "decay", "switch_rate"} <= set(
        video["held_out"]["metrics"]
    )
    assert (
        video["held_out"]["metrics_first_mask_copied"].keys() == video["held_out"]["metrics"].keys()
    )
    for m, p in paths.items():
        card = recipes.read_card(p)
        assert card["model"] == m and card["steps"] == 2 and card["held_out"]["metrics"]
        assert card["params"] > 0 and card["workarounds"]
        assert card["device_name"].startswith("CPU ") and "kernels" in card["device_name"]
    raw = recipes.read_card(paths["sam3"])["held_out"]
    assert raw["metrics_sam3_postprocessing"].keys() == raw["metrics"].keys()
    stamp = (paths["sam2"] / "model.safetensors").stat().st_mtime_ns
    again = recipes.ensure_orchard_tiny(tmp_path, verbose=False)
    assert again == paths and (paths["sam2"] / "model.safetensors").stat().st_mtime_ns == stamp
    leftovers = [p.name for p in paths["sam2"].parent.iterdir() if ".tmp-" in p.name]
    assert not leftovers  # the temporary training folders are gone


def test_sam3_held_out_scores_both_post_processings_from_one_pass(tmp_path):
    """The card's two SAM3 metric blocks come from one run of the model: each equals
    `evaluate_sam3` of a segmenter loaded with that post-processing."""
    from samgap_lib.evaluation import SAM3_EVAL_PHRASES, sam3_held_out
    from samgap_lib.evaluation import evaluate_concepts as evaluate_sam3

    model, processor = build_model(load_config(tiny_config("sam3", tmp_path / "run")))
    model.config.samgap_postprocess = {"mask_in_box": True, "nms_iou": 0.3}
    with torch.no_grad():  # untrained queries score alike: make them score over 0.5
        sc = model.dot_product_scoring
        sc.query_proj.bias.fill_(1.0)
        sc.text_proj.bias.fill_(1.0)
        model.detr_decoder.presence_head.layer3.bias.fill_(6.0)
    model.save_pretrained(tmp_path / "ckpt")
    processor.save_pretrained(tmp_path / "ckpt")
    samples = synthetic_orchard(3, seed=4, size=(112, 112))
    post, raw = sam3_held_out(tmp_path / "ckpt", samples, (True, False))
    seg = load_sam3(tmp_path / "ckpt", device="cpu")
    np.testing.assert_equal(post, evaluate_sam3(seg, samples, SAM3_EVAL_PHRASES)["summary"])
    seg.mask_in_box, seg.nms_iou = False, None
    np.testing.assert_equal(raw, evaluate_sam3(seg, samples, SAM3_EVAL_PHRASES)["summary"])
    assert raw["det_per_image[apple]"] > post["det_per_image[apple]"] > 0  # NMS dropped some


@pytest.mark.parametrize(("mask_in_box", "nms_iou"), [(True, 0.5), (False, None)])
def test_sam3_checkpoint_carries_its_postprocessing(tmp_path, mask_in_box, nms_iou):
    """eval.mask_in_box / eval.nms_iou are saved in the checkpoint's config and load_sam3
    post-processes so; a config without them removes what the initial checkpoint carried."""
    from samgap_lib.models.postprocess import clip_masks_to_boxes, mask_nms
    from samgap_lib.training.tasks.sam3 import Sam3Task

    over = {"mask_in_box": mask_in_box, "nms_iou": nms_iou}
    cfg = load_config(tiny_config("sam3", tmp_path / "run", eval=over))
    model, processor = build_model(cfg)
    # as if fine-tuned from an orchard-tiny checkpoint
    model.config.samgap_postprocess = {"mask_in_box": True, "nms_iou": 0.3}
    Sam3Task(cfg, model, processor)
    model.save_pretrained(tmp_path / "ckpt")
    processor.save_pretrained(tmp_path / "ckpt")
    seg = load_sam3(tmp_path / "ckpt", device="cpu")
    assert (seg.mask_in_box, seg.nms_iou) == (mask_in_box, nms_iou)
    s = synthetic_orchard(1, seed=3, size=(112, 112))[0]
    out = seg.segment(s.image, phrases=["apple"], threshold=0.0)["apple"]
    inside = np.array_equal(out.masks, clip_masks_to_boxes(out.masks, out.boxes))
    assert inside is mask_in_box  # the untrained masks spill out of their boxes unless cut
    no_dups = len(mask_nms(out.masks, out.scores, 0.5)) == len(out.masks)
    assert no_dups is (nms_iou is not None)  # the untrained queries answer alike


def _repeated_index_gathers(loss: torch.Tensor) -> int:
    """Advanced-indexing nodes in ``loss``'s graph whose index tuples repeat: their backward adds
    into one element from several threads (atomics on CPU), so gradients vary run to run."""
    seen, stack, found = set(), [loss.grad_fn], 0
    while stack:
        f = stack.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        if type(f).__name__ == "IndexBackward0":
            idx = [i for i in f._saved_indices if i is not None and i.dtype != torch.bool]
            if idx:
                keys = torch.stack(torch.broadcast_tensors(*idx), -1).reshape(-1, len(idx))
                found += int(len(torch.unique(keys, dim=0)) < len(keys))
        stack.extend(g for g, _ in f.next_functions)
    return found


@pytest.mark.parametrize("model_name", ["sam2", "sam3"])
def test_gradients_repeat_exactly_on_two_threads(model_name):
    """The orchard-tiny recipe trains on 2 CPU threads and must repeat from its seed: every
    backward pass on the same batch gives the same gradients, bit for bit. (SAM3's per-pair and
    SAM2's per-object gathers of image features once summed gradients with thread atomics.)"""
    from samgap_lib.training.config import merge
    from samgap_lib.training.data import load_samples, make_pool, step_rng
    from samgap_lib.training.orchard_tiny import ORCHARD_TINY
    from samgap_lib.training.trainer import make_task

    cfg = load_config(
        merge(ORCHARD_TINY[model_name], {"data": {"n_train": 8, "n_val": 0}}), model=model_name
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model, processor = build_model(cfg)
        task = make_task(cfg, model, processor)
        pool = task.filter_pool(make_pool(load_samples(cfg, "train", 8), cfg["data"]["image_size"]))
        lm = task.loss_module(model)
        grads = []
        for _ in range(4):
            model.zero_grad(set_to_none=True)
            inputs = task.batch(pool, np.arange(4), step_rng(0, 0), torch.device("cpu"))
            loss = lm(*inputs)[0]
            # collisions are rare: find the pattern in the graph, then also compare gradients
            assert _repeated_index_gathers(loss) == 0
            loss.backward()
            grads.append(
                {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            )
    finally:
        torch.set_num_threads(threads)
    differing = sorted(n for g in grads[1:] for n in g if not torch.equal(g[n], grads[0][n]))
    assert not differing, f"gradients differ between identical passes: {differing[:5]}"


@pytest.mark.parametrize("loss_size", [None, 40])
def test_sam2_mask_loss_size(monkeypatch, loss_size):
    """SAM2's mask loss is sam2_mask_loss on the logits upsampled to ``loss.mask_loss_size``
    (null: the image's size) and on the targets area-averaged to it."""
    import torch.nn.functional as F

    from samgap_lib.training.data import load_samples, make_pool, step_rng
    from samgap_lib.training.losses import sam2_mask_loss
    from samgap_lib.training.tasks import sam2 as sam2_task
    from samgap_lib.training.trainer import make_task

    cfg = load_config(tiny_config("sam2", "/tmp/unused", loss={"mask_loss_size": loss_size}))
    torch.manual_seed(0)
    model, processor = build_model(cfg)
    task = make_task(cfg, model, processor)
    pool = task.filter_pool(make_pool(load_samples(cfg, "train", 6), cfg["data"]["image_size"]))
    pixel, objs = task.batch(pool, np.arange(3), step_rng(0, 0), torch.device("cpu"))
    calls = []

    def spy(logits, ious, tgt, *args):
        calls.append((logits, ious, tgt, args))
        return sam2_mask_loss(logits, ious, tgt, *args)

    monkeypatch.setattr(sam2_task, "sam2_mask_loss", spy)
    total, terms = task.loss_module(model)(pixel, objs)
    side = loss_size or cfg["data"]["image_size"]
    targets = torch.from_numpy(np.stack([o.target for o in objs])).float()
    seen, want = 0, torch.zeros(())
    for logits, ious, tgt, args in calls:
        n = len(tgt)
        assert logits.shape[-2:] == (side, side) and tgt.shape[-2:] == (side, side)
        ref = F.interpolate(targets[:, None], size=(side, side), mode="area")[:, 0]
        # objects come in groups by their number of candidate masks
        assert all(any(torch.equal(row, r) for r in ref) for row in tgt)
        if loss_size is None:
            assert set(tgt.unique().tolist()) <= {0.0, 1.0}
        else:
            assert ((tgt > 0) & (tgt < 1)).any()  # area-averaged edges
        want = want + sam2_mask_loss(logits, ious, tgt, *args)["loss"] * n / len(objs)
        seen += n
    assert seen == len(objs)
    assert torch.allclose(total, want)


def _sam3_batch(data: dict, images: np.ndarray, loss: dict | None = None):
    """A tiny from-scratch SAM3, its task and one batch of ``images`` (``data`` and ``loss``
    merge in)."""
    from samgap_lib.training.data import load_samples, make_pool, step_rng
    from samgap_lib.training.trainer import make_task

    cfg = load_config(tiny_config("sam3", "/tmp/unused", data=data, loss=loss or {}))
    torch.manual_seed(0)
    model, processor = build_model(cfg)
    task = make_task(cfg, model, processor)
    pool = make_pool(load_samples(cfg, "train", 8), cfg["data"]["image_size"])
    return cfg, model, task, pool, task.batch(pool, images, step_rng(0, 0), torch.device("cpu"))


def _mask_decoder_batches(model, run):
    """The batch sizes the mask decoder saw while ``run()`` ran, and what ``run`` returned."""
    seen = []
    hook = model.mask_decoder.register_forward_hook(
        lambda _m, _a, out: seen.append(out.pred_masks.shape[0])
    )
    try:
        result = run()
    finally:
        hook.remove()
    return seen, result


def test_sam3_mask_decoder_runs_on_pairs_with_instances_only():
    """The mask decoder (most of a SAM3 step) runs on the pairs that have instances; with
    ``loss.semantic_on_negatives`` on all pairs. Every loss term but the semantic one is the
    same either way: a pair without instances has no mask loss."""
    from samgap_lib.training.config import merge
    from samgap_lib.training.tasks.sam3 import Sam3Loss

    cfg, model, _, _, inputs = _sam3_batch({"phrases_per_image": 4}, np.arange(4))
    n_pos = sum(len(g["boxes"]) > 0 for g in inputs[4])
    assert 0 < n_pos < len(inputs[4])  # the batch has both kinds
    terms = {}
    for on_negatives in (False, True):
        c = merge(cfg, {"loss": {"semantic_on_negatives": on_negatives}})
        seen, (loss, terms[on_negatives]) = _mask_decoder_batches(
            model, lambda c=c: Sam3Loss(model, c)(*inputs)
        )
        assert seen == [len(inputs[4]) if on_negatives else n_pos]
        assert torch.isfinite(loss)
    shared = set(terms[True]) - {"semantic", "loss"}
    assert {"mask_focal", "mask_dice", "class", "bbox"} <= shared
    for k in shared:
        assert terms[False][k] == pytest.approx(terms[True][k], rel=1e-5, abs=1e-7), k
    assert terms[False]["semantic"] != pytest.approx(terms[True]["semantic"])


def test_sam3_batch_without_instances_skips_the_mask_decoder():
    """A batch whose phrases all name absent things trains presence and scores; the mask
    decoder does not run and the loss still backpropagates."""
    from samgap_lib.training.tasks.sam3 import Sam3Loss

    data = {"phrases_fixed": ["pear"], "phrases_sampled": ["leaf", "lemon"], "phrases_per_image": 2}
    cfg, model, _, _, inputs = _sam3_batch(data, np.arange(2))
    assert all(len(g["boxes"]) == 0 for g in inputs[4])
    seen, (loss, terms) = _mask_decoder_batches(model, lambda: Sam3Loss(model, cfg)(*inputs))
    assert seen == []
    assert "mask_focal" not in terms and "semantic" not in terms
    loss.backward()
    assert model.detr_decoder.presence_head.layer1.weight.grad is not None


def test_sam3_batch_targets_come_from_each_pairs_instances():
    """Boxes and mask-head-sized masks are derived once per pool image and kept; every pair's
    targets are still those of its own instances, the second time an image is drawn too."""
    import torch.nn.functional as F

    from samgap_lib.prompts import boxes_from_masks
    from samgap_lib.training.data import step_rng

    _, _, task, pool, first = _sam3_batch({"phrases_per_image": 4}, np.arange(4))
    assert pool.derived  # filled by the first batch
    again = task.batch(pool, np.arange(4), step_rng(0, 0), torch.device("cpu"))
    size = pool.images.shape[1]
    assert any(len(g["boxes"]) for g in first[4])
    task.cfg["loss"]["mask_loss_size"] = 28
    coarse = task.batch(pool, np.arange(4), step_rng(0, 0), torch.device("cpu"))
    for a, b, c in zip(first[4], again[4], coarse[4], strict=True):
        for key in ("boxes", "masks", "masks_small", "union_small"):
            assert torch.equal(a[key], b[key]), key
        masks = a["masks"]
        assert masks.dtype == torch.bool and masks.shape[-2:] == (size, size)
        # loss.mask_loss_size: the mask loss's targets area-averaged to that size
        assert torch.equal(
            c["masks"], F.interpolate(masks[:, None].float(), (28, 28), mode="area")[:, 0]
        )
        want = boxes_from_masks(masks.numpy()).reshape(-1, 4) / size
        assert np.allclose(a["boxes"].numpy(), want, atol=1e-6)
        small = F.interpolate(masks[:, None].float(), size=(task.mask_hw,) * 2, mode="area")[:, 0]
        assert torch.equal(a["masks_small"], small)
        if len(masks):
            assert torch.equal(a["union_small"], (small.amax(0) > 0.5).float())
        else:
            assert not a["union_small"].any()


def _sam3_terms_pair_by_pair(model, cfg, inputs) -> dict[str, float]:
    """Sam3Loss's terms computed the slow, plain way: one (decoder layer, pair) at a time with
    the one-pair functions of samgap_lib.training.losses."""
    import torch.nn.functional as F

    from samgap_lib.training.losses import (
        detr_losses,
        dice_loss,
        hungarian_match,
        iabce_loss,
        one_to_many_match_many,
        sigmoid_focal_loss,
    )
    from samgap_lib.training.tasks.sam3 import sam3_outputs

    pixel, pair_image, tokens, pair_text, gts, _ = inputs
    lc = cfg["loss"]
    pos = [p for p, g in enumerate(gts) if len(g["boxes"])]
    o2m = lc["o2m_weight"] > 0
    out = sam3_outputs(
        model,
        pixel,
        pair_image,
        tokens,
        pair_text,
        mask_pairs=torch.tensor(pos, dtype=torch.long),
        o2m=o2m,
    )
    n_layers, n_gt = out["logits"].shape[0], sum(len(g["boxes"]) for g in gts)
    w = {k: lc["match_" + k] for k in ("class", "bbox", "giou", "mask")}
    sums: dict[str, float] = {}
    masks = []

    def detection(lg, bx, g, qi, gi) -> dict:
        one = detr_losses(lg, bx, g["boxes"], qi, gi, supervise_class=len(g["boxes"]) > 0)
        if lc["class_loss"] == "iabce":
            cls = iabce_loss(lg, bx, g["boxes"], qi, gi, lc["pos_weight"])
            one["class"] = cls * (len(g["boxes"]) > 0) * n_gt / len(gts)
        return one

    for p, g in enumerate(gts):
        for li in range(n_layers):
            sfx = "" if li == n_layers - 1 else "_aux"
            lg, bx = out["logits"][li, p], out["boxes"][li, p]
            ml = out["masks"][pos.index(p)] if p in pos and not sfx else None
            qi, gi = hungarian_match(lg, bx, g["boxes"], w, ml, g["masks_small"])
            one = detection(lg, bx, g, qi, gi)
            present = torch.tensor(float(len(gi) > 0))
            one["presence"] = F.binary_cross_entropy_with_logits(
                out["presence"][li, p, 0], present
            ) * (n_gt / len(gts))
            if o2m:  # the one-to-many queries: one-to-many matching on the last layer
                lg, bx = out["logits_o2m"][li, p], out["boxes_o2m"][li, p]
                if sfx and not lc["o2m_matcher_on_aux"]:
                    qo, go = hungarian_match(lg, bx, g["boxes"], w)
                else:
                    k = (lc["o2m_alpha"], lc["o2m_threshold"], lc["o2m_topk"])
                    [(qo, go)] = one_to_many_match_many(
                        lg[None], bx[None], g["boxes"], [(0, len(g["boxes"]))], *k
                    )
                one.update({k + "_o2m": v for k, v in detection(lg, bx, g, qo, go).items()})
            for k, v in one.items():
                k = k.replace("_o2m", "_o2m" + sfx) if "_o2m" in k else k + sfx
                sums[k] = sums.get(k, 0.0) + float(v) / n_gt
            if ml is not None:
                cap = lc["max_matched_queries"]
                for q, i in zip(qi[:cap].tolist(), gi[:cap].tolist(), strict=True):
                    size = g["masks"].shape[-2:]
                    pm = F.interpolate(ml[q][None, None], size=size, mode="bilinear")[0, 0]
                    tm = g["masks"][i].float()
                    masks.append((sigmoid_focal_loss(pm, tm).mean(), dice_loss(pm, tm)))
    sums["mask_focal"] = float(sum(f for f, _ in masks)) / len(masks)
    sums["mask_dice"] = float(sum(d for _, d in masks)) / len(masks)
    unions = [
        F.binary_cross_entropy_with_logits(out["semantic"][r, 0], gts[p]["union_small"])
        for r, p in enumerate(pos)
    ]
    sums["semantic"] = float(sum(unions)) / len(pos)
    return sums


@pytest.mark.parametrize(
    "loss",
    [
        {},
        {"class_loss": "focal"},
        {"mask_loss_size": 56},
        {"o2m_weight": 0.0},
        {"o2m_matcher_on_aux": True, "o2m_topk": 6, "o2m_threshold": 0.1},
    ],
    ids=["iabce", "focal", "mask_loss_size", "no_o2m", "o2m_on_aux"],
)
def test_sam3_loss_equals_the_pair_by_pair_computation(loss):
    """Sam3Loss computes every (decoder layer, pair) at once; its terms equal those of the
    plain loop over pairs and layers with the one-pair losses and matcher."""
    from samgap_lib.training.tasks.sam3 import Sam3Loss

    cfg, model, _, _, inputs = _sam3_batch({"phrases_per_image": 4}, np.arange(4), loss)
    assert any(len(g["boxes"]) == 0 for g in inputs[4])
    assert sum(len(g["boxes"]) > 2 for g in inputs[4]) > 0  # the cap on matched masks acts
    model.eval()  # no dropout: both computations see the same outputs
    with torch.no_grad():
        _, terms = Sam3Loss(model, cfg)(*inputs)
        want = _sam3_terms_pair_by_pair(model, cfg, inputs)
    assert set(terms) - {"loss"} == set(want)
    for k, v in want.items():
        assert terms[k] == pytest.approx(v, rel=1e-5, abs=1e-7), k
    if cfg["loss"]["o2m_weight"]:  # the one-to-many queries have matches to learn from
        assert terms["bbox_o2m_aux"] > 0
        if cfg["loss"]["o2m_matcher_on_aux"]:
            assert terms["bbox_o2m"] > 0


def test_sam3_o2m_queries_skip_self_attention():
    """The one-to-many (DAC) outputs are the decoder's without self-attention: equal to the
    o2o outputs of a copy whose self-attention output projections are zero; the o2o outputs
    and the model are left as they were, and no gradient of the o2m pass reaches the
    self-attention."""
    import copy

    from samgap_lib.training.tasks.sam3 import sam3_outputs

    _, model, _, _, inputs = _sam3_batch({"phrases_per_image": 3}, np.arange(2))
    model.eval()
    pixel, pair_image, tokens, pair_text, *_ = inputs
    out = sam3_outputs(model, pixel, pair_image, tokens, pair_text, masks=False, o2m=True)
    plain = sam3_outputs(model, pixel, pair_image, tokens, pair_text, masks=False)
    assert torch.equal(out["logits"], plain["logits"]) and "logits_o2m" not in plain
    assert not torch.allclose(out["logits_o2m"], out["logits"])
    cut = copy.deepcopy(model)
    with torch.no_grad():
        for layer in cut.detr_decoder.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.self_attn.o_proj.bias.zero_()
    ref = sam3_outputs(cut, pixel, pair_image, tokens, pair_text, masks=False)
    torch.testing.assert_close(out["logits_o2m"], ref["logits"])
    torch.testing.assert_close(out["boxes_o2m"], ref["boxes"])
    # gradients: the o2m scores alone reach the decoder's cross-attention, not its self-attention
    out["logits_o2m"].sum().backward()
    layer = model.detr_decoder.layers[-1]
    assert layer.self_attn.q_proj.weight.grad is None
    assert layer.vision_cross_attn.q_proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("seed", range(4))
def test_one_to_many_matching_equals_sam3s(seed):
    """`one_to_many_match_many` equals SAM3's BinaryOneToManyMatcher (sam3/train/matcher.py)
    on random rows with 0-5 instances, in the released setting and with a loose threshold."""
    from collections import Counter

    from sam3.train.matcher import BinaryOneToManyMatcher

    from samgap_lib.training.losses import one_to_many_match_many

    g = torch.Generator().manual_seed(seed)
    b, q = 5, 12
    counts = [int(c) for c in torch.randint(0, 6, (b,), generator=g)]
    counts[0] = max(counts[0], 1)

    def xyxy(n):
        xy = torch.rand(n, 2, generator=g) * 0.6
        return torch.cat([xy, xy + 0.05 + torch.rand(n, 2, generator=g) * 0.3], 1)

    def cxcywh(x):
        return torch.cat([(x[..., :2] + x[..., 2:]) / 2, x[..., 2:] - x[..., :2]], -1)

    logits = torch.randn(b, q, generator=g) * 2
    gts = [xyxy(c) for c in counts]
    # some queries near some instances, so matches clear the threshold
    boxes = torch.stack([xyxy(q) for _ in range(b)])
    for r, gt in enumerate(gts):
        boxes[r, : len(gt)] = gt + 0.01 * torch.randn(gt.shape, generator=g)
    gt_boxes = torch.cat(gts)
    starts = np.concatenate([[0], np.cumsum(counts)])
    spans = [(int(starts[r]), int(starts[r + 1])) for r in range(b)]
    padded = torch.zeros(b, max(counts), 4)
    for r, gt in enumerate(gts):
        padded[r, : len(gt)] = cxcywh(gt)
    for alpha, threshold, topk in [(0.3, 0.4, 4), (0.5, 0.05, 3)]:
        ref = BinaryOneToManyMatcher(alpha=alpha, threshold=threshold, topk=topk)(
            {"pred_logits": logits[..., None], "pred_boxes": cxcywh(boxes)},
            {"num_boxes": torch.tensor(counts), "boxes_padded": padded},
        )
        want = {(int(r), int(i), int(t)) for r, i, t in zip(*ref, strict=True)}
        ours = one_to_many_match_many(logits, boxes, gt_boxes, spans, alpha, threshold, topk)
        got = {
            (r, int(i), int(t) + spans[r][0])
            for r, (qi, gi) in enumerate(ours)
            for i, t in zip(qi, gi, strict=True)
        }
        assert got == want and want
        if threshold < 0.1:  # loose: some instance takes several queries
            assert max(Counter((r, t) for r, _, t in want).values()) >= 2


def evaluate_start(cfg):
    return start_validation(cfg)[0]


def validation_per_image(cfg):
    return start_validation(cfg)[1]


def test_start_validation_measures_as_the_loop_validates(tmp_path, monkeypatch):
    res = train(load_config(tiny_config("sam2", tmp_path / "run")))
    assert res.metrics  # the loop validates at its last step
    # the same weights as a starting checkpoint: the "before" of a next run equals that
    again = load_config(
        tiny_config("sam2", tmp_path / "again", init={"checkpoint": str(res.final)})
    )
    assert evaluate_start(again) == res.metrics
    with pytest.raises(ValueError, match="data.n_val is 0"):
        evaluate_start(load_config(tiny_config("sam2", tmp_path / "x", data={"n_val": 0})))
    # the device is resolved as train() resolves it, before any model is built
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        evaluate_start(load_config(tiny_config("sam2", tmp_path / "y", train={"device": "cuda"})))


def test_score_sam3_refuses_predictions_missing_a_phrase_or_an_image():
    from samgap_lib.evaluation import score_concepts as score_sam3

    samples = synthetic_orchard(2, seed=1, size=(64, 64))
    with pytest.raises(
        ValueError, match=r"one prediction per sample \(2\).*\['pear'\].*predict_concepts"
    ):
        score_sam3({"apple": [None, None], "pear": [None]}, samples, ["apple", "pear"])


def test_score_sam3_per_image_counts_sum_to_recall_and_precision():
    from samgap_lib.evaluation import score_concepts as score_sam3
    from samgap_lib.models.base import ConceptPrediction
    from samgap_lib.prompts import boxes_from_masks, concept_of

    samples = synthetic_orchard(4, seed=2, size=(64, 64))
    phrases = ["apple", "pear"]
    preds = {p: [] for p in phrases}
    for i, s in enumerate(samples):
        gt = s.masks if s.instances else np.zeros((0, 64, 64), bool)
        found = gt[: i % 3]  # image i: its first i % 3 apples found, as they are
        junk = np.zeros((1, 64, 64), bool)
        junk[0, :4, :4] = True  # a kept detection on no apple
        low = gt[-1:]  # an apple found, but scored under the threshold
        masks = np.concatenate([found, junk, low])
        scores = np.r_[np.full(len(found), 0.9), 0.8, np.full(len(low), 0.2)]
        for p in phrases:
            preds[p].append(ConceptPrediction(p, masks, boxes_from_masks(masks), scores, 1.0))
    out = score_sam3(preds, samples, phrases)
    apple = out["per_image"]["apple"]
    named = [sum(concept_of("apple").matches(x) for x in s.instances) for s in samples]
    np.testing.assert_array_equal(apple["named"], named)
    np.testing.assert_array_equal(apple["found"], [min(i % 3, n) for i, n in enumerate(named)])
    np.testing.assert_array_equal(apple["kept"], apple["found"] + 1)
    pear = out["per_image"]["pear"]
    assert pear["named"].sum() == 0 and pear["found"].sum() == 0
    summary = out["summary"]
    assert summary["recall[apple]"] == apple["found"].sum() / apple["named"].sum()
    assert summary["precision[apple]"] == apple["found"].sum() / apple["kept"].sum()


def test_score_sam3_keeps_a_score_at_the_threshold_as_cgf1_and_the_metrics_library_do():
    """One convention: a detection scored exactly ``threshold`` is kept by recall, precision,
    selectivity and cgF1 alike (``score >= threshold``), as `concept_counts` keeps it."""
    from samgap_lib.evaluation import score_concepts as score_sam3
    from samgap_lib.metrics import concept_counts
    from samgap_lib.models.base import ConceptPrediction
    from samgap_lib.prompts import boxes_from_masks, concept_of

    samples = [s for s in synthetic_orchard(12, seed=3, size=(64, 64)) if s.instances][:3]
    phrases = ["apple", "ripe apple"]
    preds = {
        p: [
            ConceptPrediction(
                p, s.masks, boxes_from_masks(s.masks), np.full(len(s.masks), 0.5), 1.0
            )
            for s in samples
        ]
        for p in phrases
    }
    out = score_sam3(preds, samples, phrases, threshold=0.5)
    assert out["summary"]["recall[apple]"] == 1.0 and out["summary"]["precision[apple]"] == 1.0
    assert out["summary"]["pmF1"] > 0  # cgF1 kept them too
    assert out["summary"]["selectivity[ripe apple]"] == pytest.approx(
        sum(i.attributes["ripeness"] == "ripe" for s in samples for i in s.instances)
        / sum(i.attributes["ripeness"] in ("ripe", "unripe") for s in samples for i in s.instances)
    )
    ref = concept_counts(samples, preds, [concept_of(p) for p in phrases], 0.5, 0.5)
    for p in phrases:
        for k in ("found", "named", "kept"):
            np.testing.assert_array_equal(out["per_image"][p][k], ref[p][k])
    above = score_sam3(preds, samples, phrases, threshold=0.5 + 1e-9)["summary"]
    assert above["precision[apple]"] != above["precision[apple]"]  # nothing kept: nan


@pytest.mark.parametrize("model", ["sam2", "sam3"])
def test_validation_per_image_sums_to_the_validation_and_pairs_before_after(tmp_path, model):
    from samgap_lib.metrics import bootstrap_ratio, paired_differences

    cfg = load_config(tiny_config(model, tmp_path / "run"))
    before = validation_per_image(cfg)
    metrics = evaluate_start(cfg)
    both, per = start_validation(cfg)  # the two from one pass, equal to each alone
    assert both.keys() == metrics.keys() and per.keys() == before.keys()
    assert all(np.isclose(both[k], metrics[k], equal_nan=True) for k in metrics)
    for k, (num, den) in per.items():
        np.testing.assert_array_equal(num, before[k][0])
        np.testing.assert_array_equal(den, before[k][1])
    n_val = cfg["data"]["n_val"]
    assert before  # SAM2: box and click mIoUs; SAM3: recall and precision per phrase
    for name, (num, den) in before.items():
        assert num.shape == den.shape == (n_val,)
        assert bootstrap_ratio(num, den, n_resamples=50).estimate == pytest.approx(metrics[name])
    res = train(cfg)
    after = validation_per_image(
        load_config(tiny_config(model, tmp_path / "x", init={"checkpoint": str(res.final)}))
    )
    changes = paired_differences(after, before, n_resamples=200)
    for name, iv in changes.items():
        num, den = after[name]
        assert iv.estimate == pytest.approx(num.sum() / den.sum() - metrics[name])
        assert iv.estimate == pytest.approx(res.metrics[name] - metrics[name])
        assert iv.low <= iv.high and iv.n_units == n_val
    assert set(changes) == set(after) & set(before)
