"""SAM3 training with exemplar prompts: the sampling (positives of the phrase's instances,
negatives of others, the phrase dropped at its rate, deterministic), the prompt it builds (the
inference path's computation), and a training run with exemplars that resumes exactly."""

import numpy as np
import pytest
import torch
from _training_helpers import tiny_config
from safetensors.torch import load_file

from samgap_lib.config import ConfigError
from samgap_lib.prompts import boxes_from_masks, concept_of
from samgap_lib.training import load_config, train
from samgap_lib.training.data import load_samples, make_pool, step_rng
from samgap_lib.training.init import build_model
from samgap_lib.training.logs import read_jsonl
from samgap_lib.training.tasks.sam3 import (
    EXEMPLAR_ONLY,
    Sam3Loss,
    _denoted,
    sam3_outputs,
    sample_exemplars,
)
from samgap_lib.training.trainer import make_task

EXEMPLARS = {"exemplar_p": 1.0, "max_positives": 2, "negative_p": 1.0, "drop_phrase_p": 0.5}


def _prompts(**over):
    return {**EXEMPLARS, **over}


def test_sample_exemplars_draws_positives_negatives_and_drops_the_phrase_at_its_rates():
    denoted, n = np.array([0, 2, 5]), 7
    pc = _prompts(exemplar_p=0.4, max_positives=3, negative_p=0.5, drop_phrase_p=0.25)
    rng = np.random.default_rng(0)
    draws = [sample_exemplars(denoted, n, pc, rng) for _ in range(4000)]
    chosen = [d for d in draws if d is not None]
    assert abs(len(chosen) / len(draws) - 0.4) < 0.03
    n_pos, n_neg, kept = [], [], []
    for inst, labels, keep in chosen:
        pos, neg = inst[labels == 1], inst[labels == 0]
        assert set(pos) <= set(denoted) and len(set(pos)) == len(pos) >= 1
        assert not set(neg) & set(denoted) and set(neg) <= set(range(n)) and len(neg) <= 1
        assert list(labels) == sorted(labels, reverse=True)  # positives first
        n_pos.append(len(pos))
        n_neg.append(len(neg))
        kept.append(keep)
    assert set(n_pos) == {1, 2, 3}
    assert abs(np.mean(n_neg) - 0.5) < 0.05
    assert abs(np.mean(kept) - 0.75) < 0.05
    # deterministic by seed
    again = [sample_exemplars(denoted, n, pc, np.random.default_rng(0)) for _ in range(1)]
    first = draws[0]
    assert (again[0] is None) == (first is None)
    if first is not None:
        assert np.array_equal(again[0][0], first[0]) and again[0][2] == first[2]


def test_sample_exemplars_leaves_the_stream_alone_when_it_cannot_or_need_not_draw():
    for denoted, pc in [
        (np.zeros(0, np.int64), _prompts()),  # the phrase denotes nothing: no positive box
        (np.array([1]), _prompts(exemplar_p=0.0)),  # off
    ]:
        rng = np.random.default_rng(3)
        assert sample_exemplars(denoted, 4, pc, rng) is None
        assert rng.random() == np.random.default_rng(3).random()
    # every instance denoted ("apple"): no negative to draw, and the positives are capped
    rng = np.random.default_rng(1)
    inst, labels, _ = sample_exemplars(np.array([0, 1]), 2, _prompts(max_positives=5), rng)
    assert set(labels) == {1} and len(inst) <= 2


@pytest.mark.parametrize(
    "over, match",
    [
        ({"exemplar_p": 1.5}, "prompts.exemplar_p"),
        ({"negative_p": -0.1}, "prompts.negative_p"),
        ({"drop_phrase_p": 2}, "prompts.drop_phrase_p"),
        ({"max_positives": 0}, "prompts.max_positives"),
        ({"exemplars": 1}, "unknown key 'prompts.exemplars'"),
    ],
)
def test_exemplar_config_is_validated(over, match):
    with pytest.raises(ConfigError, match=match):
        load_config(tiny_config("sam3", "/tmp/unused", prompts=over))


def _batch(prompts, images=(4, 5, 6, 7), seed=0):
    cfg = load_config(
        tiny_config("sam3", "/tmp/unused", data={"phrases_per_image": 4}, prompts=prompts)
    )
    torch.manual_seed(0)
    model, processor = build_model(cfg)
    task = make_task(cfg, model, processor)
    pool = make_pool(load_samples(cfg, "train", 8), cfg["data"]["image_size"])
    idx = np.asarray(images)
    return model, task, pool, idx, task.batch(pool, idx, step_rng(seed, 0), torch.device("cpu"))


def test_batch_exemplars_are_boxes_of_the_pairs_instances_in_inference_coordinates():
    _, task, pool, idx, inputs = _batch(EXEMPLARS)
    _, pair_image, tokens, pair_text, gts, ex = inputs
    size = pool.images.shape[1]
    visual = task.tokenize([EXEMPLAR_ONLY])["input_ids"][0]
    n_neg = n_visual = 0
    rows = ex["pairs"].tolist()
    # exemplar_p 1: every pair with instances has exemplars, no pair without
    assert rows == [r for r, g in enumerate(gts) if len(g["boxes"])]
    for k, r in enumerate(rows):
        i = int(idx[pair_image[r]])
        all_boxes = boxes_from_masks(pool.masks[i]).reshape(-1, 4).astype(np.float64)
        own = gts[r]["boxes"].numpy() * size
        labels = ex["labels"][k].numpy()
        cx, cy, w, h = (ex["boxes"][k].numpy().astype(np.float64) * size).T
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        for box, lab in zip(xyxy, labels, strict=True):
            if lab == -10:
                continue
            in_own = np.abs(own - box).max(1).min() < 1e-3
            assert np.abs(all_boxes - box).max(1).min() < 1e-3  # a box of an instance
            assert in_own == (lab == 1)  # positives denoted by the pair's phrase, negatives not
            n_neg += lab == 0
        n_visual += bool(torch.equal(tokens["input_ids"][pair_text[r]], visual))
    assert n_neg > 0 and 0 < n_visual < len(rows)
    # deterministic by the step's rng; the pairs and targets are those drawn without exemplars
    again = task.batch(pool, idx, step_rng(0, 0), torch.device("cpu"))[5]
    assert all(torch.equal(ex[k], again[k]) for k in ex)
    _, _, _, _, plain = _batch({"exemplar_p": 0.0})
    assert plain[5] is None
    for a, b in zip(gts, plain[4], strict=True):
        assert torch.equal(a["boxes"], b["boxes"])


def test_phrase_kept_or_dropped_at_the_extremes():
    for drop, want in ((0.0, 0), (1.0, None)):
        _, task, _, _, inputs = _batch(_prompts(drop_phrase_p=drop))
        _, _, tokens, pair_text, _, ex = inputs
        visual = task.tokenize([EXEMPLAR_ONLY])["input_ids"][0]
        n = sum(
            bool(torch.equal(tokens["input_ids"][pair_text[r]], visual))
            for r in ex["pairs"].tolist()
        )
        assert n == (len(ex["pairs"]) if want is None else want)


def test_exemplar_prompts_train_as_the_model_runs_them_at_inference():
    """The training forward of a pair with exemplars equals ``Sam3Model.forward`` with
    ``input_boxes`` (the segmenter's path); a pair without them is untouched by the others'."""
    model, _, _, _, inputs = _batch(EXEMPLARS)
    pixel, pair_image, tokens, pair_text, gts, ex = inputs
    model.eval()
    with torch.no_grad():
        out = sam3_outputs(model, pixel, pair_image, tokens, pair_text, exemplars=ex)
        text_only = sam3_outputs(model, pixel, pair_image, tokens, pair_text)
        for k, r in enumerate(ex["pairs"].tolist()[:3]):
            v = ex["labels"][k] != -10
            ref = model(
                pixel_values=pixel[pair_image[r]][None],
                input_ids=tokens["input_ids"][pair_text[r]][None],
                attention_mask=tokens["attention_mask"][pair_text[r]][None],
                input_boxes=ex["boxes"][k][v][None],
                input_boxes_labels=ex["labels"][k][v][None],
            )
            torch.testing.assert_close(ref.pred_logits[0], out["logits"][-1, r], atol=1e-5, rtol=0)
            torch.testing.assert_close(ref.pred_masks[0], out["masks"][r], atol=1e-4, rtol=0)
            assert not torch.allclose(text_only["logits"][-1, r], out["logits"][-1, r])
        one = {key: val[:1] for key, val in ex.items()}
        part = sam3_outputs(model, pixel, pair_image, tokens, pair_text, masks=False, exemplars=one)
        rest = [r for r in range(len(gts)) if r != int(one["pairs"][0])]
        assert torch.equal(part["logits"][:, rest], text_only["logits"][:, rest])
    model.train()
    loss, _ = Sam3Loss(model, _cfg())(*inputs)
    loss.backward()
    assert model.geometry_encoder.boxes_direct_project.weight.grad.abs().sum() > 0


def _cfg():
    return load_config(tiny_config("sam3", "/tmp/unused", prompts=EXEMPLARS))


class _Crash(Exception):
    pass


def test_training_with_exemplars_is_deterministic_and_resumes_exactly(tmp_path):
    over = {"train": {"steps": 4, "checkpoint_every": 2}, "prompts": _prompts(exemplar_p=0.5)}
    ref = train(load_config(tiny_config("sam3", tmp_path / "a", **over)))

    def crash(step, record):
        if step == 3:
            raise _Crash

    cfg = load_config(tiny_config("sam3", tmp_path / "b", **over))
    with pytest.raises(_Crash):
        train(cfg, on_step=crash)
    res = train(cfg, resume=True)
    a = load_file(str(ref.final / "model.safetensors"))
    b = load_file(str(res.final / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    geo = [k for k in a if k.startswith("geometry_encoder.")]
    init, _ = build_model(cfg)
    start = init.state_dict()
    assert any(not torch.equal(a[k], start[k]) for k in geo)  # the exemplar path was trained

    def losses(run):
        return [
            [v for k, v in sorted(r.items()) if k.startswith("loss/") or k == "step"]
            for r in read_jsonl(run.out_dir / "log.jsonl")
            if "loss/loss" in r
        ]

    assert losses(ref) == losses(res)


def test_denoted_instances_follow_the_phrase():
    _, _, pool, _, _ = _batch(EXEMPLARS)
    i = 6
    ripe = set(_denoted(pool, i, concept_of("ripe apple")).tolist())
    unripe = set(_denoted(pool, i, concept_of("unripe apple")).tolist())
    assert not ripe & unripe
    assert ripe | unripe <= set(_denoted(pool, i, concept_of("apple")).tolist())
